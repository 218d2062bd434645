"""The engine's fast paths give the bytes the slow ones gave.

The file data is copied through one reused buffer in volume order instead of pycdlib's own
block loop, md5sum.txt takes the base's MD5 of files no overlay touched, and the image's SHA-256
is hashed while it is written. Each is compared here with the slow way on the same inputs.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import mmap
import os
import time
from pathlib import Path

import pytest

from distro_builder.buffers import page_buffer
from distro_builder.errors import IsoError
from distro_builder.filedigest import Digest, Prehashed, file_identity
from distro_builder.media import filecopy, iso
from distro_builder.media.iso import IsoImage
from distro_builder.remaster import remaster

pytestmark = pytest.mark.integration

EPOCH = 1302825600


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("overlay")
    (root / "pool" / "extras").mkdir(parents=True)
    for i in range(5):  # sizes around block boundaries: the padding between extents matters
        data = hashlib.sha256(str(i).encode()).digest() * (64 * i + 1)
        (root / "pool" / "extras" / f"x{i}_1.0_all.deb").write_bytes(data[: 2048 * i + 7])
    (root / "preseed").mkdir()
    (root / "preseed" / "cli.seed").write_text("d-i debian-installer/locale string en_US\n")
    return root


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _md5_lines(image_path: Path) -> dict[str, str]:
    with IsoImage(image_path) as image:
        text = image.read_text("/md5sum.txt") or ""
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in text.splitlines()}


@pytest.mark.parametrize("hybrid", [False, True])
def test_fast_copy_gives_pycdlibs_bytes(
    demo_base: Path,
    overlay: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hybrid: bool,
) -> None:
    fast = tmp_path / "fast.iso"
    result = remaster(demo_base, fast, [overlay], hybrid=hybrid, source_date_epoch=EPOCH)
    with monkeypatch.context() as m:  # pycdlib's own copy, block by block through Python
        m.setattr(iso, "_file_copies", lambda *_args: contextlib.nullcontext())
        slow = tmp_path / "slow.iso"
        remaster(demo_base, slow, [overlay], hybrid=hybrid, source_date_epoch=EPOCH)
    assert fast.read_bytes() == slow.read_bytes()
    assert result.sha256 is None  # not asked for


@pytest.mark.parametrize("in_memory", [False, True])
def test_copy_range_in_chunks_and_short_sources(tmp_path: Path, in_memory: bool) -> None:
    data = hashlib.sha256(b"x").digest() * 1000  # 32000 bytes
    src_path = tmp_path / "src"
    src_path.write_bytes(data)
    out = tmp_path / "out"
    out.write_bytes(b"\xff" * 40000)
    buffer = memoryview(bytearray(4096))  # many chunks
    with contextlib.ExitStack() as stack:
        src = io.BytesIO(data) if in_memory else stack.enter_context(src_path.open("rb"))
        fd = os.open(out, os.O_WRONLY)
        stack.callback(os.close, fd)
        assert filecopy.copy_range(src, 100, fd, 2048, 20000, buffer) == 20000
        assert filecopy.copy_range(src, 30000, fd, 30000, 5000, buffer) == 2000  # lies about size
    got = out.read_bytes()
    assert got[2048:22048] == data[100:20100]
    assert got[30000:32000] == data[30000:]
    assert got[:2048] == b"\xff" * 2048 and got[22048:30000] == b"\xff" * 7952  # untouched


@pytest.mark.parametrize("hybrid", [False, True])
def test_sha256_hashed_while_written(
    demo_base: Path, overlay: Path, tmp_path: Path, hybrid: bool
) -> None:
    out = tmp_path / "out.iso"
    result = remaster(demo_base, out, [overlay], hybrid=hybrid, digest=True)
    assert result.sha256 == _sha256(out)


def test_md5_of_untouched_files_comes_from_the_base(
    demo_base: Path, overlay: Path, tmp_path: Path
) -> None:
    """A base whose md5sum.txt lies about one untouched file and one the overlay replaces."""
    lines = _md5_lines(demo_base)
    untouched = "./README.diskdefines"
    replaced = "./preseed/cli.seed"
    assert untouched in lines and replaced in lines
    doctored = dict(lines, **{untouched: "0" * 32, replaced: "1" * 32})
    text = "".join(f"{md5}  {path}\n" for path, md5 in sorted(doctored.items()))
    base = tmp_path / "doctored.iso"
    with IsoImage(demo_base) as image:
        image.replace_file("/md5sum.txt", text.encode())
        image.write(base, source_date_epoch=EPOCH)

    out = tmp_path / "out.iso"
    result = remaster(base, out, [overlay], source_date_epoch=EPOCH)
    got = _md5_lines(out)
    assert got[untouched] == "0" * 32  # taken from the base, not read again
    seed = (overlay / "preseed" / "cli.seed").read_bytes()
    assert got[replaced] == hashlib.md5(seed).hexdigest()  # the overlay's, never the base's
    assert (
        got["./pool/extras/x3_1.0_all.deb"]
        == hashlib.md5((overlay / "pool/extras/x3_1.0_all.deb").read_bytes()).hexdigest()
    )
    # the overlay's 5 .debs and seed, hashed as they were read; .disk/distro-builder.json
    assert result.md5sum_hashed == 7

    again = tmp_path / "rehashed.iso"
    result = remaster(base, again, [overlay], source_date_epoch=EPOCH, rehash_md5=True)
    fresh = tmp_path / "fresh.iso"
    remaster(demo_base, fresh, [overlay], source_date_epoch=EPOCH, rehash_md5=True)
    manifest = "./.disk/distro-builder.json"  # names the base file: differs by design
    rehashed, expected = _md5_lines(again), _md5_lines(fresh)
    assert rehashed.pop(manifest) and expected.pop(manifest)
    assert rehashed == expected
    assert result.md5sum_hashed == result.md5sum_files


def test_an_opened_base_and_a_verify_hook(demo_base: Path, overlay: Path, tmp_path: Path) -> None:
    """`build` hands remaster the base it opened (not opened again: same bytes) and checks the
    written image on the write's own read-back; a failing check keeps nothing."""
    plain = tmp_path / "plain.iso"
    remaster(demo_base, plain, [overlay], source_date_epoch=EPOCH)
    seen: list[str | None] = []

    def verify(written: IsoImage) -> None:
        assert written.path != plain and written.path.parent == tmp_path  # not renamed yet
        seen.append(written.read_text("/preseed/cli.seed"))

    out = tmp_path / "opened.iso"
    with IsoImage(demo_base) as image:
        remaster(demo_base, out, [overlay], source_date_epoch=EPOCH, image=image, verify=verify)
    assert out.read_bytes() == plain.read_bytes()
    assert seen == [(overlay / "preseed" / "cli.seed").read_text()]

    def reject(_written: IsoImage) -> None:
        raise RuntimeError("verification failed")

    refused = tmp_path / "refused.iso"
    with pytest.raises(RuntimeError, match="verification failed"):
        remaster(demo_base, refused, [overlay], verify=reject)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opened.iso", "plain.iso"]


def test_writeback_is_started_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, int, int]] = []
    monkeypatch.setattr(filecopy.Writeback, "_loaded", True)
    monkeypatch.setattr(filecopy.Writeback, "_call", lambda *a: calls.append(a) or 0)
    wb = filecopy.Writeback(7)
    chunk = filecopy.Writeback.CHUNK
    wb.advance(chunk // 2)
    wb.advance(chunk // 2)
    assert calls == []
    wb.advance(chunk + 2048)  # the page at `chunk` is shared with what comes next: not yet
    wb.advance(3 * chunk + 2048)
    wb.advance(2048)  # an earlier point again: nothing
    wb.finish()  # the calls are made by a thread of their own
    assert calls == [(7, 0, chunk, 2), (7, chunk, 2 * chunk, 2)]
    wb.finish()  # again: nothing


def test_prehashed_overlay_files(demo_base: Path, overlay: Path, tmp_path: Path) -> None:
    """A file hashed ahead (build's initrd) is not read again; one changed since is."""
    plain = tmp_path / "plain.iso"
    remaster(demo_base, plain, [overlay], source_date_epoch=EPOCH)
    seed = overlay / "preseed" / "cli.seed"
    ahead = Prehashed()
    ahead.start(seed)
    assert ahead.get(seed) == Digest(
        hashlib.md5(seed.read_bytes()).hexdigest(), _sha256(seed), seed.stat().st_size
    )
    lie = tmp_path / "lie"
    lie.write_text("not the seed\n")
    lying = Prehashed()
    lying.start(lie)
    _, job = lying._jobs.pop(lie.resolve())
    lying._jobs[seed.resolve()] = (file_identity(seed), job)  # "the seed's" digest
    out = tmp_path / "ahead.iso"
    remaster(demo_base, out, [overlay], source_date_epoch=EPOCH, prehashed=lying)
    assert out.read_bytes() != plain.read_bytes()  # taken as given: not read again
    os.utime(seed)  # the file changed since: its ctime moved
    again = tmp_path / "again.iso"
    remaster(demo_base, again, [overlay], source_date_epoch=EPOCH, prehashed=lying)
    assert again.read_bytes() == plain.read_bytes()


def test_the_writes_reads_go_into_page_aligned_buffers(
    demo_base: Path, overlay: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pread of the copy and the output's hash lands on a page boundary. On the AMD EPYC
    of the benchmark machines a read into a buffer 16 bytes into a page, where glibc puts a
    big bytearray, ran at a quarter of the speed: the hash's 4 MiB bytearray was there, and
    the build waited 0.1 s for it (buffers.page_buffer)."""
    offsets: list[int] = []
    preadv = os.preadv

    def recording(fd: int, buffers: list[memoryview], offset: int) -> int:
        offsets.extend(ctypes.addressof(ctypes.c_char.from_buffer(b)) % mmap.PAGESIZE
                       for b in buffers)  # fmt: skip
        return preadv(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", recording)
    out = tmp_path / "out.iso"
    result = remaster(demo_base, out, [overlay], digest=True, source_date_epoch=EPOCH)
    assert result.sha256 == _sha256(out)
    assert offsets and set(offsets) == {0}, sorted(set(offsets))
    view = page_buffer(3 << 20)
    assert len(view) == 3 << 20 and not view.readonly
    assert ctypes.addressof(ctypes.c_char.from_buffer(view)) % mmap.PAGESIZE == 0


@pytest.mark.parametrize("hybrid", [False, True])
def test_late_files_come_last_and_are_filled_once_the_rest_is_written(
    demo_base: Path, overlay: Path, tmp_path: Path, hybrid: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`late`: the file is staged at its final size, laid out after every other file with
    the manifest and md5sum.txt, and filled in when the write gets there, after everything
    before it is in the output (a build's manifest waits there for the base's SHA-256)."""
    import json

    tree = tmp_path / "late"
    (tree / ".disk").mkdir(parents=True)
    (tree / ".disk" / "info.json").write_bytes(b"0" * 64 + b"\n")
    final = hashlib.sha256(b"the real one").hexdigest().encode() + b"\n"
    out = tmp_path / "out.iso"
    seen: list[bytes] = []
    hashed_to: list[int] = []  # what the output's hasher was told it may read
    real_copy, real_advance = filecopy.copy_fd_range, filecopy.TrailingSha256.advance

    def slow_copy(*args: object) -> int:  # copies still running when the late files come
        time.sleep(0.02)
        return real_copy(*args)  # type: ignore[arg-type]

    def advance(self: filecopy.TrailingSha256, limit: int) -> None:
        hashed_to.append(limit)
        real_advance(self, limit)

    monkeypatch.setattr(filecopy, "copy_fd_range", slow_copy)
    monkeypatch.setattr(filecopy.TrailingSha256, "advance", advance)

    def fill() -> bytes:
        (part,) = tmp_path.glob(".out.iso.*.part")  # the image being written
        seen.append(part.read_bytes())
        hashed_to.append(-max(hashed_to))  # as far as the hasher may go while this waits
        return final

    result = remaster(
        demo_base, out, [overlay, tree], hybrid=hybrid, digest=True,
        late={"/.disk/info.json": fill},
    )  # fmt: skip
    assert len(seen) == 1
    written = out.read_bytes()
    assert result.sha256 == hashlib.sha256(written).hexdigest()
    tail = ("/.disk/info.json", "/.disk/distro-builder.json", "/md5sum.txt")
    with IsoImage(out) as image:
        assert image.read("/.disk/info.json") == final
        starts = {p: image.extent(p)[0] for p in tail}
        others = [image.extent(e.path) for e in image.walk()
                  if e.kind.value == "file" and e.path not in tail]  # fmt: skip
        engine = json.loads(image.read("/.disk/distro-builder.json"))
        md5_text = image.read_text("/md5sum.txt") or ""
    assert min(starts.values()) > max(at for at, size in others if size)
    late_start = min(starts.values())
    assert seen[0][:late_start] == written[:late_start]  # all of it there before the fill
    assert -min(hashed_to) == late_start  # and hashed meanwhile
    md5s = _md5_lines(out)
    assert md5s["./.disk/info.json"] == hashlib.md5(final).hexdigest()
    with IsoImage(out) as image:
        assert (
            md5s["./.disk/distro-builder.json"]
            == hashlib.md5(image.read("/.disk/distro-builder.json")).hexdigest()
        )
    entry = next(c for c in engine["changes"] if c["path"] == "/.disk/info.json")
    assert entry["sha256"] == hashlib.sha256(final).hexdigest()
    assert "0" * 64 not in md5_text


@pytest.mark.parametrize(
    "fill", [lambda: b"too short\n", lambda: (_ for _ in ()).throw(RuntimeError("no digest"))]
)
def test_a_late_file_that_cannot_be_filled_leaves_no_output(
    demo_base: Path, overlay: Path, tmp_path: Path, fill: object
) -> None:
    tree = tmp_path / "late"
    (tree / ".disk").mkdir(parents=True)
    (tree / ".disk" / "info.json").write_bytes(b"0" * 64 + b"\n")
    out = tmp_path / "out.iso"
    with pytest.raises((IsoError, RuntimeError), match="cannot take the place|no digest"):
        remaster(demo_base, out, [overlay, tree], late={"/.disk/info.json": fill})  # type: ignore[dict-item]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late"]


def test_late_names_an_overlay_file(demo_base: Path, overlay: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an overlay file"):
        remaster(demo_base, tmp_path / "out.iso", [overlay], late={"/md5sum.txt": lambda: b""})
