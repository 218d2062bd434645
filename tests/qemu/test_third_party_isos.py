"""The engine on third-party bootable ISOs that Debian 12 packages ship (issue 15).

- grub-rescue-pc's grub-rescue-cdrom.iso: GRUB 2 El Torito image (boot-info table and GRUB's own
  boot info at byte 2548), a hybrid disk through GRUB's MBR (protective msdos label).
- ipxe's ipxe.iso: ISOLINUX with a UEFI El Torito entry (efi.img), isolinux's isohybrid MBR.

Each is remastered with an overlay; the result keeps every file (xorriso's listing and bytes),
every El Torito entry (platform, emulation, load segment and size, boot image bytes with their
patched fields pointing at the new extents) and the hybrid MBR, and boots in QEMU (TCG, serial
console through SeaBIOS) to the same point as the original, as a CD and as a disk.
memtest86+'s ISO, whose UEFI image is a partition appended after the volume, is remastered too
(issue 23): tests/integration/test_remaster_gpt.py.
"""

from __future__ import annotations

import filecmp
import os
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from distro_builder.qa.qemu import qemu_argv
from distro_builder.remaster import remaster
from tests.helpers import require_tool_or_skip
from tests.qemu.conftest import ConsoleFactory

pytestmark = pytest.mark.qemu

BOOT_TIMEOUT = 20  # measured on the loaded 2-core machine: 0.6-1.3 s from QEMU start


@dataclass(frozen=True)
class Case:
    name: str
    iso: Path
    package: str
    mbr_boot_delta: int  # MBR[432] = boot image 512-byte LBA + this (GRUB 2: 4, isolinux: 0)
    boots_to: tuple[str, ...]  # what the original prints on the serial console, in order


CASES = [
    Case(
        "grub-rescue",
        Path("/usr/lib/grub-rescue/grub-rescue-cdrom.iso"),
        "grub-rescue-pc",
        4,
        ("Welcome to GRUB!", "GNU GRUB  version 2", "Memtest86+"),  # its grub.cfg's menu
    ),
    Case(
        "ipxe",
        Path("/usr/lib/ipxe/ipxe.iso"),
        "ipxe",
        0,
        ("ISOLINUX 6", "Loading ipxe.krn... ok", "iPXE initialising devices"),
    ),
]
IDS = [c.name for c in CASES]


def _require(case: Case) -> None:
    require_tool_or_skip("xorriso")
    if not case.iso.is_file():
        pytest.skip(f"{case.iso} is missing (Debian package {case.package}; make deps)")


def _xorriso(iso: Path, *args: str) -> str:
    return subprocess.run(
        ["xorriso", "-indev", str(iso), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def remastered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case remastered once with the same overlay (a new directory, file and symlink)."""
    work = tmp_path_factory.mktemp("third-party")
    overlay = work / "overlay"
    (overlay / "distro-builder" / "notes").mkdir(parents=True)
    (overlay / "distro-builder" / "notes" / "README.txt").write_text("added by the engine\n")
    (overlay / "distro-builder" / "big.bin").write_bytes(os.urandom(300_000))
    (overlay / "distro-builder" / "latest").symlink_to("notes/README.txt")
    out: dict[str, Path] = {}
    for case in CASES:
        if case.iso.is_file():
            out[case.name] = work / f"{case.name}.iso"
            remaster(case.iso, out[case.name], [overlay], source_date_epoch=1700000000)
    out["overlay"] = overlay
    return out


# -- files -------------------------------------------------------------------------------------


def _listing(iso: Path) -> dict[str, tuple[str, str]]:
    """Path -> (type and mode, size) from xorriso's `lsdl` (Rock Ridge names)."""
    entries = {}
    for line in _xorriso(iso, "-find", "/", "-exec", "lsdl").splitlines():
        m = re.match(
            r"^(\S+)\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+\S+\s+'(.*?)'(?: -> .*)?$", line
        )
        if m:
            entries[m.group(3)] = (m.group(1), m.group(2))
    assert entries, f"no listing for {iso}"
    return entries


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_file_kept(case: Case, remastered: dict[str, Path], tmp_path: Path) -> None:
    _require(case)
    before, after = _listing(case.iso), _listing(remastered[case.name])
    added = {p for p in after if p not in before}
    assert {p for p in before if p not in after} == set(), "files lost"
    assert added == {
        "/.disk", "/.disk/distro-builder.json", "/distro-builder", "/distro-builder/big.bin",
        "/distro-builder/latest", "/distro-builder/notes", "/distro-builder/notes/README.txt",
    }  # fmt: skip
    changed = {p: (before[p], after[p]) for p in before if before[p] != after[p] and p != "/"}
    assert changed == {}
    # Every byte of every file, boot images aside (their patched fields are checked below).
    boot = {path for path, _ in _eltorito(case.iso)[1].values()}
    for name, iso in (("before", case.iso), ("after", remastered[case.name])):
        subprocess.run(
            ["xorriso", "-osirrox", "on", "-indev", str(iso),
             "-extract", "/", str(tmp_path / name)],
            capture_output=True, check=True,
        )  # fmt: skip
    for path in before:
        a, b = tmp_path / "before" / path.lstrip("/"), tmp_path / "after" / path.lstrip("/")
        catalog = before[path][0].startswith("e")  # the boot catalog: its LBAs change
        if a.is_file() and not a.is_symlink() and path not in boot and not catalog:
            assert filecmp.cmp(a, b, shallow=False), f"{path} differs"
    overlay = remastered["overlay"] / "distro-builder"
    got = tmp_path / "after" / "distro-builder"
    assert (got / "big.bin").read_bytes() == (overlay / "big.bin").read_bytes()
    assert os.readlink(got / "latest") == "notes/README.txt"


# -- El Torito and the system area -------------------------------------------------------------


def _eltorito(iso: Path) -> tuple[dict[int, tuple[str, ...]], dict[int, tuple[str, str]]]:
    """N -> (platform, bootable, emulation, load segment, hard disk type, load size, LBA), and
    N -> (image path, options), from xorriso's report."""
    images: dict[int, tuple[str, ...]] = {}
    paths: dict[int, tuple[str, str]] = {}
    opts: dict[int, str] = {}
    for line in _xorriso(iso, "-report_el_torito", "plain").splitlines():
        key, _, value = line.partition(":")
        fields = value.split()
        if key.strip() == "El Torito boot img":
            images[int(fields[0])] = tuple(fields[1:])
        elif key.strip() == "El Torito img path":
            paths[int(fields[0])] = (fields[1], "")
        elif key.strip() == "El Torito img opts":
            opts[int(fields[0])] = " ".join(fields[1:])
    return images, {n: (p, opts.get(n, "")) for n, (p, _) in paths.items()}


def _read(iso: Path, offset: int, length: int) -> bytes:
    with open(iso, "rb") as f:
        f.seek(offset)
        return f.read(length)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_boot_entry_kept(case: Case, remastered: dict[str, Path]) -> None:
    _require(case)
    new = remastered[case.name]
    (old_images, old_paths), (new_images, new_paths) = _eltorito(case.iso), _eltorito(new)
    assert len(old_images) >= 1
    assert sorted(new_images) == sorted(old_images)
    for n in old_images:  # all but the LBA: platform, bootable, emulation, segment, load size
        assert new_images[n][:-1] == old_images[n][:-1], n
    assert new_paths == old_paths  # the same file, with the same patches (boot-info-table ...)
    for n, (path, opts) in old_paths.items():
        old_lba, new_lba = int(old_images[n][-1]), int(new_images[n][-1])
        size = int(_listing(case.iso)[path][1])
        old, got = (
            _read(case.iso, old_lba * 2048, size),
            bytearray(_read(new, new_lba * 2048, size)),
        )
        if "boot-info-table" in opts:  # the volume descriptor, the image's own extent, length
            pvd, lba, length, checksum = struct.unpack_from("<4L", got, 8)
            assert (pvd, lba, length) == (16, new_lba, size)
            words = bytes(got[64:]) + b"\0" * (-(size - 64) % 4)  # the last word zero-padded
            assert checksum == sum(struct.unpack(f"<{len(words) // 4}L", words)) % 2**32
            got[8:24] = old[8:24]
        if "grub2-boot-info" in opts:  # GRUB 2: its own 512-byte address + 5
            assert struct.unpack_from("<Q", got, 2548)[0] == new_lba * 4 + 5
            got[2548:2556] = old[2548:2556]
        assert bytes(got) == old, f"El Torito image {n} ({path}) differs"


def _system_area(iso: Path) -> dict[str, str]:
    """xorriso's report of the system area; "partitions": the MBR partition lines."""
    lines = _xorriso(iso, "-report_system_area", "plain").splitlines()
    area = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    area["partitions"] = "\n".join(line for line in lines if line.startswith("MBR partition  "))
    return area


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hybrid_mbr_kept(case: Case, remastered: dict[str, Path]) -> None:
    _require(case)
    new = remastered[case.name]
    old_area, new_area = _system_area(case.iso), _system_area(new)
    for key in ("System area options", "System area summary", "MBR heads per cyl",
                "MBR secs per head", "Partition offset"):  # fmt: skip
        assert new_area.get(key) == old_area.get(key), key
    old_parts = [line.split()[3:] for line in old_area["partitions"].splitlines()]
    new_parts = [line.split()[3:] for line in new_area["partitions"].splitlines()]
    assert [p[:3] for p in new_parts] == [p[:3] for p in old_parts]  # N, status, type, start
    size = new.stat().st_size // 512
    for n, _status, _type, start, blocks in new_parts:
        assert int(start) + int(blocks) == size, f"partition {n} does not end with the image"
    # The MBR's boot code finds the El Torito image at its new address.
    bios_lba = int(_eltorito(new)[0][1][-1])
    assert struct.unpack("<Q", _read(new, 432, 8))[0] == bios_lba * 4 + case.mbr_boot_delta
    assert _read(new, 0, 432) == _read(case.iso, 0, 432)  # the boot code itself
    assert _read(new, 510, 2) == b"\x55\xaa"


# -- booting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("medium", ["cdrom", "disk"])
@pytest.mark.parametrize("which", ["original", "remastered"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_boots(
    case: Case,
    which: str,
    medium: str,
    remastered: dict[str, Path],
    console_factory: ConsoleFactory,
) -> None:
    """Both the original and the remastered image reach the same point, as a CD and a disk."""
    _require(case)
    iso = case.iso if which == "original" else remastered[case.name]
    argv = qemu_argv(iso, accel="tcg", memory_mb=256, boot=medium, sercon=True)
    console = console_factory(argv)
    for text in case.boots_to:
        console.expect(text, timeout=BOOT_TIMEOUT)
