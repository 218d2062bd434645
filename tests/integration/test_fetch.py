"""The package cache against a real HTTP server on loopback: verified downloads, a tampered file
refused, an interrupted download resumed with Range, a corrupt cache entry fetched again, offline
mode naming what is missing, and index paths that escape the repository refused.

The server is Python's http.server with a small Range handler (the stdlib one has none); it is a
real HTTP peer on 127.0.0.1, not a mock of the fetcher.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from distro_builder.archive import index
from distro_builder.archive.debs import build_deb
from distro_builder.archive.fetch import Fetcher, Progress
from distro_builder.archive.repository import Repository
from distro_builder.archive.sources import parse_source_line
from distro_builder.errors import ArchiveError
from distro_builder.model import IndexPackage

pytestmark = pytest.mark.integration

PAYLOAD = bytes(range(256)) * 800  # 200 KiB
CONTROL = {
    "Package": "python-eventlet", "Version": "1.0", "Architecture": "all",
    "Maintainer": "t <t@example.invalid>", "Description": "test\n test",
}  # fmt: skip
DEB = "pool/main/p/python-eventlet/python-eventlet_1.0_all.deb"


class _Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; records each request with its connection (the client's port)
    and the status sent, counts requests in flight at once."""

    protocol_version = "HTTP/1.1"
    root: Path
    requests: list[tuple[str, str | None]]
    log: list[tuple[str, str | None, int, int]]  # path, Range, client port, status
    cut_first: set[str]
    corrupt: set[str]
    ignore_range: bool
    delay: float
    throttle: int  # bytes per second per response (0: as fast as it goes)
    inflight: list[int]  # [now, most]
    lock: threading.Lock

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.log.append((self.path, self.headers.get("Range"), self.client_address[1], status))
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.cut_first:  # die half way, once
            self.cut_first.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        step = max(self.throttle // 10, 1) if self.throttle else len(body) or 1
        for i in range(0, len(body), step):
            self.wfile.write(body[i : i + step])
            if self.throttle:
                time.sleep(0.1)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        with self.lock:
            self.inflight[0] += 1
            self.inflight[1] = max(self.inflight)
        try:
            if self.delay:
                time.sleep(self.delay)
            self._get()
        finally:
            with self.lock:
                self.inflight[0] -= 1

    def _get(self) -> None:
        rng = self.headers.get("Range")
        self.requests.append((self.path, rng))
        path = self.root / urllib.parse.unquote(self.path).lstrip("/")
        if not path.is_file():
            self._send(404, b"not found")
            return
        data = path.read_bytes()
        if self.path in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        if not rng or self.ignore_range:
            self._send(200, data)
            return
        m = re.fullmatch(r"bytes=(\d+)-", rng)
        assert m, rng
        start = int(m.group(1))
        if start >= len(data):
            self._send(416, b"")
            return
        crange = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send(206, data[start:], {"Content-Range": crange})


def _serve(root: Path, **attrs: object) -> tuple[http.server.ThreadingHTTPServer, type[_Handler]]:
    fields: dict[str, object] = {
        "root": root, "requests": [], "log": [], "cut_first": set(), "corrupt": set(),
        "ignore_range": False, "delay": 0.0, "throttle": 0, "inflight": [0, 0],
        "lock": threading.Lock(),
    }  # fmt: skip
    fields.update(attrs)
    handler = type("H", (_Handler,), fields)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, handler


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, type[_Handler]]]:
    root = tmp_path / "www"
    (root / "pool/main/n/nova").mkdir(parents=True)
    (root / "pool/main/n/nova/nova-api_1_all.deb").write_bytes(PAYLOAD)
    httpd, handler = _serve(root)
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _pkg(url: str, **kw: object) -> IndexPackage:
    fields: dict[str, object] = {
        "name": "nova-api", "version": "1", "arch": "all", "origin": "lucid/main",
        "filename": "pool/main/n/nova/nova-api_1_all.deb", "size": len(PAYLOAD),
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "md5": hashlib.md5(PAYLOAD).hexdigest(),
        "repo": url,
    }  # fmt: skip
    fields.update(kw)
    return IndexPackage(**fields)  # type: ignore[arg-type]


def test_download_is_verified_cached_and_reported(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    events: list[Progress] = []
    f = Fetcher(tmp_path / "cache")
    paths = f.fetch_all([_pkg(url)], events.append)
    (path,) = paths.values()
    assert path.read_bytes() == PAYLOAD
    assert path == tmp_path / "cache/by-hash/SHA256" / hashlib.sha256(PAYLOAD).hexdigest()
    assert events[-1].files_done == 1 and events[-1].bytes_done == len(PAYLOAD)
    assert events[-1].bytes_total == len(PAYLOAD)
    n = len(handler.requests)
    f.fetch_all([_pkg(url)])  # a cache hit: no request
    assert len(handler.requests) == n


def test_md5_is_used_only_when_the_index_has_nothing_stronger(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    (path,) = Fetcher(tmp_path / "c").fetch_all([_pkg(url, sha256="")]).values()
    assert path.parent.name == "MD5Sum"
    with pytest.raises(ArchiveError, match="no SHA256 or MD5sum"):
        Fetcher(tmp_path / "c2").fetch_all([_pkg(url, sha256="", md5="")])


def test_tampered_file_is_rejected_after_a_second_try(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    bad = _pkg(url, sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ArchiveError, match="corrupt or tampered"):
        Fetcher(tmp_path / "cache").fetch_all([bad])
    assert len(handler.requests) == 2  # fetched again once, then refused
    assert not list((tmp_path / "cache" / "by-hash").rglob("*"))[1:]  # nothing cached


def test_corrupt_cache_entry_is_discarded_and_fetched_again(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    f = Fetcher(tmp_path / "cache")
    (path,) = f.fetch_all([_pkg(url)]).values()
    path.write_bytes(PAYLOAD[:-1] + b"\0")
    (again,) = f.fetch_all([_pkg(url)]).values()
    assert again.read_bytes() == PAYLOAD
    assert len(handler.requests) == 2


def test_interrupted_download_resumes_with_range(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    handler.cut_first.add("/pool/main/n/nova/nova-api_1_all.deb")
    (path,) = Fetcher(tmp_path / "cache").fetch_all([_pkg(url)]).values()
    assert path.read_bytes() == PAYLOAD
    (first, second) = handler.requests
    assert first[1] is None
    assert second[1] == f"bytes={len(PAYLOAD) // 2}-"


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    part = tmp_path / "cache/partial" / f"SHA256-{hashlib.sha256(PAYLOAD).hexdigest()}"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:1000])
    (path,) = Fetcher(tmp_path / "cache").fetch_all([_pkg(url)]).values()
    assert path.read_bytes() == PAYLOAD
    assert handler.requests == [("/pool/main/n/nova/nova-api_1_all.deb", "bytes=1000-")]


def test_offline_uses_the_cache_and_names_what_is_missing(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    Fetcher(tmp_path / "cache").fetch_all([_pkg(url)])
    n = len(handler.requests)
    other = _pkg(url, name="nova-compute", sha256=hashlib.sha256(b"x").hexdigest(), size=1)
    offline = Fetcher(tmp_path / "cache", offline=True)
    assert len(offline.fetch_all([_pkg(url)])) == 1
    with pytest.raises(ArchiveError, match=r"offline: 1 package\(s\) missing .*nova-compute_1_all"):
        offline.fetch_all([_pkg(url), other])
    assert len(handler.requests) == n


@pytest.mark.parametrize("filename", ["../secret.deb", "/etc/passwd", "pool/../../x.deb"])
def test_filename_escaping_the_repository_is_refused(server, tmp_path: Path, filename: str) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    with pytest.raises(ArchiveError, match="escapes the repository root"):
        Fetcher(tmp_path / "cache").fetch_all([replace(_pkg(url), filename=filename)])
    assert handler.requests == []


def test_http_index_is_cached_for_offline_use(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    target = f"{url}/pool/main/n/nova/nova-api_1_all.deb"
    assert Fetcher(tmp_path / "c").read(target) == PAYLOAD
    assert Fetcher(tmp_path / "c", offline=True).read(target) == PAYLOAD
    assert Fetcher(tmp_path / "c").read(f"{url}/nope", optional=True) is None
    with pytest.raises(ArchiveError, match="offline: .* is not in the cache"):
        Fetcher(tmp_path / "c", offline=True).read(f"{url}/other")


def test_an_index_still_vouched_for_is_not_downloaded_again(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """apt's "Hit": the Release is fetched every time; an index whose kept copy matches its
    SHA-256 there is read from the copy. When the mirror moves on, the new one is fetched; a
    kept copy that was damaged is fetched again."""
    url, handler = server
    www = handler.root
    plain = index.render_packages(
        [index.packages_stanza(build_deb(CONTROL, {"/usr/share/doc/x": b"x"}, mtime=0), DEB)]
    ).encode()
    packages = "dists/lucid/main/binary-amd64/Packages.gz"

    def publish(data: bytes) -> None:
        (www / packages).parent.mkdir(parents=True, exist_ok=True)
        (www / packages).write_bytes(data)
        (www / "dists/lucid/Release").write_text(
            index.render_release({"Suite": "lucid"}, {"main/binary-amd64/Packages.gz": data})
        )

    def read() -> list[str]:
        handler.requests.clear()
        repo = Repository.read(parse_source_line(f"deb {url} lucid main"), Fetcher(tmp_path / "c"))
        assert [p.version for p in repo.packages]
        return sorted(path for path, _ in handler.requests)

    publish(index.gzip_bytes(plain))
    assert f"/{packages}" in read()  # the first time: downloaded
    assert read() == ["/dists/lucid/Release"]  # and nothing else
    publish(index.gzip_bytes(plain.replace(b"Version: 1.0", b"Version: 1.1")))
    assert f"/{packages}" in read()  # the mirror moved on
    kept = next((tmp_path / "c" / "lists").glob("*Packages.gz"))
    kept.write_bytes(kept.read_bytes()[:-1] + b"!")
    assert f"/{packages}" in read()  # a damaged copy is not trusted


# -- concurrency, resume, mirrors, Ctrl-C (issue 23) -----------------------------------------------


def _many(root: Path, url: str, n: int, size: int = 100_000) -> list[IndexPackage]:
    pkgs = []
    for i in range(n):
        data = hashlib.sha256(str(i).encode()).digest() * (size // 32)
        rel = f"pool/main/p/pkg{i}/pkg{i}_1_all.deb"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        pkgs.append(
            _pkg(url, name=f"pkg{i}", filename=rel, size=len(data), md5="",
                 sha256=hashlib.sha256(data).hexdigest())
        )  # fmt: skip
    return pkgs


def test_downloads_overlap_on_few_kept_alive_connections(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """12 files with 0.1 s of server latency each: several are in flight at once, never more
    than per_host, over at most per_host connections that are reused."""
    url, handler = server
    handler.delay = 0.1
    pkgs = _many(handler.root, url, 12)
    paths = Fetcher(tmp_path / "cache", per_host=3).fetch_all(pkgs)
    assert len(paths) == 12 and all(p.is_file() for p in paths.values())
    assert len(handler.log) == 12
    assert handler.inflight[1] >= 2, "the downloads ran one after another"
    assert handler.inflight[1] <= 3, "more connections than per_host"
    ports = {port for _, _, port, _ in handler.log}
    assert len(ports) <= 3, f"{len(ports)} connections for 12 requests: not kept alive"


def test_resume_sends_range_and_gets_206(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    part = tmp_path / "cache/partial" / f"SHA256-{hashlib.sha256(PAYLOAD).hexdigest()}"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:5000])
    events: list[Progress] = []
    (path,) = Fetcher(tmp_path / "cache").fetch_all([_pkg(url)], events.append).values()
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert [(r, s) for _, r, _, s in handler.log] == [("bytes=5000-", 206)]
    assert events[-1].received == len(PAYLOAD) - 5000  # only the rest came over the wire
    assert events[-1].bytes_done == len(PAYLOAD)


def test_a_server_ignoring_range_is_read_from_the_start(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    handler.ignore_range = True
    part = tmp_path / "cache/partial" / f"SHA256-{hashlib.sha256(PAYLOAD).hexdigest()}"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:5000])
    events: list[Progress] = []
    (path,) = Fetcher(tmp_path / "cache").fetch_all([_pkg(url)], events.append).values()
    assert path.read_bytes() == PAYLOAD
    assert [(r, s) for _, r, _, s in handler.log] == [("bytes=5000-", 200)]
    assert events[-1].bytes_done == len(PAYLOAD)  # not the 5000 bytes counted twice


def _dead_url() -> str:
    """A loopback port nothing listens on (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/ubuntu"


def test_a_dead_first_mirror_falls_back_to_the_second(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    dead = _dead_url()
    f = Fetcher(tmp_path / "cache")
    f.add_mirrors(dead, [url])
    pkgs = [replace(p, repo=dead) for p in _many(handler.root, url, 3)]
    paths = f.fetch_all(pkgs)
    assert sorted(p.read_bytes() for p in paths.values()) == sorted(
        (handler.root / p.filename).read_bytes() for p in pkgs
    )
    assert len(handler.log) == 3  # each fetched once, from the mirror


def test_a_source_line_with_a_dead_url_reads_and_fetches_from_its_mirror(
    server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    www = handler.root
    deb = build_deb(CONTROL, {"/usr/share/doc/x": b"x"}, mtime=0)
    (www / DEB).parent.mkdir(parents=True, exist_ok=True)
    (www / DEB).write_bytes(deb)
    plain = index.render_packages([index.packages_stanza(deb, DEB)]).encode()
    packages = "dists/lucid/main/binary-amd64/Packages.gz"
    (www / packages).parent.mkdir(parents=True)
    (www / packages).write_bytes(index.gzip_bytes(plain))
    (www / "dists/lucid/Release").write_text(
        index.render_release(
            {"Suite": "lucid"}, {"main/binary-amd64/Packages.gz": (www / packages).read_bytes()}
        )
    )
    f = Fetcher(tmp_path / "c")
    dead = _dead_url()
    spec = parse_source_line(f"deb [mirror={url}] {dead} lucid main")
    assert spec.mirrors == (url,)
    repo = Repository.read(spec, f)
    (pkg,) = repo.packages
    assert pkg.repo == dead  # the repository's name stays its first URL
    (path,) = f.fetch_all([pkg]).values()
    assert path.read_bytes() == deb
    # the kept index copy is under the first URL: --offline finds it whichever mirror served it
    assert Repository.read(spec, Fetcher(tmp_path / "c", offline=True)).packages


def test_a_corrupt_file_on_one_mirror_is_fetched_from_the_next(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    httpd2, handler2 = _serve(handler.root)
    url2 = f"http://127.0.0.1:{httpd2.server_address[1]}"
    try:
        handler.corrupt.add("/pool/main/n/nova/nova-api_1_all.deb")
        f = Fetcher(tmp_path / "cache")
        f.add_mirrors(url, [url2])
        (path,) = f.fetch_all([_pkg(url)]).values()
        assert path.read_bytes() == PAYLOAD
        assert len(handler.log) == 1 and len(handler2.log) == 1
        # corrupt on every mirror: refused, nothing in the cache
        handler2.corrupt.add("/pool/main/n/nova/nova-api_1_all.deb")
        path.unlink()
        with pytest.raises(ArchiveError, match="corrupt or tampered"):
            f.fetch_all([_pkg(url)])
        assert not path.exists()
    finally:
        httpd2.shutdown()
        httpd2.server_close()


def test_one_missing_package_fails_after_the_others_are_fetched(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    pkgs = _many(handler.root, url, 4)
    (handler.root / pkgs[0].filename).unlink()
    f = Fetcher(tmp_path / "cache")
    with pytest.raises(ArchiveError, match=r"pkg0_1_all.deb: HTTP 404"):
        f.fetch_all(pkgs)
    assert all(f.cached(p) for p in pkgs[1:])


_INTERRUPTED = """
import signal
import sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a job may ignore it)
from pathlib import Path
from distro_builder.archive.fetch import Fetcher
from distro_builder.model import IndexPackage

url, cache, size, shas = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
pkgs = [
    IndexPackage(name=f"pkg{i}", version="1", arch="all", origin="t", repo=url,
                 filename=f"pool/big{i}.deb", size=size, sha256=sha)
    for i, sha in enumerate(shas)
]
def started(p):
    if p.received:
        print("receiving", flush=True)
try:
    Fetcher(Path(cache)).fetch_all(pkgs, started)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_leaves_no_half_file_in_the_cache_and_the_next_run_resumes(
    server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A real SIGINT to a process in the middle of two slow downloads: it stops within a
    moment, the cache holds no file, the .part files stay; the next run continues them."""
    url, handler = server
    bigs = [bytes([i]) + bytes(range(256)) * 4096 * 8 for i in range(2)]  # 8 MiB, served slowly
    for i, big in enumerate(bigs):
        (handler.root / f"pool/big{i}.deb").write_bytes(big)
    handler.throttle = 1_000_000  # bytes per second per response
    shas = [hashlib.sha256(big).hexdigest() for big in bigs]
    size = len(bigs[0])
    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED, url, str(cache), str(size), *shas],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "receiving"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        out, _ = proc.communicate(timeout=10)
        assert time.monotonic() - start < 5, "Ctrl-C took too long"
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in out, (proc.returncode, out[-300:])
    assert not [p for p in (cache / "by-hash").rglob("*") if p.is_file()]
    parts = sorted((cache / "partial").iterdir())
    assert len(parts) == 2 and all(0 < p.stat().st_size < size for p in parts)
    have = {p.name.split("-", 1)[1]: p.stat().st_size for p in parts}
    handler.throttle = 0
    handler.log.clear()
    pkgs = [
        IndexPackage(name=f"pkg{i}", version="1", arch="all", origin="t", repo=url,
                     filename=f"pool/big{i}.deb", size=size, sha256=sha)
        for i, sha in enumerate(shas)
    ]  # fmt: skip
    paths = Fetcher(cache).fetch_all(pkgs)
    assert [paths[p.key].read_bytes() == big for p, big in zip(pkgs, bigs, strict=True)] == [
        True,
        True,
    ]
    assert sorted((r, s) for _, r, _, s in handler.log) == sorted(
        (f"bytes={have[sha]}-", 206) for sha in shas
    )


def test_build_shows_its_download_progress_and_no_nested_times(
    tmp_path: Path, demo_base: Path, data_dir: Path
) -> None:
    """`build` against the DEMO repositories over HTTP (50 ms a request): the fetch step says
    where it stands at once and what it fetched at the end; one "done in" per step; no temporary
    path shown as the output."""
    from distro_builder.demorepo import SOURCES_LIST, build_demo_repo

    repo = build_demo_repo(data_dir, tmp_path / "repo")
    httpd, handler = _serve(repo, delay=0.05)
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        text = (repo / SOURCES_LIST).read_text().replace(f"file://{repo}", url)
        assert url in text
        (tmp_path / "http.list").write_text(text)
        proc = subprocess.run(
            [sys.executable, "-m", "distro_builder", "--data-dir", str(data_dir), "build",
             "--base", str(demo_base), "-o", str(tmp_path / "out.iso"),
             "--sources", str(tmp_path / "http.list"), "--cache", str(tmp_path / "cache")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    err = proc.stderr
    assert re.search(
        r"==> Fetching (\d+) packages.*\n    Fetching 0/\d+ files, 0\.0 of [\d.]+ MB\n", err
    )
    assert re.search(r"\n    \d+ files, [\d.]+ MB \([\d.]+ MB new\) in [\d.]+s, [\d.]+ MB/s\n", err)
    assert err.count("==> ") == err.count("done in"), err
    # the write names the output, not the staging folder's temporary file
    assert f"==> Writing {tmp_path / 'out.iso'}\n" in err and "distro-builder-" not in err, err
    assert len({p for _, _, p, _ in handler.log}) <= 12  # two hosts' worth of kept connections


def test_two_names_for_one_file_are_fetched_once(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    events: list[Progress] = []
    pkgs = [_pkg(url), _pkg(url, name="nova-api-alias")]
    paths = Fetcher(tmp_path / "cache").fetch_all(pkgs, events.append)
    assert len(paths) == 2 and len(set(paths.values())) == 1
    assert len(handler.log) == 1
    last = events[-1]
    assert (last.files_done, last.files_total) == (2, 2)
    assert last.bytes_done == last.bytes_total == len(PAYLOAD)
