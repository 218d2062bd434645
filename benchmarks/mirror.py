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
server's peak RSS (VmHWM), errors. Goal: within 2x of cat's throughput, under 200 MiB, zero
errors. Exits 1 when a response was wrong (not on speed).
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


def archive_files(iso: Path) -> list[tuple[str, int]]:
    """(disc path, size) of every regular file below dists/ and pool/."""
    from distro_builder.media.iso import IsoImage
    from distro_builder.model import EntryKind

    out = []
    with IsoImage(iso) as image:
        for top in ("/dists", "/pool"):
            for e in image.walk(top):
                if e.kind is EntryKind.file:
                    out.append((e.path, image.extent(e.path)[1]))
    return out


def cat_seconds(path: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def vm(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of a running process (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


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
    archive = sum(size for _, size in files)
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
                    f'url = "{svc.url}/disc{path}"\noutput = "/dev/null"\n' for path, _ in files
                )
            )
            configs.append(cfg)
        cat_seconds(iso)  # warm the page cache (the server reads the same pages)
        cat_s = statistics.median(cat_seconds(iso) for _ in range(5))
        note(f"{args.clients} clients x {archive / MB:.1f} MB")
        fmt = "%{http_code} %{size_download}\\n"
        server_cpu0 = cpu_seconds(pid)
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
        user1, sys1 = cpu_seconds(pid)
        server_user, server_sys = user1 - server_cpu0[0], sys1 - server_cpu0[1]
        server_cpu = server_user + server_sys
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        clients_cpu = (children.ru_utime + children.ru_stime) - (
            children0.ru_utime + children0.ru_stime
        )
        peak_rss = vm(pid, "VmHWM")
        errors = 0
        got = 0
        want = [size for _, size in files]
        for p, (out, err) in zip(procs, outs, strict=True):
            lines = out.split()
            codes, sizes = lines[0::2], [int(s) for s in lines[1::2]]
            got += sum(sizes)
            bad = p.returncode != 0 or codes != ["200"] * len(files) or sizes != want
            errors += bad
            if bad:
                note(f"client error: rc {p.returncode}, {err.strip()[:200]}")
    finally:
        rc = svc.stop()
    agg = got / wall / MB
    cat_rate = size / cat_s / MB
    result = {
        "clients": args.clients, "files": len(files), "archive_mb": archive / MB,
        "bytes": got, "wall_s": wall, "aggregate_mb_s": agg, "cat_mb_s": cat_rate,
        "cat_over_serve": cat_rate / agg if agg else None, "server_peak_rss_mib": peak_rss,
        "server_idle_rss_mib": idle_rss,
        "server_cpu_s": server_cpu, "server_user_s": server_user, "clients_cpu_s": clients_cpu,
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
