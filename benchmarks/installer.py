"""Benchmark: 500 simulated nodes registering and polling at once against one Smart Installer.

One `distro-builder serve` (SQLite file with one worker, then PostgreSQL when
DISTRO_BUILDER_TEST_PG_URL or --pg is given, once per --workers count: 1 and 4 by default, the
scale-out figure of issue 21; `--nodes 2000` for it). N node threads start together behind a
barrier; each does what the node's sh client does, one new connection per request like wget:
register its inventory, poll its assignment every --poll seconds until it is ready, fetch its
answers, report 3 progress lines and the final STACKOPS-FIRSTBOOT line. Meanwhile an admin thread
assigns roles to nodes as they appear (dual-node: one controller+network+volume, the rest
compute), over the JSON API.

It prints requests per second and latency percentiles per request kind, errors, and checks that
nothing was lost: every node registered, ready, got answers with its own hostname, and every
progress line is in the database (read back over the API after the run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADMIN, PASSWORD = "bench", "bench-password"
PG_TABLES = (
    "events", "nodes", "deployments", "sessions", "admins", "login_failures", "schema_migrations",
)  # fmt: skip


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)

    def req(self, kind: str, method: str, path: str, body: str | None = None, token: str = ""):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None and kind.startswith("admin"):
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            status = resp.status
        except OSError as e:
            status, data = 0, str(e).encode()
        dt = time.perf_counter() - t0
        with self.lock:
            self.lat[kind].append(dt)
            if not 200 <= status < 300:
                self.errors[f"{kind} {status}"] += 1
        return status, data


def pairs(body: bytes) -> dict[str, str]:
    out = {}
    for line in body.decode().splitlines():
        m = re.fullmatch(r"([a-z_]+)='(.*)'", line)
        if m:
            out[m[1]] = m[2].replace("'\\''", "'")
    return out


def node(c: Client, i: int, enrol: str, barrier: threading.Barrier, poll: float, out: dict):
    mac = f"52:54:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01"
    inv = (
        f"hostname=node{i}\ncpus=4\nvirt=vmx\nmem_kb=8388608\nnic=eth0 {mac} up\n"
        f"nic=eth1 52:55:00:{i >> 8 & 255:02x}:{i & 255:02x}:02 up\n"
        "disk=sda 20971520 used\ndisk=sdb 10485760 free\n"
    )
    barrier.wait()
    for _ in range(20):
        status, body = c.req("register", "POST", "/agent/v1/register", inv, enrol)
        if status == 201:
            break
        time.sleep(1)
    else:
        return
    reg = pairs(body)
    nid, tok = reg["node_id"], reg["node_token"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status, body = c.req("poll", "GET", f"/agent/v1/nodes/{nid}/assignment", token=tok)
        if status == 200 and pairs(body).get("state") == "ready":
            break
        time.sleep(poll)
    else:
        return
    status, body = c.req("answers", "GET", f"/agent/v1/nodes/{nid}/answers", token=tok)
    if status != 200 or pairs(body).get("hostname") != f"node{i}":
        return
    roles = pairs(body)["roles"]
    role = roles.split(",")[0]
    for step in range(1, 4):
        line = f"STACKOPS step={step}/3 role={role} name=s{step} status=ok t=0.1s\n"
        c.req("progress", "POST", f"/agent/v1/nodes/{nid}/progress", line, tok)
    c.req("progress", "POST", f"/agent/v1/nodes/{nid}/progress",
          f"STACKOPS-FIRSTBOOT done roles={roles}\n", tok)  # fmt: skip
    out[i] = nid


def admin_loop(c: Client, token: str, dep: str, n: int, stop: threading.Event) -> None:
    assigned: set[int] = set()
    first = True
    while len(assigned) < n and not stop.is_set():
        status, body = c.req("admin-list", "GET", f"/api/deployments/{dep}/nodes", token=token)
        if status == 200:
            for nd in json.loads(body):
                if nd["id"] in assigned:
                    continue
                roles = ["controller", "network", "volume"] if first else ["compute"]
                st, _ = c.req(
                    "admin-assign", "PUT", f"/api/deployments/{dep}/nodes/{nd['id']}/roles",
                    json.dumps({"roles": roles}), token,
                )  # fmt: skip
                if st == 200:
                    assigned.add(nd["id"])
                    first = False
        time.sleep(0.5)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def run(db: str, label: str, nodes: int, poll: float, workdir: Path, workers: int = 1) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "distro_builder"]
    subprocess.run([*base, "installer", "admin", "create", ADMIN, "--password-stdin", "--db", db],
                   input=PASSWORD, text=True, check=True, env=env, capture_output=True)  # fmt: skip
    created = subprocess.run(
        [*base, "installer", "deployment", "create", "bench", "-a", "dual-node", "--json",
         "--db", db], text=True, check=True, env=env, capture_output=True,
    )  # fmt: skip
    enrol = json.loads(created.stdout)["enrolment_token"]
    params = ["controller_address=10.0.0.1", "nova_db_password=bench-nova",
              "rabbit_password=bench-rabbit", "mysql_root_password=bench-mysql",
              "admin_password=bench-admin", "floating_range=172.24.4.0/22"]  # fmt: skip
    subprocess.run([*base, "installer", "deployment", "set", "bench", *params, "--db", db],
                   check=True, env=env, capture_output=True)  # fmt: skip
    log = open(workdir / f"serve-{label}.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [*base, "serve", "--db", db, "--listen", "127.0.0.1:0", "--workers", str(workers)],
        stderr=subprocess.PIPE, stdout=log, text=True, env=env,
    )  # fmt: skip
    assert server.stderr is not None
    port = 0
    for line in server.stderr:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
        if m:
            port = int(m[1])
            break
    threading.Thread(target=lambda: [log.write(x) for x in server.stderr], daemon=True).start()
    c = Client(port)
    st, body = c.req("admin-login", "POST", "/api/login",
                     json.dumps({"username": ADMIN, "password": PASSWORD}))  # fmt: skip
    token = json.loads(body)["token"]

    barrier = threading.Barrier(nodes + 1)
    done: dict[int, str] = {}
    threads = [
        threading.Thread(target=node, args=(c, i, enrol, barrier, poll, done), daemon=True)
        for i in range(nodes)
    ]
    for t in threads:
        t.start()
    stop = threading.Event()
    admin = threading.Thread(target=admin_loop, args=(c, token, "bench", nodes, stop))
    barrier.wait()
    t0 = time.perf_counter()
    admin.start()
    for t in threads:
        t.join(timeout=900)
    wall = time.perf_counter() - t0
    stop.set()
    admin.join()

    # Nothing lost: read everything back.
    st, body = c.req("check", "GET", "/api/deployments/bench", token=token)
    dep = json.loads(body)
    states = defaultdict(int)
    for nd in dep["nodes"]:
        states[nd["state"]] += 1
    lines_ok = 0
    ids = sorted(done.values(), key=int)
    sample = sorted(set(ids[:50] + ids[-50:]), key=int)
    for nid in sample:
        st, body = c.req("check", "GET", f"/api/deployments/bench/nodes/{nid}", token=token)
        evs = [e for e in json.loads(body)["events"] if e["kind"] in ("step", "done")]
        lines_ok += len(evs) == 4
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    log.close()

    node_kinds = ("register", "poll", "answers", "progress")
    total = sum(len(c.lat[k]) for k in node_kinds + ("admin-list", "admin-assign"))
    result = {
        "database": label,
        "workers": workers,
        "nodes": nodes,
        "wall_s": round(wall, 2),
        "requests": total,
        "rps": round(total / wall, 1),
        "latency_ms": {
            k: {
                "n": len(c.lat[k]),
                "p50": round(pct(c.lat[k], 50) * 1000, 1),
                "p99": round(pct(c.lat[k], 99) * 1000, 1),
                "max": round(max(c.lat[k], default=0) * 1000, 1),
            }
            for k in (*node_kinds, "admin-assign")
        },
        "all_p99_ms": round(pct([x for k in node_kinds for x in c.lat[k]], 99) * 1000, 1),
        "errors": dict(c.errors),
        "registered": len(dep["nodes"]),
        "completed": len(done),
        "states": dict(states),
        "checked_nodes_with_all_lines": f"{lines_ok}/{len(sample)}",
        "lost": nodes - states.get("done", 0) + (len(sample) - lines_ok),
    }
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--poll", type=float, default=2.0, help="seconds between polls (client: 5)")
    ap.add_argument(
        "--pg", default=os.environ.get("DISTRO_BUILDER_TEST_PG_URL"),
        help="PostgreSQL URL (default $DISTRO_BUILDER_TEST_PG_URL; unset: skipped)",
    )  # fmt: skip
    ap.add_argument(
        "--workers", default="1,4",
        help="serve --workers counts to run on PostgreSQL, comma-separated (SQLite: 1)",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--storm", type=int, default=64, help="concurrent wrong logins (memory)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-installer-") as tmp:
        work = Path(tmp)
        results.append(run(f"sqlite:///{work / 'bench.sqlite'}", "sqlite", args.nodes, args.poll,
                           work))  # fmt: skip
        if args.pg:
            import psycopg

            for workers in (int(w) for w in args.workers.split(",")):
                with psycopg.connect(args.pg, autocommit=True) as conn:
                    for t in PG_TABLES:
                        conn.execute(f"DROP TABLE IF EXISTS {t} CASCADE")
                results.append(
                    run(args.pg, "postgresql", args.nodes, args.poll, work, workers=workers)
                )
        else:
            print("PostgreSQL: skipped (set DISTRO_BUILDER_TEST_PG_URL or --pg)")
    for r in results:
        print(f"\n== {r['database']}, {r['workers']} worker(s): {r['nodes']} nodes, "
              f"{r['wall_s']} s, {r['requests']} requests, {r['rps']} req/s, "
              f"p99 {r['all_p99_ms']} ms")  # fmt: skip
        for k, v in r["latency_ms"].items():
            print(f"   {k:13} n={v['n']:6}  p50 {v['p50']:7} ms  p99 {v['p99']:7} ms  "
                  f"max {v['max']:7} ms")  # fmt: skip
        print(f"   registered {r['registered']}, completed {r['completed']}, states "
              f"{r['states']}, lines checked {r['checked_nodes_with_all_lines']}, "
              f"errors {r['errors'] or 'none'}, lost {r['lost']}")  # fmt: skip
    storm = login_storm_figure(args.storm)
    print(f"\n== login storm: {args.storm} concurrent wrong logins, {storm['seconds']} s: "
          f"server RSS {storm['rss_before_mib']} -> {storm['rss_peak_mib']} MiB at the peak, "
          f"/healthz max {storm['healthz_max_s']} s over {storm['healthz_count']} requests, "
          f"statuses {storm['statuses']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"nodes": results, "login_storm": storm}, indent=2))
    return 1 if any(r["lost"] for r in results) else 0


def login_storm_figure(n: int) -> dict:
    """The server's memory under `n` concurrent wrong logins (auth.LoginGuard bounds it: before,
    64 took it from 80 to 734 MiB) and /healthz's slowest answer meanwhile."""
    sys.path.insert(0, str(ROOT))
    from tests.integration.installer_live import ADMIN as USER
    from tests.integration.installer_live import ADMIN_PASSWORD as SECRET
    from tests.integration.installer_live import Service, cli, login_storm

    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'storm.sqlite'}"
        cli("installer", "admin", "create", USER, "--password-stdin", db=url, stdin=SECRET)
        svc = Service(url, Path(tmp) / "serve.log")
        try:
            return login_storm(svc, n)
        finally:
            svc.stop()


if __name__ == "__main__":
    sys.exit(main())
