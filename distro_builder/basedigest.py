"""The base ISO's SHA-256 for the build manifest: hashed in the background from the moment the
`build` command has its arguments, and remembered per file so the next build from it does not
read it again.

Light on imports on purpose: the CLI starts the hash before it imports the build pipeline
(0.15-0.25 s of imports on a 2-core machine), so the hash runs beside those imports and the
steps before the write instead of being waited for before the write (build.py `_manifest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from distro_builder.atomicfile import write_atomic
from distro_builder.buffers import page_buffer
from distro_builder.errors import ToolError
from distro_builder.run import find_tool, run

log = logging.getLogger(__name__)

CACHE_FOLDER = "base-sha256"  # in the package cache: one small JSON file per base ISO path


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/distro-builder, else ~/.cache/distro-builder (packages and base digests)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distro-builder"


def sha256_file(path: Path, *, background: bool = False) -> str:
    """The SHA-256 of the file at `path`: by `openssl dgst` where it is installed, else here.

    The base is hashed while the build's main thread runs Python (imports, the package step).
    A thread of this process gives the GIL back for each read and each hash call and then
    waits for it again: on 2 cores 774 MB took 1.0-1.2 s that way, against 0.56 s with nothing
    beside it. `openssl dgst` (SHA-NI, its own process) took 0.7-0.8 s beside the same build.

    `background`: at nice 10, below the build's own threads. The build needs the digest only
    when its write reaches the manifest, laid out last (build.py `_stage_manifest`), so the
    write and the output's own hash go first on a busy machine (2 cores, 774 MB, build-new
    interleaved 2 x 9 rounds: median 1.617 -> 1.533 s and 1.555 -> 1.477 s).
    """
    tool = find_tool("openssl")
    if tool is not None:
        nice = find_tool("nice") if background else None
        argv = [*([nice, "-n", "10"] if nice else []), tool, "dgst", "-sha256", "-r",
                os.path.abspath(path)]  # fmt: skip
        proc = run(argv, check=False, capture=True, binary=True)
        if proc.returncode < 0:  # Ctrl-C reached it too (the terminal's process group)
            raise ToolError(
                f"openssl dgst of {path} ended by signal {-proc.returncode}",
                hint="something stopped it (Ctrl-C, the OOM killer); run the build again",
            )
        out = proc.stdout[:66].decode("ascii", "replace")
        digest = out[:64]  # "<64 hex> *<name>" (OpenSSL 1.1, a name with \ or a newline: "\<hex>")
        if (
            proc.returncode == 0
            and set(digest) <= _HEX
            and len(digest) == 64
            and out[64:66] == " *"
        ):
            return digest
        log.debug("openssl dgst failed (exit %s, %r), hashing here", proc.returncode, out)
    return _sha256_here(path)


_HEX = set("0123456789abcdef")


def _sha256_here(path: Path) -> str:
    h = hashlib.sha256()
    view = page_buffer(1 << 20)  # one buffer: a new bytes object per read costs its page faults
    with Path(path).open("rb", buffering=0) as f:
        while n := f.readinto(view):
            h.update(view[:n])
    return h.hexdigest()


def base_sha256(path: Path, cache_dir: Path) -> str:
    """The SHA-256 of the base ISO, remembered in `cache_dir` for the file as it is now.

    A build from the same base again does not read it again: the digest is kept with the
    file's identity (path, device, inode, size, mtime and ctime in ns; a change to the file
    moves its ctime), as git's index does for the work tree. A cache that cannot be read or
    written only costs the hashing.
    """
    resolved = path.resolve()

    def identity() -> dict[str, Any]:
        st = resolved.stat()
        return {
            "path": os.fspath(resolved),
            "dev": st.st_dev,
            "ino": st.st_ino,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns,
        }

    key = identity()
    name = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:32] + ".json"
    entry = cache_dir / CACHE_FOLDER / name
    try:
        cached = json.loads(entry.read_text())
        digest = cached.get("sha256") if cached.get("file") == key else None
        if isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX:
            return digest
    except (OSError, ValueError, AttributeError):
        pass
    digest = sha256_file(resolved, background=True)
    if identity() == key:  # not changed while it was read
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(entry, (json.dumps({"file": key, "sha256": digest}) + "\n").encode())
        except OSError as e:
            log.debug("base SHA-256 not cached in %s: %s", entry.parent, e)
    return digest


def in_background(fn: Any, *args: Any) -> Future[Any]:
    """fn(*args) in a daemon thread (an error or Ctrl-C of the build does not wait for it)."""
    fut: Future[Any] = Future()

    def run() -> None:
        try:
            fut.set_result(fn(*args))
        except BaseException as e:
            fut.set_exception(e)

    threading.Thread(target=run, name=getattr(fn, "__name__", "job"), daemon=True).start()
    return fut


def start_base_sha256(path: Path, cache_dir: Path | None) -> Future[str]:
    """base_sha256 of `path` in a daemon thread (cache_dir None: the default cache folder)."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return in_background(base_sha256, path, folder)


@contextlib.contextmanager
def settled_on_error(job: Future[Any] | None) -> Iterator[None]:
    """On an error or Ctrl-C, wait for `job` (its outcome ignored) before unwinding: the base's
    openssl must not outlive the command that started it (it holds the base and the working
    directory, which may be on a file system the caller unmounts next)."""
    try:
        yield
    except BaseException:
        if job is not None:
            with contextlib.suppress(BaseException):
                job.result()
        raise
