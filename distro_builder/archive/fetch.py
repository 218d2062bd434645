"""Reading repositories and the content-addressed package cache. The only module doing network I/O.

Indexes (Release, Packages) are read with `read()`: `file://` URLs and plain paths from the file
system, `http(s)://` with urllib (a copy is kept under `<cache>/lists/` so `--offline` can work).
Packages are fetched with `fetch_all()` into `<cache>/by-hash/<SHA256|MD5Sum>/<hex>`: the size and
the SHA256 (MD5 only when the index has nothing stronger) are checked against the index, a cached
file that does not match is thrown away and fetched again, an interrupted http download is resumed
with a `Range:` request, and `offline=True` uses the cache alone and names every missing package.
Paths taken from an index are untrusted: `check_filename()` refuses absolute paths and `..`.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from distro_builder.errors import ArchiveError
from distro_builder.model import IndexPackage

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
USER_AGENT = "distro-builder (apt-like fetcher)"


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a fetch_all() run stands (for a progress bar)."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str  # the file being fetched ('' when done)


ProgressCallback = Callable[[Progress], None]


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/distro-builder, else ~/.cache/distro-builder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distro-builder"


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


class Fetcher:
    """Reads indexes and fetches packages into a content-addressed cache."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        offline: bool = False,
        timeout: float = 30.0,
        retries: int = 3,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.offline = offline
        self.timeout = timeout
        self.retries = retries

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
        """The content at `url` (an index file). None when `optional` and it does not exist."""
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
        copy = self._list_copy(url)
        if self.offline:
            if copy.is_file():
                return copy.read_bytes()
            if optional:
                return None
            raise ArchiveError(
                f"offline: {url} is not in the cache ({self.cache_dir})",
                hint="run once without --offline to fill the cache",
            )
        try:
            data = self._get(url)
        except urllib.error.HTTPError as e:
            if e.code == 404 and optional:
                return None
            raise ArchiveError(f"{url}: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise ArchiveError(f"{url}: {e}", hint="check the URL and the network") from e
        copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = copy.with_name(copy.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, copy)
        return data

    def _get(self, url: str) -> bytes:
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            data: bytes = resp.read()
            length = resp.headers.get("Content-Length")
        if length is not None and int(length) != len(data):
            raise ArchiveError(f"{url}: got {len(data)} of {length} bytes")
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

        Offline, raises ArchiveError naming every package missing from the cache.
        """
        pkgs = sorted({p.key: p for p in packages}.values(), key=lambda p: p.key)
        total = sum(p.size for p in pkgs)
        out: dict[str, Path] = {}
        todo: list[IndexPackage] = []
        done_bytes = 0
        for p in pkgs:
            hit = self.cached(p)
            if hit is not None:
                out[p.key] = hit
                done_bytes += p.size
            else:
                todo.append(p)
        if todo and self.offline:
            names = ", ".join(f"{p.key} ({p.origin})" for p in todo)
            raise ArchiveError(
                f"offline: {len(todo)} package(s) missing from the cache {self.cache_dir}: {names}",
                hint="run once without --offline to fetch them",
            )
        files_done = len(out)
        state = [done_bytes]

        def report(current: str) -> None:
            if progress is not None:
                progress(Progress(files_done, len(pkgs), state[0], total, current))

        report("")
        for p in todo:

            def on_bytes(n: int, name: str = p.key) -> None:
                state[0] += n
                report(name)

            out[p.key] = self._fetch_one(p, on_bytes)
            files_done += 1
            report("")
        return out

    def _fetch_one(self, pkg: IndexPackage, on_bytes: Callable[[int], None]) -> Path:
        if not pkg.repo:
            raise ArchiveError(f"{pkg.key} ({pkg.origin}) has no repository to fetch it from")
        check_filename(pkg.filename, flat=True, where=pkg.origin)
        url = join_url(pkg.repo, pkg.filename)
        algorithm, hexdigest = best_hash(pkg)
        dest = self.cache_path(pkg)
        part = self.cache_dir / "partial" / f"{algorithm}-{hexdigest}"
        part.parent.mkdir(parents=True, exist_ok=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            if _is_remote(url):
                self._download(url, part, pkg.size, on_bytes)
            else:
                self._copy(url, part, on_bytes)
            size = part.stat().st_size
            if size == pkg.size and _hash_file(part, algorithm) == hexdigest:
                os.replace(part, dest)
                return dest
            part.unlink()
            log.warning(
                "%s: %d bytes, %s does not match the index (%s): %s",
                url,
                size,
                algorithm,
                pkg.origin,
                "fetching it again" if attempt == 1 else "giving up",
            )
        raise ArchiveError(
            f"{url} does not match its index entry ({algorithm} or size differ): "
            "corrupt or tampered",
            hint="the repository's file and its Packages index disagree; report it to its owner",
        )

    def _copy(self, url: str, part: Path, on_bytes: Callable[[int], None]) -> None:
        src = url_to_path(url)
        try:
            with open(src, "rb") as fin, open(part, "wb") as fout:
                for chunk in iter(lambda: fin.read(_CHUNK), b""):
                    fout.write(chunk)
                    on_bytes(len(chunk))
        except FileNotFoundError:
            part.unlink(missing_ok=True)
            raise ArchiveError(
                f"{src}: listed in the index but missing", hint="the repository is incomplete"
            ) from None
        except BaseException:
            part.unlink(missing_ok=True)  # a local copy is not resumed: no partial file is kept
            raise

    def _download(self, url: str, part: Path, size: int, on_bytes: Callable[[int], None]) -> None:
        """Download into `part`, resuming what is there; retries interrupted transfers."""
        last: Exception | None = None
        for _ in range(self.retries):
            have = part.stat().st_size if part.exists() else 0
            if have > size:
                part.unlink()
                have = 0
            if size and have == size:
                return
            headers = {"User-Agent": USER_AGENT}
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                req = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    if have and resp.status != 206:
                        log.debug("%s: no range support, starting over", url)
                        have = 0
                    elif have:
                        log.info("    resuming %s at byte %d", url.rsplit("/", 1)[-1], have)
                        on_bytes(have)
                    with open(part, "ab" if have else "wb") as f:
                        for chunk in iter(lambda: resp.read(_CHUNK), b""):  # noqa: B023
                            f.write(chunk)
                            on_bytes(len(chunk))
            except urllib.error.HTTPError as e:
                if e.code == 416:  # the partial file is bad: start over
                    part.unlink(missing_ok=True)
                    last = e
                    continue
                raise ArchiveError(f"{url}: HTTP {e.code} {e.reason}") from e
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                last = e
                log.warning("%s: interrupted (%s), resuming", url, e)
                continue
            got = part.stat().st_size if part.exists() else 0
            if got >= size:
                return
            last = ArchiveError(f"{url}: connection closed after {got} of {size} bytes")
            log.warning("%s: interrupted after %d of %d bytes, resuming", url, got, size)
        raise ArchiveError(
            f"{url}: download failed after {self.retries} attempts: {last}",
            hint="check the network; run again to resume",
        )


def copy_to(path: Path, dest: Path) -> None:
    """Copy a cached file into a staging tree (a hard link when possible)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, dest)
    except OSError:
        shutil.copyfile(path, dest)
