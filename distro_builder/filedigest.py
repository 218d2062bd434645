"""The digests the engine keeps of an overlay file (one concern: each file's MD5, SHA-256 and
size, read once): hashed now, hashed ahead in a thread, or known already from a read the caller
made (a cached .deb's Packages stanza)."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import NamedTuple

from distro_builder.buffers import page_buffer

Identity = tuple[int, int, int, int, int]


class Digest(NamedTuple):
    """An overlay file's MD5 (md5sum.txt), SHA-256 (the manifest) and size."""

    md5: str
    sha256: str
    size: int


def digest_file(path: Path) -> Digest:
    md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
    view = page_buffer(1 << 20)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            md5.update(view[:n])
            sha256.update(view[:n])
            size += n
    return Digest(md5.hexdigest(), sha256.hexdigest(), size)


def digest_bytes(data: bytes) -> Digest:
    return Digest(hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest(), len(data))


def file_identity(path: Path) -> Identity:
    """(device, inode, size, mtime, ctime): any write to the file, or another file renamed in
    its place, changes it."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class Prehashed:
    """Overlay files hashed ahead of remaster(), in a thread each, while the caller does other
    work (build hashes the 40 MB initrd while it stages the packages), or whose digests the
    caller has already (`known`). remaster() takes a result only for the file as it was when
    hashing started (or when the caller read it): a file changed since (its ctime moves) is
    hashed again."""

    def __init__(self) -> None:
        self._jobs: dict[Path, tuple[Identity, Future[Digest]]] = {}

    def start(self, path: Path) -> None:
        path = Path(path).resolve()
        job: Future[Digest] = Future()
        identity = file_identity(path)

        def run() -> None:
            try:
                job.set_result(digest_file(path))
            except BaseException as e:  # the remaster reads the file itself then
                job.set_exception(e)

        threading.Thread(target=run, name="prehash", daemon=True).start()
        self._jobs[path] = (identity, job)

    def known(self, path: Path, digest: Digest, identity: Identity) -> None:
        """`digest` of `path` as it was when it had `identity` (taken before the caller read
        it, so a change during the read shows too)."""
        job: Future[Digest] = Future()
        job.set_result(digest)
        self._jobs[Path(path).resolve()] = (identity, job)

    def get(self, path: Path) -> Digest | None:
        found = self._jobs.get(Path(path).resolve())
        if found is None:
            return None
        identity, job = found
        try:
            digest = job.result()
        except Exception:
            return None
        return digest if file_identity(path) == identity else None
