"""Reading repositories and the content-addressed package cache. The only module doing network I/O.

Indexes (Release, Packages) are read with `read()`: `file://` URLs and plain paths from the file
system, `http(s)://` over the shared connection pools (a copy is kept under `<cache>/lists/` so
`--offline` can work). Packages are fetched with `fetch_all()` into
`<cache>/by-hash/<SHA256|MD5Sum>/<hex>`:

- several at once over kept-alive connections, at most `per_host` connections to one host (apt
  keeps one connection per host and pipelines up to 10 requests on it, Acquire::http::Pipeline-
  Depth; urllib3 does not pipeline, so a few parallel connections hide the round trips instead),
  the largest and the smallest files in turn, so that a small file's round trip overlaps a big
  one's transfer and no big file is left alone at the end (benchmarks/download.py: with 4
  connections, largest-first took x1.48 the bytes/bandwidth floor, interleaved x1.23; 6
  interleaved x1.10);
- into `<cache>/partial/<algorithm>-<hex>` (the .part file), continued with a `Range:` request
  when a transfer broke off or an earlier run was interrupted; a server that answers a Range with
  200 (no range support) is read from the start, and a 206 for another offset is not appended;
- from the repository's other mirrors (RepoSpec.mirrors, `add_mirrors()`) when one fails: an
  HTTP error, a host that cannot be reached (tried last from then on), or a file that does not
  match the index;
- checked against the index: the size and the SHA256 (MD5 only when the index has nothing
  stronger) before the .part file is renamed into the cache, so the cache never holds a half or
  unverified file (Ctrl-C included: the .part file stays for the next run);
- `offline=True` uses the cache alone and names every missing package.

urllib3 is the HTTP client (not urllib, not hand-written http.client code) because it is the
well-kept pool every Python HTTP stack builds on (requests, pip, botocore), packaged by Debian
(python3-urllib3): per-host pools with a hard bound (`maxsize`, `block=True`), keep-alive with
dropped-connection detection, redirects, streamed bodies with Content-Length enforced, TLS with
certificate checks. What it leaves out (resume, mirrors, checksums, the queue) is ours below.
Paths taken from an index are untrusted: `check_filename()` refuses absolute paths and `..`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from distro_builder.basedigest import default_cache_dir
from distro_builder.errors import ArchiveError
from distro_builder.model import IndexPackage

if TYPE_CHECKING:
    import urllib3

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
USER_AGENT = "distro-builder (apt-like fetcher)"
PER_HOST = 6  # connections to one host at most: browsers' HTTP/1.1 bound (apt: 1, pipelined)
LOCAL_WORKERS = 2  # file:// and local folders: copies, hashed as they go
_REPORT_EVERY = 0.25  # seconds between progress reports


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a fetch_all() run stands (for a progress line)."""

    files_done: int
    files_total: int
    bytes_done: int  # cached, resumed and received bytes of the files to fetch
    bytes_total: int
    current: str  # a file being fetched ('' when none)
    received: int = 0  # bytes received over the network or copied in this run (for the rate)
    active: int = 0  # transfers under way


ProgressCallback = Callable[[Progress], None]


def check_filename(filename: str, *, flat: bool = False, where: str = "") -> str:
    """Return an index `Filename:` if it stays inside the repository, else raise ArchiveError.

    Refused: empty, absolute, a URL, backslashes, `.`/`..`/empty parts; for a `dists/` archive
    also anything outside `pool/`.
    """
    bad = (
        not filename
        or filename.startswith("/")
        or "\\" in filename
        or "\0" in filename
        or "://" in filename
        or any(part in ("", ".", "..") for part in filename.split("/"))
    )
    if not bad and not flat and not filename.startswith("pool/"):
        bad = True
    if bad:
        raise ArchiveError(
            f"refused Filename {filename!r}{f' in {where}' if where else ''}: "
            "it escapes the repository root or the pool",
            hint="the index is broken or hostile; do not use this repository",
        )
    return filename


def _is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def url_to_path(url: str) -> Path:
    """The local path of a `file://` URL or a plain path."""
    if url.startswith("file://"):
        parsed = urllib.parse.urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ArchiveError(f"{url}: file URLs with a host are not supported")
        return Path(urllib.parse.unquote(parsed.path))
    if "://" in url:
        raise ArchiveError(
            f"{url}: unsupported URL scheme", hint="use file://, a local directory or http(s)://"
        )
    return Path(url)


def join_url(base: str, rel: str) -> str:
    """`base` (a repository root) + a checked relative path."""
    return (
        base.rstrip("/") + "/" + urllib.parse.quote(rel)
        if _is_remote(base)
        else (base.rstrip("/") + "/" + rel)
    )


def best_hash(pkg: IndexPackage) -> tuple[str, str]:
    """(algorithm, hex) to check a package with: SHA256, else MD5Sum (old indexes)."""
    if pkg.sha256:
        return "SHA256", pkg.sha256.lower()
    if pkg.md5:
        return "MD5Sum", pkg.md5.lower()
    raise ArchiveError(
        f"{pkg.key} ({pkg.origin}) has no SHA256 or MD5sum in its index",
        hint="the index cannot vouch for the file; use a repository with checksums",
    )


def _hash_file(path: Path, algorithm: str) -> str:
    h = hashlib.sha256() if algorithm == "SHA256" else hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _host(url: str) -> str:
    """The queue a download waits in: scheme://host:port, '' for local files."""
    if not _is_remote(url):
        return ""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# -- HTTP ----------------------------------------------------------------------------------------


class _Unreachable(ArchiveError):
    """No answer from the host (refused, timed out, name unknown): its mirrors are asked."""


class _Stopped(Exception):
    """The run is stopping (Ctrl-C, or a fatal error elsewhere): leave the .part file."""


class _Http:
    """The connection pools: one per host, at most `per_host` connections each (a download
    waits for a free one), kept alive between requests. `http_proxy`/`https_proxy`/`no_proxy`
    are honoured as urllib honours them.

    urllib3 and urllib.request are imported here, with the first HTTP URL: a build whose
    indexes and packages are all local or cached does not pay for them (about 40 ms of a
    build's imports, `python -X importtime`).
    """

    def __init__(self, per_host: int, timeout: float) -> None:
        import urllib.request

        import urllib3

        self._request = urllib.request
        # what a transfer raises: urllib3's errors, and OSError from the socket beneath
        self.errors: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)
        # Redirects are followed (mirrors redirect); nothing else is retried by urllib3: a
        # failed transfer is resumed by _download(), an unreachable host is left for its next
        # mirror.
        retry = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5)
        kw = dict(
            num_pools=32, maxsize=per_host, block=True, retries=retry,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            headers={"User-Agent": USER_AGENT},
        )  # fmt: skip
        self._direct = urllib3.PoolManager(**kw)  # type: ignore[arg-type]
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        for scheme, proxy in self._request.getproxies().items():
            if scheme in ("http", "https"):
                self._proxied[scheme] = urllib3.ProxyManager(proxy, **kw)  # type: ignore[arg-type]

    def _manager(self, url: str) -> urllib3.PoolManager:
        parts = urllib.parse.urlsplit(url)
        proxied = self._proxied.get(parts.scheme)
        if proxied is not None and not self._request.proxy_bypass(parts.hostname or ""):
            return proxied
        return self._direct

    def open(self, url: str, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        """The response to GET `url` (any status), its body not read yet. Raises _Unreachable."""
        try:
            return self._manager(url).request(
                "GET", url, headers=headers, preload_content=False, decode_content=False
            )
        except self.errors as e:
            raise _Unreachable(f"{url}: {_why(e)}", hint="check the URL and the network") from e

    def close(self) -> None:
        self._direct.clear()
        for m in self._proxied.values():
            m.clear()


def _done_with(resp: urllib3.BaseHTTPResponse, *, complete: bool) -> None:
    """Hand the connection back: kept alive after a complete body, closed otherwise."""
    if not complete:
        resp.close()
    resp.release_conn()


# -- a run of fetch_all --------------------------------------------------------------------------


@dataclass
class _Run:
    """The shared state of one fetch_all(): counters for the progress line, results, errors."""

    files_total: int
    bytes_total: int
    bytes_cached: int
    files_done: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    file_bytes: dict[str, int] = field(default_factory=dict)  # key -> bytes in its .part file
    received: int = 0
    errors: list[BaseException] = field(default_factory=list)
    results: dict[str, Path] = field(default_factory=dict)
    shares: dict[str, int] = field(default_factory=dict)  # key -> packages that are this file

    def at(self, key: str, n: int) -> None:
        """`key`'s .part file now holds `n` bytes (resumed, restarted or discarded)."""
        with self.lock:
            self.file_bytes[key] = n

    def got(self, key: str, n: int) -> None:
        with self.lock:
            self.file_bytes[key] = self.file_bytes.get(key, 0) + n
            self.received += n

    def check(self) -> None:
        if self.stop.is_set():
            raise _Stopped

    def snapshot(self) -> Progress:
        with self.lock:
            active = [k for k in self.file_bytes if k not in self.results]
            return Progress(
                files_done=self.files_done,
                files_total=self.files_total,
                bytes_done=self.bytes_cached + sum(self.file_bytes.values()),
                bytes_total=self.bytes_total,
                current=active[-1] if active else "",
                received=self.received,
                active=len(active),
            )


class Fetcher:
    """Reads indexes and fetches packages into a content-addressed cache."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        offline: bool = False,
        timeout: float = 30.0,
        retries: int = 3,
        per_host: int = PER_HOST,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.offline = offline
        self.timeout = timeout
        self.retries = retries
        self.per_host = max(1, per_host)
        self._mirrors: dict[str, tuple[str, ...]] = {}
        self._unreachable: set[str] = set()  # hosts that did not answer: their mirrors first
        self._http_pools: _Http | None = None
        self._lock = threading.Lock()

    @property
    def _http(self) -> _Http:
        with self._lock:
            if self._http_pools is None:
                self._http_pools = _Http(self.per_host, self.timeout)
            return self._http_pools

    def add_mirrors(self, url: str, mirrors: Sequence[str]) -> None:
        """`mirrors` serve the same repository as `url`: asked, in order, when it fails."""
        if mirrors:
            self._mirrors[url.rstrip("/")] = tuple(m.rstrip("/") for m in mirrors)

    def _candidates(self, url: str) -> list[str]:
        """`url` and the same file on each mirror of its repository; a host that did not
        answer before goes last."""
        for base, alternatives in self._mirrors.items():
            if url == base or url.startswith(base + "/"):
                rest = url[len(base) :]
                out = []
                for b in (base, *alternatives):
                    tail = (
                        rest
                        if _is_remote(b) or not _is_remote(base)
                        else urllib.parse.unquote(rest)
                    )
                    out.append(b + tail)
                return sorted(out, key=lambda u: _host(u) in self._unreachable)
        return [url]

    # -- indexes ---------------------------------------------------------------------------------

    def _list_copy(self, url: str) -> Path:
        return self.cache_dir / "lists" / urllib.parse.quote(url, safe="")

    def kept(self, url: str) -> bytes | None:
        """The copy kept from an earlier download of `url` (remote only), unchecked: None when
        there is none. The caller decides whether it is still good (repository.py: it matches
        the Release just checked, apt's "Hit")."""
        if not _is_remote(url):
            return None
        try:
            return self._list_copy(url).read_bytes()
        except OSError:
            return None

    def read(self, url: str, *, optional: bool = False) -> bytes | None:
        """The content at `url` (an index file). None when `optional` and it does not exist.

        A mirror that does not answer, or answers with an error other than 404, makes way for
        the next; a 404 is the repository's answer (the file is not there)."""
        if not _is_remote(url):
            path = url_to_path(url)
            try:
                return path.read_bytes()
            except FileNotFoundError:
                if optional:
                    return None
                raise ArchiveError(
                    f"{url}: no such file", hint="check the repository URL"
                ) from None
            except OSError as e:
                raise ArchiveError(f"{url}: cannot read: {e.strerror}") from e
        copy = self._list_copy(url)  # under the first URL, whichever mirror served it
        if self.offline:
            if copy.is_file():
                return copy.read_bytes()
            if optional:
                return None
            raise ArchiveError(
                f"offline: {url} is not in the cache ({self.cache_dir})",
                hint="run once without --offline to fill the cache",
            )
        data: bytes | None = None
        errors: list[ArchiveError] = []
        candidates = self._candidates(url)
        for n, candidate in enumerate(candidates, 1):
            try:
                data = self._get(candidate)
                break
            except _Missing:
                if optional:
                    return None
                raise ArchiveError(
                    f"{candidate}: HTTP 404 Not Found", hint="check the URL and the suite"
                ) from None
            except ArchiveError as e:
                errors.append(e)
                if n < len(candidates):
                    log.warning("%s; trying the next mirror", e)
        if data is None:
            raise _combined(errors, url)
        copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = copy.with_name(copy.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, copy)
        return data

    def _get(self, url: str) -> bytes:
        try:
            resp = self._http.open(url)
        except _Unreachable:
            self._unreachable.add(_host(url))
            raise
        complete = False
        try:
            if resp.status == 404:
                raise _Missing(url)
            if resp.status != 200:
                raise ArchiveError(f"{url}: HTTP {resp.status} {resp.reason}")
            data = resp.read()
            complete = True
        except self._http.errors as e:
            raise ArchiveError(f"{url}: {e}", hint="check the URL and the network") from e
        finally:
            _done_with(resp, complete=complete)
        return data

    # -- packages --------------------------------------------------------------------------------

    def cache_path(self, pkg: IndexPackage) -> Path:
        algorithm, hexdigest = best_hash(pkg)
        return self.cache_dir / "by-hash" / algorithm / hexdigest

    def cached(self, pkg: IndexPackage) -> Path | None:
        """The cached file of `pkg` if it matches its index entry; a bad one is removed."""
        path = self.cache_path(pkg)
        if not path.is_file():
            return None
        algorithm, hexdigest = best_hash(pkg)
        if path.stat().st_size == pkg.size and _hash_file(path, algorithm) == hexdigest:
            return path
        log.warning("cache: %s does not match the index (corrupt or tampered): discarded", pkg.key)
        path.unlink()
        return None

    def fetch_all(
        self, packages: Iterable[IndexPackage], progress: ProgressCallback | None = None
    ) -> dict[str, Path]:
        """Every package in the cache, verified: {pkg.key: path}.

        Downloads run in threads (per_host per host); `progress` is called from the calling
        thread, about four times a second and once at the end. Offline, raises ArchiveError
        naming every package missing from the cache. A package no mirror could give is an
        ArchiveError after the others are fetched; Ctrl-C stops every transfer within a chunk.
        """
        pkgs = sorted({p.key: p for p in packages}.values(), key=lambda p: p.key)
        out: dict[str, Path] = {}
        todo: list[IndexPackage] = []
        for p in pkgs:
            hit = self.cached(p)
            if hit is not None:
                out[p.key] = hit
            else:
                todo.append(p)
        if todo and self.offline:
            names = ", ".join(f"{p.key} ({p.origin})" for p in todo)
            raise ArchiveError(
                f"offline: {len(todo)} package(s) missing from the cache {self.cache_dir}: {names}",
                hint="run once without --offline to fetch them",
            )
        # one download per cache file (two names for one file are fetched once)
        by_file: dict[Path, list[IndexPackage]] = {}
        for p in todo:
            by_file.setdefault(self.cache_path(p), []).append(p)
        jobs = _interleaved(
            sorted((same[0] for same in by_file.values()), key=lambda p: (-p.size, p.key))
        )
        cached = sum(p.size for p in pkgs if p.key in out)
        run = _Run(
            files_total=len(pkgs),
            bytes_total=cached + sum(p.size for p in jobs),  # a file two names share: once
            bytes_cached=cached,
            files_done=len(out),
            shares={same[0].key: len(same) for same in by_file.values()},
        )
        queues: dict[str, queue.SimpleQueue[IndexPackage]] = {}
        for p in jobs:
            if not p.repo:
                raise ArchiveError(f"{p.key} ({p.origin}) has no repository to fetch it from")
            check_filename(p.filename, flat=True, where=p.origin)
            queues.setdefault(_host(p.repo), queue.SimpleQueue()).put(p)
        workers = [
            threading.Thread(
                target=self._work, args=(q, run), name=f"fetch {host or 'local'}", daemon=True
            )
            for host, q in queues.items()
            for _ in range(min(q.qsize(), LOCAL_WORKERS if not host else self.per_host))
        ]
        if progress is not None:
            progress(run.snapshot())
        for t in workers:
            t.start()
        try:
            for t in workers:
                while t.is_alive():
                    t.join(_REPORT_EVERY)
                    if progress is not None:
                        progress(run.snapshot())
        except BaseException:
            run.stop.set()  # every transfer ends within a chunk; .part files stay for a resume
            for t in workers:
                t.join(2.0)
            raise
        fatal = [e for e in run.errors if not isinstance(e, ArchiveError)]
        if fatal:
            raise fatal[0]
        if run.errors:
            raise _combined(run.errors, f"{len(run.errors)} of {len(jobs)} packages")
        for path, same in by_file.items():
            for p in same:
                out[p.key] = path
        if progress is not None:
            progress(run.snapshot())
        return out

    def _work(self, jobs: queue.SimpleQueue[IndexPackage], run: _Run) -> None:
        while not run.stop.is_set():
            try:
                p = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                path = self._fetch_one(p, run)
            except _Stopped:
                return
            except ArchiveError as e:  # this package failed: the others go on
                with run.lock:
                    run.errors.append(e)
                continue
            except BaseException as e:  # a full disk, a bug: everything stops
                with run.lock:
                    run.errors.append(e)
                run.stop.set()
                return
            with run.lock:
                run.results[p.key] = path
                run.files_done += run.shares.get(p.key, 1)

    def _fetch_one(self, pkg: IndexPackage, run: _Run) -> Path:
        algorithm, hexdigest = best_hash(pkg)
        dest = self.cache_path(pkg)
        part = self.cache_dir / "partial" / f"{algorithm}-{hexdigest}"
        part.parent.mkdir(parents=True, exist_ok=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        urls = self._candidates(join_url(pkg.repo, pkg.filename))
        # a single source is asked twice after a mismatch (a transfer may have been garbled);
        # with mirrors, each is asked once
        attempts = urls if len(urls) > 1 else urls * 2
        errors: list[ArchiveError] = []
        for i, url in enumerate(attempts):
            try:
                if _is_remote(url):
                    self._download(url, part, pkg, run, alone=len(urls) == 1)
                else:
                    self._copy(url, part, pkg, run)
            except _Stopped:
                raise
            except ArchiveError as e:
                if len(urls) == 1:
                    raise
                errors.append(e)
                log.warning(
                    "%s; %s",
                    e,
                    "trying the next mirror" if i + 1 < len(attempts) else "no mirror left",
                )
                continue
            size = part.stat().st_size
            if size == pkg.size and _hash_file(part, algorithm) == hexdigest:
                os.replace(part, dest)
                run.at(pkg.key, pkg.size)
                return dest
            part.unlink()
            run.at(pkg.key, 0)
            log.warning(
                "%s: %d bytes, %s does not match the index (%s): %s",
                url, size, algorithm, pkg.origin,
                "fetching it again" if i + 1 < len(attempts) else "giving up",
            )  # fmt: skip
            errors.append(
                ArchiveError(
                    f"{url} does not match its index entry ({algorithm} or size differ): "
                    "corrupt or tampered",
                    hint="the repository's file and its Packages index disagree; report it to "
                    "its owner",
                )
            )
        raise errors[-1] if len(urls) == 1 else _combined(errors, f"{pkg.key}: every mirror failed")

    def _copy(self, url: str, part: Path, pkg: IndexPackage, run: _Run) -> None:
        src = url_to_path(url)
        run.at(pkg.key, 0)
        try:
            with open(src, "rb") as fin, open(part, "wb") as fout:
                for chunk in iter(lambda: fin.read(_CHUNK), b""):
                    run.check()
                    fout.write(chunk)
                    run.got(pkg.key, len(chunk))
        except FileNotFoundError:
            part.unlink(missing_ok=True)
            raise ArchiveError(
                f"{src}: listed in the index but missing", hint="the repository is incomplete"
            ) from None
        except BaseException:
            part.unlink(missing_ok=True)  # a local copy is not resumed: no partial file is kept
            raise

    def _download(self, url: str, part: Path, pkg: IndexPackage, run: _Run, *, alone: bool) -> None:
        """Download into `part`, continuing what is there; resumes interrupted transfers.

        Raises ArchiveError for an HTTP error, a host that does not answer (at once when there
        are mirrors to ask), or a transfer that broke off `retries` times."""
        size = pkg.size
        last: Exception | None = None
        for _ in range(self.retries):
            run.check()
            have = part.stat().st_size if part.exists() else 0
            if have > size:
                part.unlink()
                have = 0
            if size and have == size:
                return
            run.at(pkg.key, have)
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                resp = self._http.open(url, headers)
            except _Unreachable as e:
                self._unreachable.add(_host(url))
                if not alone:
                    raise
                last = e
                continue
            complete = False
            try:
                if resp.status == 416 and have:  # the partial file is bad: start over
                    part.unlink(missing_ok=True)
                    last = ArchiveError(f"{url}: HTTP 416 for bytes={have}-")
                    complete = True
                    resp.drain_conn()
                    continue
                if resp.status not in (200, 206):
                    raise ArchiveError(
                        f"{url}: HTTP {resp.status} {resp.reason}",
                        hint="the mirror lacks the file or fails: run again, or give the "
                        "repository another mirror (mirror=URL in its source line)",
                    )
                if have and resp.status == 200:
                    log.debug("%s: no range support, starting over", url)
                    have = 0
                elif resp.status == 206 and not _range_starts_at(resp, have):
                    log.debug("%s: 206 for another range, starting over", url)
                    part.unlink(missing_ok=True)
                    last = ArchiveError(f"{url}: 206 for another range than bytes={have}-")
                    continue
                elif have:
                    log.debug("resuming %s at byte %d", url.rsplit("/", 1)[-1], have)
                run.at(pkg.key, have)
                with open(part, "ab" if have else "wb") as f:
                    while True:
                        run.check()
                        chunk = resp.read(_CHUNK, decode_content=False)
                        if not chunk:
                            break
                        f.write(chunk)
                        run.got(pkg.key, len(chunk))
                complete = True
            except self._http.errors as e:
                if isinstance(e, OSError) and e.errno is not None and not _is_network_errno(e):
                    raise  # the disk, not the network (ENOSPC, EACCES...)
                last = e
                log.warning("%s: interrupted (%s), resuming", url, e)
                continue
            finally:
                _done_with(resp, complete=complete)
            got = part.stat().st_size if part.exists() else 0
            if got >= size:
                return
            last = ArchiveError(f"{url}: connection closed after {got} of {size} bytes")
            log.warning("%s: interrupted after %d of %d bytes, resuming", url, got, size)
        raise ArchiveError(
            f"{url}: download failed after {self.retries} attempts: {last}",
            hint="check the network; run again to resume",
        )

    def close(self) -> None:
        """Close the kept-alive connections."""
        if self._http_pools is not None:
            self._http_pools.close()


def _interleaved(by_size: list[IndexPackage]) -> list[IndexPackage]:
    """The largest, the smallest, the next largest...: a small file's round trip overlaps a
    large one's transfer, and no large file is left alone at the end."""
    out = []
    lo, hi = 0, len(by_size) - 1
    while lo <= hi:
        out.append(by_size[lo])
        if lo != hi:
            out.append(by_size[hi])
        lo, hi = lo + 1, hi - 1
    return out


class _Missing(ArchiveError):
    """404: the file is not in the repository."""


def _why(e: BaseException) -> str:
    """The cause of a transfer error in a few words (the OSError beneath urllib3's wrappers:
    `[Errno 111] Connection refused`, not the connection object's repr)."""
    seen: BaseException | None = getattr(e, "reason", None) or e
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return f"[Errno {seen.errno}] {seen.strerror}" if seen.errno else seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(getattr(e, "reason", None) or e)


def _range_starts_at(resp: urllib3.BaseHTTPResponse, offset: int) -> bool:
    """A 206's Content-Range (`bytes START-END/TOTAL`) starts at `offset`."""
    value = resp.headers.get("Content-Range", "")
    unit, _, spec = value.partition(" ")
    start = spec.partition("-")[0]
    return unit == "bytes" and start.isdigit() and int(start) == offset


def _is_network_errno(e: OSError) -> bool:
    import errno

    return e.errno in (
        errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED, errno.EPIPE, errno.ETIMEDOUT,
        errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN,
    )  # fmt: skip


def _combined(errors: Sequence[BaseException], what: str) -> ArchiveError:
    """One ArchiveError for what several mirrors or packages said."""
    if len(errors) == 1 and isinstance(errors[0], ArchiveError):
        return errors[0]
    first = errors[0] if errors else None
    hint = getattr(first, "hint", None) or "check the URLs and the network; run again to resume"
    return ArchiveError(f"{what}: " + "; ".join(str(e) for e in errors), hint=hint)


def copy_to(path: Path, dest: Path) -> None:
    """Copy a cached file into a staging tree (a hard link when possible)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, dest)
    except OSError:
        shutil.copyfile(path, dest)
