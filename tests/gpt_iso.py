"""Bootable ISOs in the layouts of Ubuntu 22.04's and Debian 12's, made with xorriso (issue 23).

The xorriso options are the ones Ubuntu's 22.04 ISOs report (`xorriso -indev
ubuntu-22.04-live-server-amd64.iso -report_el_torito as_mkisofs`; livecd-rootfs builds them):
GRUB 2's El Torito image with a boot-info table and GRUB's own boot info (`-b
/boot/grub/i386-pc/eltorito.img -boot-info-table --grub2-boot-info`), GRUB's hybrid MBR
(`--grub2-mbr boot_hybrid.img --mbr-force-bootable`), the ISO 9660 partition at an offset of 16
blocks (`-partition_offset 16`: a second superblock and tree for the partition), an EFI System
Partition appended after the volume and described by a GPT with a protective MBR
(`-append_partition 2 28732ac1... efi.img -appended_part_as_gpt -iso_mbr_part_type a2a0d0eb...`),
and a UEFI El Torito entry pointing into that partition (`-e
--interval:appended_partition_2:all::`).

make_debian_iso: the options of Debian 12's debian-cd (tools/boot/bookworm/boot-x86): isolinux
with a boot-info table and isolinux's MBR (`-isohybrid-mbr isohdpfx.bin -b isolinux/isolinux.bin
-c isolinux/boot.cat -boot-load-size 4 -boot-info-table -no-emul-boot`), GRUB's efi.img inside
the volume as the UEFI entry (`-eltorito-alt-boot -e boot/grub/efi.img -no-emul-boot`) and as a
partition of a GPT and an Apple partition map (`-isohybrid-gpt-basdat -isohybrid-apm-hfsplus`);
the image padded to whole cylinders, the backup GPT at its end inside the volume. Debian 12 has
no appended partition; its EFI partition is the file efi.img.

In both, both firmwares reach a menu that prints MARK on the serial line: GRUB's with the
platform, isolinux's menu on Debian's BIOS side. BIOS (SeaBIOS) through the El Torito image
(CD) or the MBR (disk), UEFI (OVMF) through the El Torito entry (CD) or the ESP in the GPT
(disk); the EFI GRUB finds the disc by a file on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

GRUB_PC = Path("/usr/lib/grub/i386-pc")
GRUB_EFI = Path("/usr/lib/grub/x86_64-efi")
TOOLS = ("xorriso", "grub-mkimage", "grub-mkstandalone", "mkfs.msdos", "mmd", "mcopy")
PACKAGES = "xorriso grub-pc-bin grub-efi-amd64-bin dosfstools mtools isolinux syslinux-common"
MARK = "DB-ISO23"
ENTRY = f"{MARK} menu entry"
ESP_TYPE = (
    "28732ac11ff8d211ba4b00a0c93ec93b"  # C12A7328-F81F-11D2-BA4B-00A0C93EC93B, as xorriso spells it
)
BASIC_DATA = "a2a0d0ebe5b9334487c068b6b72699c7"

GRUB_CFG = f"""\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
echo "{MARK} grub.cfg on ${{grub_platform}}"
set timeout=-1
menuentry "{ENTRY}" {{
  echo "{MARK} chosen"
}}
"""
# The EFI GRUB's own config: find the disc by a file only it has, then its grub.cfg.
EFI_CFG = f"""\
search --no-floppy --set=root --file /.{MARK.lower()}
set prefix=($root)/boot/grub
configfile $prefix/grub.cfg
"""
# The isolinux-offset layout's grub.cfg says too whether GRUB reads the MBR's partition 1 alone
# as ISO 9660 (its own superblock at its block 16, its own tree). OVMF finds the El Torito entry
# on a disk as on a CD, so GRUB calls either cd0; (hd0) in case a firmware does otherwise.
PARTITION_1 = f"{MARK} partition 1 reads alone"
GRUB_CFG_OFFSET = GRUB_CFG.replace(
    "set timeout=-1\n",
    f"for d in cd0 hd0; do if [ -f ($d,msdos1)/.{MARK.lower()} ]; then "
    f'echo "{PARTITION_1} in $d"; fi; done\nset timeout=-1\n',
)
ISOLINUX_CFG = f"""\
serial 0 115200
ui menu.c32
prompt 0
timeout 0
menu title {MARK} isolinux
label grub
  menu label {ENTRY}
  kernel /boot/grub/i386-pc/eltorito.img
"""
ISOLINUX_MODULES = ("ldlinux", "menu", "libutil", "libcom32")
ISOLINUX = Path("/usr/lib/ISOLINUX")
SYSLINUX_BIOS = Path("/usr/lib/syslinux/modules/bios")
BIOS_MODULES = "biosdisk iso9660 part_gpt part_msdos normal search configfile echo serial terminal"
EFI_MODULES = "iso9660 part_gpt part_msdos normal search configfile echo serial terminal fat test"


def missing() -> list[str]:
    """What making the image needs and this machine lacks."""
    out = [t for t in TOOLS if shutil.which(t) is None]
    need = (
        GRUB_PC / "boot_hybrid.img", GRUB_EFI / "kernel.img", ISOLINUX / "isohdpfx.bin",
        ISOLINUX / "isolinux.bin", *(SYSLINUX_BIOS / f"{m}.c32" for m in ISOLINUX_MODULES),
    )  # fmt: skip
    out += [str(p) for p in need if not p.exists()]
    return out


def _run(argv: list[str], **kw: object) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(argv, check=True, capture_output=True, env=env, **kw)  # type: ignore[call-overload]


def _grub_tree(work: Path, grub_cfg: str = GRUB_CFG) -> tuple[Path, Path]:
    """work/tree with GRUB's BIOS El Torito image and grub.cfg, and work/efi.img (a FAT ESP
    with GRUB for x86_64 UEFI as /EFI/BOOT/BOOTX64.EFI)."""
    tree = work / "tree"
    (tree / "boot" / "grub" / "i386-pc").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(grub_cfg)
    (tree / f".{MARK.lower()}").write_text("the EFI GRUB looks for this file\n")
    _run([
        "grub-mkimage", "-O", "i386-pc-eltorito", "-p", "/boot/grub",
        "-o", str(tree / "boot" / "grub" / "i386-pc" / "eltorito.img"), *BIOS_MODULES.split(),
    ])  # fmt: skip
    (work / "efi.cfg").write_text(EFI_CFG)
    efi = work / "bootx64.efi"
    _run([
        "grub-mkstandalone", "-O", "x86_64-efi", "-o", str(efi),
        f"--install-modules={EFI_MODULES}", f"--modules={EFI_MODULES}",
        "--locales=", "--fonts=", "--themes=",
        f"boot/grub/grub.cfg={work / 'efi.cfg'}",
    ])  # fmt: skip
    img = work / "efi.img"
    kib = (efi.stat().st_size >> 10) + 256
    _run(["mkfs.msdos", "--invariant", "-i", "deb00001", "-C", str(img), str(kib)])
    _run(["mmd", "-i", str(img), "::EFI", "::EFI/BOOT"])
    _run(["mcopy", "-i", str(img), str(efi), "::EFI/BOOT/BOOTX64.EFI"])
    return tree, img


def make_gpt_esp_iso(work: Path) -> Path:
    """The image in Ubuntu 22.04's layout (work/gpt-esp.iso)."""
    tree, img = _grub_tree(work)
    (tree / "README.txt").write_text("issue 23: an Ubuntu 22.04-like layout\n")
    iso = work / "gpt-esp.iso"
    _run([
        "xorriso", "-as", "mkisofs", "-r", "-J", "-V", "DB-ISO23 GPT ESP", "-o", str(iso),
        "--grub2-mbr", str(GRUB_PC / "boot_hybrid.img"),
        "-partition_offset", "16",
        "--mbr-force-bootable",
        "-append_partition", "2", ESP_TYPE, str(img),
        "-appended_part_as_gpt",
        "-iso_mbr_part_type", BASIC_DATA,
        "-c", "/boot.catalog",
        "-b", "/boot/grub/i386-pc/eltorito.img",
        "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", "--grub2-boot-info",
        "-eltorito-alt-boot",
        "-e", "--interval:appended_partition_2:all::",
        "-no-emul-boot",
        str(tree),
    ])  # fmt: skip
    return iso


def make_debian_iso(work: Path) -> Path:
    """The image in Debian 12's layout (work/debian.iso)."""
    tree, img = _grub_tree(work)
    (tree / "README.txt").write_text("issue 23: a Debian 12-like layout\n")
    shutil.copy(img, tree / "boot" / "grub" / "efi.img")
    _isolinux_tree(tree)
    iso = work / "debian.iso"
    _run([
        "xorriso", "-as", "mkisofs", "-r", "-J", "-joliet-long", "-cache-inodes",
        "-V", "DB-ISO23 DEBIAN", "-o", str(iso),
        "-isohybrid-mbr", str(ISOLINUX / "isohdpfx.bin"),
        "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
        "-boot-load-size", "4", "-boot-info-table", "-no-emul-boot",
        "-eltorito-alt-boot", "-e", "boot/grub/efi.img", "-no-emul-boot",
        "-isohybrid-gpt-basdat", "-isohybrid-apm-hfsplus",
        str(tree),
    ])  # fmt: skip
    return iso


def _isolinux_tree(tree: Path) -> None:
    (tree / "isolinux").mkdir()
    # xorriso -boot-info-table patches the boot file in place: never the system copy.
    shutil.copy(ISOLINUX / "isolinux.bin", tree / "isolinux" / "isolinux.bin")
    for module in ISOLINUX_MODULES:
        shutil.copy(SYSLINUX_BIOS / f"{module}.c32", tree / "isolinux" / f"{module}.c32")
    (tree / "isolinux" / "isolinux.cfg").write_text(ISOLINUX_CFG)


def make_isolinux_offset_iso(work: Path, *, esp: bool = True) -> Path:
    """An isolinux hybrid whose partition 1 starts at block 16 (work/isolinux-offset.iso):
    isolinux's MBR and El Torito image with a boot-info table, GRUB's efi.img inside the volume
    as the UEFI El Torito entry, `-partition_offset 16` (partition 1 at 512-byte sector 64, a
    second superblock at its block 16, image block 32, and a second tree counted from it), and
    with `esp` the same efi.img appended as MBR partition 2 of type 0xef (`-append_partition 2
    0xef efi.img`): the ISO partition then ends at a whole cylinder (64 heads x 32 sectors)
    where the ESP begins. Without `esp` the image is padded to whole cylinders. The EFI GRUB
    says PARTITION_1 when it reads the disk's partition 1 alone."""
    tree, img = _grub_tree(work, GRUB_CFG_OFFSET)
    (tree / "README.txt").write_text("issue 23: isolinux's MBR with -partition_offset 16\n")
    shutil.copy(img, tree / "boot" / "grub" / "efi.img")
    _isolinux_tree(tree)
    iso = work / "isolinux-offset.iso"
    appended = ["-append_partition", "2", "0xef", str(img)] if esp else []
    _run([
        "xorriso", "-as", "mkisofs", "-r", "-J", "-V", "DB-ISO23 OFFSET", "-o", str(iso),
        "-isohybrid-mbr", str(ISOLINUX / "isohdpfx.bin"),
        "-partition_offset", "16",
        "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
        "-boot-load-size", "4", "-boot-info-table", "-no-emul-boot",
        "-eltorito-alt-boot", "-e", "boot/grub/efi.img", "-no-emul-boot",
        *appended,
        str(tree),
    ])  # fmt: skip
    return iso
