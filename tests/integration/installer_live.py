"""The Smart Installer as the tests meet it: a real `distro-builder serve` process on loopback
over a real database (an SQLite file, or PostgreSQL when DISTRO_BUILDER_TEST_PG_URL is set), and a
small HTTP client. Shared by tests/integration/test_installer_*.py and benchmarks/installer.py.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import require_tool_or_skip

ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "DISTRO_BUILDER_TEST_PG_URL"
ADMIN, ADMIN_PASSWORD = "admin", "correct horse battery"
# A deployment's global parameters for the network-install tests (serve --disc, pxe-smoke).
NETBOOT_PARAMS = {
    "controller_address": "10.0.2.15", "floating_range": "172.24.4.0/24",
    "nova_db_password": "dbsecret-1", "rabbit_password": "rabbitsecret-2",
    "mysql_root_password": "mysqlsecret-3", "admin_password": "adminsecret-4",
    "volume_address": "10.0.2.15", "volume_host": "ctl",
}  # fmt: skip
PG_TABLES = (
    "events", "nodes", "deployments", "sessions", "admins", "login_failures", "schema_migrations",
)  # fmt: skip


def reset_postgres(url: str) -> None:
    """An empty database: drop the installer's tables."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for t in PG_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {t} CASCADE")


def cli(*args: str, db: str, stdin: str | None = None, check: bool = True):
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", *args, "--db", db],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
    return proc


class Service:
    """`distro-builder serve` on 127.0.0.1, any free port. `wrap` goes before its argv (e.g.
    `ip netns exec NS`) and `host` is where the tests reach its `listen` address then."""

    def __init__(
        self,
        db: str,
        log: Path,
        *,
        extra: tuple[str, ...] = (),
        verbose: bool = False,
        listen: str = "127.0.0.1:0",
        host: str = "127.0.0.1",
        wrap: tuple[str, ...] = (),
    ) -> None:
        self.db, self.log, self.extra, self.verbose = db, log, extra, verbose
        self.listen, self.host, self.wrap = listen, host, wrap
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        self.logf = open(self.log, "a")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [*self.wrap, sys.executable, "-m", "distro_builder",
             *(["-v"] if self.verbose else []), "serve", "--db", self.db,
             "--listen", self.listen, *self.extra],
            stdout=self.logf, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening on (https?)://[^/\s]+:(\d+)/", line)
            if m:
                self.scheme, self.port = m[1], int(m[2])
                self.url = f"{self.scheme}://{self.host}:{self.port}"
                # Keep draining stderr into the log so the server never blocks on it.
                import threading

                def drain(stream=self.proc.stderr, out=self.logf) -> None:
                    for ln in stream:
                        out.write(ln)
                        out.flush()

                threading.Thread(target=drain, daemon=True).start()
                self._wait_ready(deadline)
                return
        raise AssertionError("the service did not start:\n" + "".join(lines))

    def _wait_ready(self, deadline: float) -> None:
        """Until /healthz answers: the socket listens from the start, requests are served once
        gunicorn's worker has opened the database (and its memory is there to measure)."""
        import ssl

        while True:
            if self.scheme == "https":
                ctx = ssl._create_unverified_context()
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=10, context=ctx
                )
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                raise AssertionError(f"the service does not answer: see {self.log}")
            time.sleep(0.1)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.logf.close()
        return rc

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- HTTP -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | str | None = None,
        json_body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
        source: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on its own connection; `source`: the client's loopback address."""
        h = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            h.setdefault("Content-Type", "application/json")
        if token:
            h["Authorization"] = f"Bearer {token}"
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection(
            self.host, self.port, timeout=timeout, source_address=(source, 0) if source else None
        )
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        status, headers, body = self.request(method, path, **kw)
        assert headers.get("content-type", "").startswith("application/json"), (status, body)
        return status, json.loads(body)

    def login(self, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> str:
        status, data = self.json(
            "POST", "/api/login", json_body={"username": user, "password": password}
        )
        assert status == 200, data
        return str(data["token"])


def parse_pairs(body: bytes) -> dict[str, str]:
    """key='value' lines (as the agent reads them)."""
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, raw = line.partition("=")
        assert raw.startswith("'") and raw.endswith("'"), line
        out[key] = raw[1:-1].replace("'\\''", "'")
    return out


def inventory(
    hostname: str,
    macs: list[str],
    *,
    virt: str = "vmx",
    disks: tuple[str, ...] = ("sda 20971520 used", "sdb 10485760 free"),
) -> str:
    lines = [f"hostname={hostname}", "cpus=4", f"virt={virt}", "mem_kb=8388608"]
    lines += [f"nic=eth{i} {mac} up" for i, mac in enumerate(macs)]
    lines += [f"disk={d}" for d in disks]
    return "\n".join(lines) + "\n"


def create_deployment(
    svc: Service, name: str, params: dict[str, str], architecture: str = "dual-node"
) -> str:
    """Create a deployment through the JSON API, set its global parameters; its enrolment token."""
    admin = svc.login()
    status, data = svc.json(
        "POST", "/api/deployments", token=admin,
        json_body={"name": name, "architecture": architecture},
    )  # fmt: skip
    assert status == 201, data
    status, data2 = svc.json(
        "PUT", f"/api/deployments/{name}/params", token=admin, json_body=params
    )  # fmt: skip
    assert status == 200, data2
    return str(data["enrolment_token"])


def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate and its key (PEM) for a TLS service."""
    require_tool_or_skip("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=installer.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the login storm (tests/integration/test_installer_hostile.py, benchmarks/installer.py) -------


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants: `serve` is gunicorn's master, the requests are served by its
    worker process."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for children in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in children.read_text().split()]
            except OSError:  # the task ended meanwhile
                pass
    return found


def proc_status(pid: int, key: str) -> float:
    """A /proc/PID/status figure in kB summed over the process and its descendants, in MiB."""
    total, seen = 0, False
    for p in process_tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:  # ended meanwhile
            continue
        for line in lines:
            if line.startswith(f"{key}:"):
                total += int(line.split()[1])
                seen = True
    if not seen:
        raise AssertionError(f"no {key} for {pid}")
    return total / 1024


def rss_mib(pid: int) -> float:
    """The resident memory of a process and its descendants now, in MiB (/proc)."""
    return proc_status(pid, "VmRSS")


def login_storm(svc: Service, n: int = 64, *, user: str = ADMIN) -> dict[str, Any]:
    """`n` concurrent wrong logins (one connection each, released together) while /healthz is
    asked every 50 ms and the server's RSS sampled every 10 ms. The statuses, the RSS before and
    at its peak, and the slowest /healthz."""
    import collections
    import threading

    assert svc.proc is not None
    pid = svc.proc.pid
    before = rss_mib(pid)
    statuses: collections.Counter[int] = collections.Counter()
    healthz: list[float] = []
    peak = [before]
    done = threading.Event()
    barrier = threading.Barrier(n)
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            status, _, _ = svc.request(
                "POST", "/api/login", timeout=120,
                json_body={"username": user, "password": f"wrong guess {i}"},
            )  # fmt: skip
        except OSError:
            status = 0
        with lock:
            statuses[status] += 1

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.01)

    def health() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            status, _, _ = svc.request("GET", "/healthz", timeout=10)
            healthz.append(time.perf_counter() - t0 if status == 200 else float("inf"))
            time.sleep(0.05)

    helpers = [threading.Thread(target=f, daemon=True) for f in (sample, health)]
    for t in helpers:
        t.start()
    t0 = time.perf_counter()
    workers = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    seconds = time.perf_counter() - t0
    done.set()
    for t in helpers:
        t.join()
    return {
        "statuses": dict(statuses),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(peak[0], 1),
        "healthz_max_s": round(max(healthz), 3) if healthz else None,
        "healthz_count": len(healthz),
        "seconds": round(seconds, 2),
    }
