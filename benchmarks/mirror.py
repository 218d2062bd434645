"""Benchmark: 50 concurrent clients download the whole package archive from `serve --disc`.

The disc is the benchmark base of benchmarks/run.py (the demo disc tree, its netboot tree
included, plus incompressible 1-5 MB filler .debs under pool/main/; --size-mb, cached in
--workdir). One `distro-builder serve --disc BASE` process on loopback (SQLite); N `curl`
clients (C, so the clients are not what is measured) start together, each fetches every file
below dists/ and pool/ of the disc once, in order, like apt on a fresh mirror, and writes it to
/dev/null. Every response is checked: status 200 and exactly the file's size.

Reported, in the same run: the aggregate MB/s of the clients (all bytes / wall time from the first
start to the last end), `cat BASE > /dev/null` (page cache warm, like the server's reads;
median of 5) as the floor, their ratio, the CPU time of the server and of the clients, the
server's peak RSS (VmHWM; serve is gunicorn's master and its worker: both counted), errors.
Goal: within 2x of cat's throughput, under 200 MiB, zero errors. Exits 1 when a response was
wrong (not on speed).

The machine's own ceiling for this load, in the same run: nginx (Debian's nginx-light, sendfile
on, a worker per CPU) serving the same bytes from the same ISO file to the same 50 curl clients
(each file as a byte range of the ISO: a 206 of exactly the file's size). cat never touches TCP;
nginx shows what loopback TCP and the clients leave on this machine. Skipped, and said so,
without /usr/sbin/nginx.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MB = 1_000_000
MIB = 1 << 20


def note(msg: str) -> None:
    print(f"bench-mirror: {msg}", file=sys.stderr, flush=True)


def archive_files(iso: Path) -> list[tuple[str, int, int]]:
    """(disc path, size, offset in the ISO) of every regular file below dists/ and pool/."""
    from distro_builder.imagemodel import EntryKind
    from distro_builder.media.iso import IsoImage

    out = []
    with IsoImage(iso) as image:
        for top in ("/dists", "/pool"):
            for e in image.walk(top):
                if e.kind is EntryKind.file:
                    offset, size = image.extent(e.path)
                    out.append((e.path, size, offset))
    return out


def cat_seconds(path: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def vm(pid: int, key: str) -> float:
    """A /proc status figure (VmRSS, VmHWM) in MiB, summed over the process and its children
    (gunicorn's worker, nginx's workers)."""
    from tests.integration.installer_live import proc_status

    return proc_status(pid, key)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of a running process and its children (their threads included)."""
    from tests.integration.installer_live import process_tree

    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


def run_clients(configs: list[Path], files: list[tuple[str, int, int]], code: str) -> dict:
    """Start one curl per config at once; wall time, bytes, errors (a status other than `code`
    or a size other than the file's), the clients' CPU."""
    fmt = "%{http_code} %{size_download}\\n"
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["curl", "-sS", "--max-time", "600", "-w", fmt, "-K", str(cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for cfg in configs
    ]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    errors = got = 0
    want = [size for _, size, _ in files]
    for p, (out, err) in zip(procs, outs, strict=True):
        lines = out.split()
        codes, sizes = lines[0::2], [int(s) for s in lines[1::2]]
        got += sum(sizes)
        bad = p.returncode != 0 or codes != [code] * len(files) or sizes != want
        errors += bad
        if bad:
            note(f"client error: rc {p.returncode}, {err.strip()[:200]}")
    return {
        "wall": wall, "bytes": got, "errors": errors,
        "clients_cpu": (children.ru_utime + children.ru_stime)
        - (children0.ru_utime + children0.ru_stime),
    }  # fmt: skip


NGINX_CONF = """daemon off;
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 5;
    default_type application/octet-stream;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def nginx_reference(iso: Path, work: Path, files: list[tuple[str, int, int]], n: int) -> dict:
    """The same bytes from the same ISO file to the same clients, served by nginx."""
    from tests.integration.installer_live import closed_port

    nginx = Path("/usr/sbin/nginx")
    if not nginx.exists():
        note("no /usr/sbin/nginx (apt-get install nginx-light): no reference server")
        return {}
    d = work / "nginx"
    d.mkdir(exist_ok=True)
    port = closed_port()
    (d / "nginx.conf").write_text(NGINX_CONF.format(dir=d, port=port, root=iso.parent))
    proc = subprocess.Popen([str(nginx), "-c", str(d / "nginx.conf"), "-p", str(d)])
    try:
        url = f"http://127.0.0.1:{port}/{iso.name}"
        deadline = time.monotonic() + 30
        while subprocess.run(["curl", "-sf", "-o", "/dev/null", "-r", "0-0", url]).returncode:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"nginx did not start: {(d / 'error.log').read_text()}")
            time.sleep(0.2)
        # A range is one operation's option: `next` starts the next one, with its own -w.
        block = (
            'url = "{url}"\noutput = "/dev/null"\nrange = "{first}-{last}"\n'
            'max-time = 600\nwrite-out = "%{{http_code}} %{{size_download}}\\n"\n'
        )
        text = "next\n".join(
            block.format(url=url, first=off, last=off + size - 1) for _, size, off in files
        )
        configs = []
        for i in range(n):
            cfg = work / f"nginx-client-{i}.curl"
            cfg.write_text(text)
            configs.append(cfg)
        cpu0 = cpu_seconds(proc.pid)
        result = run_clients(configs, files, "206")
        cpu1 = cpu_seconds(proc.pid)
        result["server_cpu"] = sum(cpu1) - sum(cpu0)
        result["peak_rss"] = vm(proc.pid, "VmHWM")
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--size-mb", type=int, default=300, help="size of the benchmark disc")
    ap.add_argument("--workdir", type=Path, help="keep (and reuse) the disc here")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()

    from run import build_base  # benchmarks/run.py: the remaster benchmark's base

    from tests.integration.installer_live import ADMIN_PASSWORD, Service, cli

    tmp = tempfile.TemporaryDirectory(prefix="bench-mirror.")
    work = args.workdir or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    iso = build_base(work, args.size_mb)
    files = archive_files(iso)
    archive = sum(size for _, size, _ in files)
    size = iso.stat().st_size
    note(f"disc {size / MB:.0f} MB; archive {len(files)} files, {archive / MB:.1f} MB")

    db = f"sqlite:///{work / 'mirror.sqlite'}"
    (work / "mirror.sqlite").unlink(missing_ok=True)
    cli("installer", "admin", "create", "admin", "--password-stdin", db=db, stdin=ADMIN_PASSWORD)
    svc = Service(db, work / "serve.log", extra=("--disc", str(iso)))
    assert svc.proc is not None
    pid = svc.proc.pid
    try:
        idle_rss = vm(pid, "VmRSS")
        configs = []
        for i in range(args.clients):
            cfg = work / f"client-{i}.curl"
            cfg.write_text(
                "".join(
                    f'url = "{svc.url}/disc{path}"\noutput = "/dev/null"\n' for path, _, _ in files
                )
            )
            configs.append(cfg)
        cat_seconds(iso)  # warm the page cache (the server reads the same pages)
        cat_s = statistics.median(cat_seconds(iso) for _ in range(5))
        note(f"{args.clients} clients x {archive / MB:.1f} MB")
        server_cpu0 = cpu_seconds(pid)
        served = run_clients(configs, files, "200")
        user1, sys1 = cpu_seconds(pid)
        server_user, server_sys = user1 - server_cpu0[0], sys1 - server_cpu0[1]
        server_cpu = server_user + server_sys
        peak_rss = vm(pid, "VmHWM")
    finally:
        rc = svc.stop()
    note(f"reference: nginx, {args.clients} clients x {archive / MB:.1f} MB")
    ref = nginx_reference(iso, work, files, args.clients)
    wall, got, errors = served["wall"], served["bytes"], served["errors"]
    clients_cpu = served["clients_cpu"]
    agg = got / wall / MB
    cat_rate = size / cat_s / MB
    ref_agg = ref["bytes"] / ref["wall"] / MB if ref else None
    result = {
        "clients": args.clients, "files": len(files), "archive_mb": archive / MB,
        "bytes": got, "wall_s": wall, "aggregate_mb_s": agg, "cat_mb_s": cat_rate,
        "cat_over_serve": cat_rate / agg if agg else None, "server_peak_rss_mib": peak_rss,
        "server_idle_rss_mib": idle_rss,
        "server_cpu_s": server_cpu, "server_user_s": server_user, "clients_cpu_s": clients_cpu,
        "nginx_mb_s": ref_agg, "nginx_over_serve": ref_agg / agg if ref_agg and agg else None,
        "nginx_cpu_s": ref.get("server_cpu"), "nginx_clients_cpu_s": ref.get("clients_cpu"),
        "nginx_peak_rss_mib": ref.get("peak_rss"), "nginx_errors": ref.get("errors"),
        "cpus": os.cpu_count(),
        "errors": errors, "server_exit": rc,
        "load_avg": os.getloadavg(),
    }  # fmt: skip
    print(f"mirror: {args.clients} clients x {len(files)} files ({archive / MB:.1f} MB each)")
    print(f"  serve --disc   {agg:9.1f} MB/s aggregate ({got / MB:.0f} MB in {wall:.2f} s)")
    print(
        f"  cat ISO        {cat_rate:9.1f} MB/s ({iso.stat().st_size / MB:.0f} MB in {cat_s:.2f} s)"
    )
    print(f"  ratio          cat/serve x{cat_rate / agg:.2f} (goal <= 2)")
    if ref_agg:
        print(
            f"  nginx (ref.)   {ref_agg:9.1f} MB/s aggregate (same bytes, same clients, "
            f"{ref['wall']:.2f} s; CPU nginx {ref['server_cpu']:.1f} s, curl "
            f"{ref['clients_cpu']:.1f} s; {ref['errors']} errors)"
        )
        print(
            f"  ratio          nginx/serve x{ref_agg / agg:.2f}; "
            f"cat/nginx x{cat_rate / ref_agg:.2f}"
        )
    print(f"  server RSS     peak {peak_rss:.1f} MiB (idle {idle_rss:.1f} MiB; goal < 200)")
    print(
        f"  CPU            server {server_cpu:.1f} s ({server_user:.1f} s Python, "
        f"{server_sys:.1f} s kernel), curl clients {clients_cpu:.1f} s "
        f"in {wall:.1f} s wall on {os.cpu_count()} CPUs"
    )
    print(f"  errors         {errors}")
    print(f"  load average   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    tmp.cleanup()
    return 1 if errors or rc != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
