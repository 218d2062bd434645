"""Benchmark: the same package set downloaded by distro-builder's fetch layer and by apt.

A repository of N packages (default 150, sizes log-uniform between 20 KB and 2 MB, seeded,
incompressible payloads: apt and the fetcher check sizes and SHA-256, not contents) is served on
127.0.0.1 by an HTTP/1.1 server in its own process (keep-alive, pipelined requests answered in
order as any HTTP/1.1 server does) that waits 50 ms before every response (--latency-ms) and
sends all its connections' bytes through one 100 Mbit/s token bucket (--mbit): a far mirror
behind a link of that speed.

In one run, each from a fresh cache, in a child process:

- `distro-builder`: `Repository.read()` (Release and Packages.gz) then `Fetcher.fetch_all()` of
  every package, as `distro-builder fetch` does after resolving (in its own process, with the
  imports);
- `apt`: `apt-get update` then `apt-get download` of every package, in a throwaway root
  (`-o Dir=ROOT`: its own sources.list with `[trusted=yes]`, lists, cache and an empty dpkg
  status; apt's defaults otherwise: one connection, Pipeline-Depth 10).

Reported: each wall time (median of --runs), the bytes downloaded, bytes/bandwidth (the floor:
the payload at the capped rate) and each time's ratio to it; the goal (issue 23) is
distro-builder <= apt and within x1.2 of bytes/bandwidth. Both downloads are checked (every file
there with its size). Exits 1 on a wrong download, not on speed. Run it under `nice`.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.server
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distro_builder.archive.fetch import PER_HOST  # noqa: E402


def note(msg: str) -> None:
    print(f"bench-download: {msg}", file=sys.stderr, flush=True)


# -- the repository ------------------------------------------------------------------------------


def make_repository(www: Path, n: int, seed: int) -> list[tuple[str, int]]:
    """N packages under pool/, their Packages(.gz) and an unsigned Release; (name, size)."""
    from distro_builder.archive import index

    rng = random.Random(seed)
    stanzas, out = [], []
    for i in range(n):
        size = int(20_000 * (100 ** rng.random()))  # 20 KB .. 2 MB, log-uniform
        name = f"bench-pkg{i:03d}"
        rel = f"pool/main/b/{name}/{name}_1.0_all.deb"
        data = rng.randbytes(size)
        (www / rel).parent.mkdir(parents=True, exist_ok=True)
        (www / rel).write_bytes(data)
        stanzas.append(
            f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: bench <b@x.invalid>\n"
            f"Filename: {rel}\nSize: {size}\nMD5sum: {hashlib.md5(data).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\nDescription: benchmark payload\n"
        )
        out.append((name, size))
    plain = "\n".join(stanzas).encode()
    comp = www / "dists/bench/main/binary-amd64"
    comp.mkdir(parents=True)
    gz = gzip.compress(plain, mtime=0)
    (comp / "Packages").write_bytes(plain)
    (comp / "Packages.gz").write_bytes(gz)
    release = index.render_release(
        {"Suite": "bench", "Codename": "bench", "Architectures": "amd64", "Components": "main",
         "Date": "Thu, 01 Jan 2026 00:00:00 UTC"},
        {"main/binary-amd64/Packages": plain, "main/binary-amd64/Packages.gz": gz},
    )  # fmt: skip
    (www / "dists/bench/Release").write_text(release)
    return out


# -- the server (its own process) ----------------------------------------------------------------


def serve(www: Path, latency: float, mbit: float, port_file: Path) -> None:
    rate = mbit * 1e6 / 8
    bucket = [time.monotonic()]
    lock = threading.Lock()
    stats = {"requests": 0, "bytes": 0, "connections": 0}

    def send(wfile: object, data: bytes) -> None:
        for i in range(0, len(data), 16384):
            chunk = data[i : i + 16384]
            with lock:
                start = max(time.monotonic(), bucket[0])
                bucket[0] = start + len(chunk) / rate
                until = bucket[0]
            delay = until - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            wfile.write(chunk)  # type: ignore[attr-defined]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with lock:
                stats["connections"] += 1

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            time.sleep(latency)
            path = www / self.path.split("?")[0].lstrip("/")
            if ".." in self.path or not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            send(self.wfile, data)
            with lock:
                stats["requests"] += 1
                stats["bytes"] += len(data)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_file.write_text(str(httpd.server_address[1]))
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


# -- the two clients -----------------------------------------------------------------------------

_OURS = """
import sys, time
from pathlib import Path
t0 = time.monotonic()
from distro_builder.archive.fetch import Fetcher
from distro_builder.archive.repository import Repository
from distro_builder.archive.sources import parse_source_line
f = Fetcher(Path(sys.argv[2]), per_host=int(sys.argv[3]))
repo = Repository.read(parse_source_line(f"deb [trusted=yes] {sys.argv[1]} bench main"), f)
paths = f.fetch_all(list(repo.packages))
print(len(paths), sum(p.stat().st_size for p in paths.values()))
"""


def run_ours(url: str, work: Path, per_host: int) -> tuple[float, Path]:
    cache = work / "ours-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    argv = [sys.executable, "-c", _OURS, url, str(cache), str(per_host)]
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start, cache / "by-hash"


def run_apt(url: str, work: Path, names: list[str]) -> tuple[float, Path]:
    root = work / "apt-root"
    shutil.rmtree(root, ignore_errors=True)
    for d in ("etc/apt/sources.list.d", "etc/apt/preferences.d", "etc/apt/apt.conf.d",
              "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg",
              "out"):  # fmt: skip
        (root / d).mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] {url} bench main\n")
    (root / "var/lib/dpkg/status").write_text("")
    (root / "etc/apt/apt.conf").write_text("")  # the host's apt.conf is not read
    opts = [
        "-o", f"Dir={root}", "-o", "Dir::State::status=" + str(root / "var/lib/dpkg/status"),
        "-o", "APT::Architecture=amd64", "-o", "APT::Architectures::=amd64",
        "-o", "Acquire::Languages=none", "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1", "-qq",
    ]  # fmt: skip
    env = {**os.environ, "APT_CONFIG": str(root / "etc/apt/apt.conf"), "LC_ALL": "C"}
    start = time.monotonic()
    subprocess.run(["apt-get", *opts, "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", *opts, "download", *names], check=True, env=env,
                   cwd=root / "out", stdout=subprocess.DEVNULL)  # fmt: skip
    return time.monotonic() - start, root / "out"


def _check(folder: Path, sizes: list[int]) -> bool:
    got = sorted(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return got == sorted(sizes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packages", type=int, default=150)
    ap.add_argument("--latency-ms", type=float, default=50)
    ap.add_argument("--mbit", type=float, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--per-host", type=int, default=PER_HOST, help="the fetcher's connections")
    ap.add_argument("--no-apt", action="store_true", help="time distro-builder alone")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    ap.add_argument("--serve", nargs=4, metavar=("WWW", "LATENCY", "MBIT", "PORTFILE"),
                    help=argparse.SUPPRESS)  # fmt: skip
    args = ap.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), float(args.serve[1]), float(args.serve[2]), Path(args.serve[3]))
        return 0
    if not shutil.which("apt-get"):
        note("apt-get is missing (Debian package apt)")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        work = Path(tmp)
        pkgs = make_repository(work / "www", args.packages, args.seed)
        names = [n for n, _ in pkgs]
        sizes = [s for _, s in pkgs]
        total = sum(sizes)
        port_file = work / "port"
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(work / "www"),
             str(args.latency_ms / 1000), str(args.mbit), str(port_file)],
        )  # fmt: skip
        try:
            for _ in range(100):
                if port_file.is_file() and port_file.read_text():
                    break
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port_file.read_text()}"
            floor = total * 8 / (args.mbit * 1e6)
            note(f"{len(pkgs)} packages, {total / 1e6:.1f} MB; {args.latency_ms:.0f} ms per "
                 f"request, {args.mbit:.0f} Mbit/s: bytes/bandwidth {floor:.2f} s")  # fmt: skip
            ours, apt, ok = [], [], True
            for i in range(args.runs):  # interleaved
                t, folder = run_ours(url, work, args.per_host)
                ok &= _check(folder, sizes)
                ours.append(t)
                if args.no_apt:
                    apt.append(float("nan"))
                    continue
                t, folder = run_apt(url, work, names)
                ok &= _check(folder, sizes)
                apt.append(t)
                note(f"run {i + 1}: distro-builder {ours[-1]:.2f} s, apt {apt[-1]:.2f} s")
        finally:
            server.terminate()
            server.wait()
    mo, ma = statistics.median(ours), statistics.median(apt)
    figures = {
        "date": time.strftime("%Y-%m-%d"), "packages": len(pkgs), "bytes": total,
        "latency_ms": args.latency_ms, "mbit": args.mbit, "floor_s": floor,
        "distro_builder_s": ours, "apt_s": apt, "distro_builder_median_s": mo,
        "apt_median_s": ma, "distro_builder_vs_apt": mo / ma,
        "distro_builder_vs_floor": mo / floor, "apt_vs_floor": ma / floor, "downloads_ok": ok,
    }  # fmt: skip
    print(json.dumps(figures, indent=2))
    print(
        f"distro-builder {mo:.2f} s (x{mo / floor:.2f} bytes/bandwidth), apt {ma:.2f} s "
        f"(x{ma / floor:.2f}); distro-builder/apt x{mo / ma:.2f}; goals: <= apt "
        f"{'met' if mo <= ma else 'NOT met'}, <= x1.2 bytes/bandwidth "
        f"{'met' if mo <= 1.2 * floor else 'NOT met'}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if not ok:
        note("a download was wrong (a missing file or a wrong size)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
