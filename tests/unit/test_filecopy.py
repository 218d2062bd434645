"""media/filecopy.py's RangeCopier: ranges copied on worker threads land where they should,
the caller learns what is final, errors reach the caller, and no descriptor is left open."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from pathlib import Path

import pytest

from distro_builder.media import filecopy
from distro_builder.media.filecopy import RangeCopier


def _data(n: int, seed: bytes = b"x") -> bytes:
    out = bytearray()
    while len(out) < n:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:n])


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture()
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(RangeCopier, "CHUNK", 8192)
    return 8192


def test_ranges_land_at_their_offsets(tmp_path: Path, small_chunks: int) -> None:
    a, b = _data(50_000, b"a"), _data(20_001, b"b")
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    out = tmp_path / "out"
    out.write_bytes(b"\xff" * 100_000)
    before = _open_fds()
    fd = os.open(out, os.O_WRONLY)
    try:
        copier = RangeCopier(fd, workers=2, depth=2)  # the caller waits for a free slot
        with (tmp_path / "a").open("rb") as fa, (tmp_path / "b").open("rb") as fb:
            copier.submit(fa.fileno(), 1000, 2048, 40_000)  # 5 chunks
            copier.submit(fb.fileno(), 0, 60_000, 20_001)
        # the caller's files are closed already: the copier holds its own descriptors
        copier.finish()
        assert copier.lowest_unfinished() is None
    finally:
        os.close(fd)
    assert _open_fds() == before
    got = out.read_bytes()
    assert got[2048:42048] == a[1000:41000]
    assert got[60_000:80_001] == b
    assert got[:2048] == b"\xff" * 2048
    assert got[42048:60_000] == b"\xff" * (60_000 - 42048)
    assert got[80_001:] == b"\xff" * (100_000 - 80_001)


def test_a_source_that_ends_early_leaves_the_rest(tmp_path: Path, small_chunks: int) -> None:
    (tmp_path / "short").write_bytes(_data(10_000))
    out = tmp_path / "out"
    out.write_bytes(b"\0" * 40_000)
    fd = os.open(out, os.O_WRONLY)
    try:
        copier = RangeCopier(fd)
        with (tmp_path / "short").open("rb") as f:
            copier.submit(f.fileno(), 0, 0, 30_000)  # "ISOs in the wild lie about sizes"
        copier.finish()
    finally:
        os.close(fd)
    got = out.read_bytes()
    assert got[:10_000] == _data(10_000) and got[10_000:] == b"\0" * 30_000


def test_lowest_unfinished_follows_the_running_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").write_bytes(_data(4096))
    out = tmp_path / "out"
    out.write_bytes(b"\0" * 20_000)
    gate = threading.Event()
    real = filecopy.copy_fd_range

    def held(in_fd: int, src_offset: int, out_fd: int, out_offset: int, *rest: object) -> int:
        if out_offset == 4096:
            gate.wait(10)
        return real(in_fd, src_offset, out_fd, out_offset, *rest)  # type: ignore[arg-type]

    fd = os.open(out, os.O_WRONLY)
    try:
        copier = RangeCopier(fd, workers=2)
        monkeypatch.setattr(filecopy, "copy_fd_range", held)
        with (tmp_path / "src").open("rb") as f:
            copier.submit(f.fileno(), 0, 4096, 4096)  # held
            copier.submit(f.fileno(), 0, 12_288, 4096)
        for _ in range(1000):  # the second one is done; the first one is not
            if len(copier._pending) == 1:
                break
            threading.Event().wait(0.01)
        assert copier.lowest_unfinished() == 4096
        gate.set()
        copier.finish()
        assert copier.lowest_unfinished() is None
    finally:
        os.close(fd)
    assert out.read_bytes()[12_288:16_384] == _data(4096)


def test_an_error_reaches_the_caller_and_nothing_is_left_open(
    tmp_path: Path, small_chunks: int
) -> None:
    (tmp_path / "src").write_bytes(_data(100_000))
    out = tmp_path / "out"
    out.write_bytes(b"")
    before = _open_fds()
    ro = os.open(out, os.O_RDONLY)  # writing to it fails: EBADF in a worker
    copier = RangeCopier(ro)
    try:
        with (tmp_path / "src").open("rb") as f:
            copier.submit(f.fileno(), 0, 0, 100_000)
            with pytest.raises(OSError):
                for at in range(1, 200):  # a later submit raises it, or finish does
                    copier.submit(f.fileno(), 0, at * 100_000, 1000)
                copier.finish()
    finally:
        copier.cancel()
        os.close(ro)
    assert _open_fds() == before


def test_cancel_drops_what_waits(tmp_path: Path, small_chunks: int) -> None:
    (tmp_path / "src").write_bytes(_data(400_000))
    out = tmp_path / "out"
    out.write_bytes(b"\0" * 400_000)
    before = _open_fds()
    fd = os.open(out, os.O_WRONLY)
    try:
        copier = RangeCopier(fd, workers=1, depth=100)
        with (tmp_path / "src").open("rb") as f:
            copier.submit(f.fileno(), 0, 0, 400_000)  # 49 chunks
        copier.cancel()
        copier.cancel()  # twice is harmless
        assert all(ended.is_set() for ended in copier._ended)
    finally:
        os.close(fd)
    assert _open_fds() == before


def test_ctrl_c_while_finish_waits_then_cancel_ends_every_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C lands while finish() waits for a long copy: cancel() (the writer's cleanup,
    before it closes the output) still waits for that copy and closes every descriptor, so no
    thread writes through a descriptor number the process has reused."""
    (tmp_path / "src").write_bytes(_data(4096))
    out = tmp_path / "out"
    out.write_bytes(b"\0" * 8192)
    gate = threading.Event()
    real = filecopy.copy_fd_range

    def held(*args: object) -> int:
        gate.wait(10)
        return real(*args)  # type: ignore[arg-type]

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    before = _open_fds()
    fd = os.open(out, os.O_WRONLY)
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        copier = RangeCopier(fd, workers=2)
        monkeypatch.setattr(filecopy, "copy_fd_range", held)
        with (tmp_path / "src").open("rb") as f:
            copier.submit(f.fileno(), 0, 0, 4096)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            copier.finish()
        threading.Timer(0.3, gate.set).start()
        copier.cancel()
        assert all(ended.is_set() for ended in copier._ended)
        assert copier.lowest_unfinished() is None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        gate.set()
        os.close(fd)
    assert _open_fds() == before
