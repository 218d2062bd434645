"""Images in Ubuntu 22.04's and Debian 12's layouts, and an isolinux hybrid with
-partition_offset 16, boot BIOS and UEFI, before and after remaster (issue 23).

tests/gpt_iso.py makes them. "ubuntu": GRUB's El Torito image and hybrid MBR, a GPT with a
protective MBR, an EFI System Partition appended after the ISO 9660 data, the UEFI El Torito
entry pointing into it. "debian": isolinux and its MBR, a GPT and an Apple partition map whose
EFI partition is efi.img inside the volume. "isolinux-offset": isolinux and its MBR, partition 1
at sector 64 with its own superblock and tree, efi.img as the UEFI El Torito entry and appended as
MBR partition 2 (type 0xef). Each is remastered with an overlay that makes the ISO
data 3 MiB bigger, so the boot images, the ESP and the backup GPT move. Original and remastered
boot in QEMU (TCG) to a menu that prints a marker on the serial line:

- BIOS (SeaBIOS) as a CD: the El Torito boot image (its boot-info table, and GRUB's own boot
  info, point at its new place); GRUB's menu ("on pc") or isolinux's;
- BIOS as a disk: the MBR's code, which loads the boot image by the address at byte 432;
- UEFI (OVMF, Debian package ovmf) as a CD: the UEFI El Torito entry (into the appended ESP, or
  efi.img), GRUB's menu "on efi";
- UEFI as a disk: the ESP found through the GPT (ubuntu) or the MBR's 0xef partition (debian);
  GRUB then finds the ISO data by a file on it. On "isolinux-offset" OVMF boots the disk
  through its UEFI El Torito entry, not the 0xef partition (GRUB calls the disk cd0: seen), and
  GRUB's menu also says whether it reads the MBR's partition 1 alone as ISO 9660 (`[ -f
  (cd0,msdos1)/... ]`): that fails without the partition's own superblock and tree. The other
  boots of that layout pass without them too (isolinux on a disk reads the whole image).

Measured on the loaded 2-core machine: 0.5 s per BIOS boot, 4-5 s per UEFI boot from QEMU's
start; the module (three images, three remasters and 24 boots) 65-75 s (was 42 s without
isolinux-offset).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distro_builder.qa.qemu import qemu_argv
from distro_builder.remaster import remaster
from tests.gpt_iso import (
    ENTRY,
    MARK,
    PACKAGES,
    PARTITION_1,
    make_debian_iso,
    make_gpt_esp_iso,
    make_isolinux_offset_iso,
    missing,
)
from tests.helpers import IN_CI, require_tool_or_skip
from tests.qemu.conftest import ConsoleFactory

pytestmark = pytest.mark.qemu

OVMF = Path("/usr/share/ovmf/OVMF.fd")  # Debian's ovmf: OVMF_CODE and OVMF_VARS in one file
BOOT_TIMEOUT = 90  # TCG on a shared machine; measured 0.5 s (SeaBIOS), 4-5 s (OVMF)


def _skip_or_fail(msg: str) -> None:
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_tool_or_skip("xorriso", "qemu-system-x86_64")
    lacking = missing()
    if lacking:
        _skip_or_fail(f"missing {', '.join(lacking)} (Debian packages {PACKAGES})")
    work = tmp_path_factory.mktemp("gpt-boot")
    overlay = work / "overlay"
    (overlay / "distro-builder").mkdir(parents=True)
    (overlay / "distro-builder" / "big.bin").write_bytes(os.urandom(3 << 20))
    images = {}
    layouts = (
        ("ubuntu", make_gpt_esp_iso), ("debian", make_debian_iso),
        ("isolinux-offset", make_isolinux_offset_iso),
    )  # fmt: skip
    for layout, make in layouts:
        (work / layout).mkdir()
        images[f"{layout}-original"] = base = make(work / layout)
        images[f"{layout}-remastered"] = out = work / layout / "remastered.iso"
        remaster(base, out, [overlay], source_date_epoch=1700000000)
    return images


@pytest.mark.parametrize("medium", ["cdrom", "disk"])
@pytest.mark.parametrize("firmware", ["bios", "uefi"])
@pytest.mark.parametrize("which", ["original", "remastered"])
@pytest.mark.parametrize("layout", ["ubuntu", "debian", "isolinux-offset"])
def test_boots_to_the_menu(
    layout: str,
    which: str,
    firmware: str,
    medium: str,
    images: dict[str, Path],
    console_factory: ConsoleFactory,
) -> None:
    extra: list[str] = []
    if firmware == "uefi":
        if not OVMF.is_file():
            _skip_or_fail(f"{OVMF} is missing (Debian package ovmf; make deps)")
        extra = ["-bios", os.fspath(OVMF)]
    # sercon=False: GRUB writes to the serial port itself (`terminal_output serial console`)
    iso = images[f"{layout}-{which}"]
    argv = qemu_argv(iso, accel="tcg", memory_mb=256, boot=medium, sercon=False, extra=extra)
    console = console_factory(argv)
    if firmware == "uefi":
        console.expect(f"{MARK} grub.cfg on efi", timeout=BOOT_TIMEOUT)
        if medium == "disk" and layout == "isolinux-offset":
            console.expect(PARTITION_1, timeout=BOOT_TIMEOUT)  # the offset partition reads
    elif layout == "ubuntu":
        console.expect(f"{MARK} grub.cfg on pc", timeout=BOOT_TIMEOUT)
    else:  # isolinux's menu
        console.expect(f"{MARK} isolinux", timeout=BOOT_TIMEOUT)
    console.expect(ENTRY, timeout=BOOT_TIMEOUT)
