"""media/initrd.py output read by the real tools, on the Debian 12 netboot initrd (the demo base's
installer) and on a small one. zcat reads the concatenated gzip streams as one; GNU cpio stops at
an archive's trailer, so a second cpio in the same pipe reads the appended archive (the original
is padded to 512-byte blocks, cpio's read size) — the kernel does the same in one pass."""

from __future__ import annotations

import gzip
import hashlib
import stat
from pathlib import Path

import pytest

from distro_builder.media.initrd import append_to_initrd, list_initrd, newc_archive
from distro_builder.run import run
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

NETBOOT_INITRD = Path(
    "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/initrd.gz"
)
PRESEED = b"d-i preseed/early_command string echo STACKOPS-PRESEED roles=compute\n"
HOOK = b"#!/bin/sh\necho hook\n"
# list / unpack archive after archive from one decompressed stream
LIST_TWO = 'zcat "$1" | { cpio -t --quiet; echo "--- next archive"; cpio -t --quiet; }'
UNPACK_TWO = 'zcat "$1" | { cpio -id --quiet; cpio -idu --quiet; }'


def _sh(script: str, arg: Path, cwd: Path | None = None) -> str:
    return run(["sh", "-c", script, "sh", arg], capture=True, cwd=cwd).stdout


@pytest.fixture(scope="module")
def netboot_initrd() -> bytes:
    if not NETBOOT_INITRD.is_file():
        require_tool_or_skip("debian-installer-12-netboot-amd64")  # a package: fails in CI
    return NETBOOT_INITRD.read_bytes()


def test_small_initrd_unpacks_to_the_original_files_plus_ours(tmp_path: Path) -> None:
    require_tool_or_skip("zcat", "cpio")
    base = gzip.compress(newc_archive({"init": (b"#!/bin/sh\n", 0o755), "etc/issue": b"x\n"}))
    f = tmp_path / "initrd.gz"
    f.write_bytes(append_to_initrd(base, {"preseed.cfg": PRESEED, "lib/hooks/run": (HOOK, 0o755)}))
    first, second = _sh(LIST_TWO, f).split("--- next archive\n")
    assert first.split() == ["etc", "etc/issue", "init"]
    assert second.split() == ["lib", "lib/hooks", "lib/hooks/run", "preseed.cfg"]
    root = tmp_path / "root"
    root.mkdir()
    _sh(UNPACK_TWO, f, cwd=root)
    assert (root / "init").read_bytes() == b"#!/bin/sh\n"
    assert (root / "etc/issue").read_bytes() == b"x\n"
    assert (root / "preseed.cfg").read_bytes() == PRESEED
    assert (root / "lib/hooks/run").read_bytes() == HOOK
    assert stat.S_IMODE((root / "lib/hooks/run").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "preseed.cfg").stat().st_mode) == 0o644


def test_zcat_reads_the_concatenation_as_one_stream(tmp_path: Path) -> None:
    require_tool_or_skip("zcat")
    f = tmp_path / "initrd.gz"
    f.write_bytes(append_to_initrd(gzip.compress(b"A" * 1000), {"preseed.cfg": PRESEED}))
    data = run(["zcat", f], capture=True, binary=True).stdout
    assert data[:1000] == b"A" * 1000
    assert PRESEED in data[1000:] and b"TRAILER!!!" in data[1000:]


def test_debian_netboot_initrd_keeps_every_file_and_gains_the_preseed(
    tmp_path: Path, netboot_initrd: bytes
) -> None:
    require_tool_or_skip("zcat", "cpio")
    out = append_to_initrd(netboot_initrd, {"preseed.cfg": PRESEED})
    assert out[: len(netboot_initrd)] == netboot_initrd
    f = tmp_path / "initrd.gz"
    f.write_bytes(out)

    first, second = _sh(LIST_TWO, f).split("--- next archive\n")
    cpio_names = set(first.split()) - {"."}
    assert len(cpio_names) > 1000  # a real installer, not a stub
    assert "preseed.cfg" not in cpio_names
    assert second.split() == ["preseed.cfg"]
    # the pure-Python walker agrees with GNU cpio name for name
    ours = list_initrd(out)
    assert set(ours[:-1]) == cpio_names and ours[-1] == "preseed.cfg"

    root, ref = tmp_path / "root", tmp_path / "ref"
    root.mkdir()
    ref.mkdir()
    _sh(UNPACK_TWO, f, cwd=root)
    orig = tmp_path / "orig.gz"
    orig.write_bytes(netboot_initrd)
    _sh('zcat "$1" | cpio -id --quiet', orig, cwd=ref)
    assert (root / "preseed.cfg").read_bytes() == PRESEED
    assert not (ref / "preseed.cfg").exists()
    # every file of the original is there with the same content
    ref_files = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    assert len(ref_files) > 500
    for rel in ref_files:
        a, b = root / rel, ref / rel
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    root_files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert root_files == sorted([*ref_files, Path("preseed.cfg")])
