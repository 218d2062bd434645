"""Fixtures for the QEMU tests: tiny isolinux ISOs and consoles that never outlive a test.

The ISOs boot the Debian 12 netboot kernel and initrd (package debian-installer-12-netboot-amd64)
through ISOLINUX (packages isolinux, syslinux-common), so no Ubuntu ISO is needed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from distro_builder.build import BuildOptions, build_iso
from distro_builder.qa.console import SerialConsole
from distro_builder.run import run
from tests.helpers import require_tool_or_skip

ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
SYSLINUX_MODULES = Path("/usr/lib/syslinux/modules/bios")
MODULES = ("ldlinux", "vesamenu", "menu", "libcom32", "libutil")
DI_IMAGES = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64")
KERNEL = DI_IMAGES / "linux"
INITRD = DI_IMAGES / "initrd.gz"

MARKER = "db_qa_marker=serial42"

# Our own remastered discs: ISOLINUX itself talks to the serial port.
SERIAL_CFG = f"""\
serial 0 115200
ui menu.c32
prompt 0
timeout 0
menu title Tiny boot menu
label install
  menu label ^Install tiny
  kernel /install/linux
  append initrd=/install/initrd.gz console=ttyS0,115200n8 {MARKER} ---
label rescue
  menu label ^Rescue mode
  kernel /install/linux
  append initrd=/install/initrd.gz console=ttyS0,115200n8 rescue/enable=true ---
"""

# Like an unmodified Ubuntu 10.04 disc: no serial directive, vesamenu, no console= argument.
LUCID_CFG = """\
default vesamenu.c32
prompt 0
timeout 0
menu title Installer boot menu
label install
  menu label ^Install Ubuntu Server
  kernel /install/linux
  append initrd=/install/initrd.gz quiet ---
label rescue
  menu label ^Rescue a broken system
  kernel /install/linux
  append initrd=/install/initrd.gz rescue/enable=true ---
"""

IsoFactory = Callable[..., Path]
ConsoleFactory = Callable[[list[str]], SerialConsole]


@pytest.fixture(scope="session")
def tiny_boot_iso_factory(tmp_path_factory: pytest.TempPathFactory) -> IsoFactory:
    """make(name, isolinux_cfg, *, hybrid=False) -> Path of a bootable ISO (built once per name)."""
    require_tool_or_skip("genisoimage")
    for path in (ISOLINUX_BIN, SYSLINUX_MODULES / "ldlinux.c32", KERNEL, INITRD):
        if not path.exists():
            pytest.skip(
                f"{path} is missing (isolinux, syslinux-common, debian-installer-12-netboot-amd64)"
            )
    base = tmp_path_factory.mktemp("isos")
    built: dict[str, Path] = {}

    def make(name: str, isolinux_cfg: str, *, hybrid: bool = False) -> Path:
        if name in built:
            return built[name]
        work = base / name
        (work / "isolinux").mkdir(parents=True)
        # genisoimage -boot-info-table patches the boot file in place: never the system copy.
        shutil.copy(ISOLINUX_BIN, work / "isolinux" / "isolinux.bin")
        (work / "isolinux" / "isolinux.cfg").write_text(isolinux_cfg)
        iso = base / f"{name}.iso"
        grafts = [f"isolinux/{m}.c32={SYSLINUX_MODULES / f'{m}.c32'}" for m in MODULES]
        run([
            "genisoimage", "-quiet",
            "-o", iso,
            "-b", "isolinux/isolinux.bin",
            "-c", "isolinux/boot.cat",
            "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
            "-J", "-R", "-V", "TINY_BOOT",
            "-graft-points",
            f"isolinux/={work / 'isolinux'}",
            f"install/linux={KERNEL}",
            f"install/initrd.gz={INITRD}",
            *grafts,
        ])  # fmt: skip
        if hybrid:
            require_tool_or_skip("isohybrid")
            run(["isohybrid", iso])
        built[name] = iso
        return iso

    return make


@pytest.fixture(scope="session")
def qa_disc(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, demo_base: Path) -> Path:
    """A QA build of the demo base (serial console; the demo base carries the netboot tree),
    shared by the network-boot tests (test_pxe.py, test_dnsmasq_proxy.py)."""
    require_tool_or_skip("debconf-set-selections")
    out = tmp_path_factory.mktemp("pxe-disc") / "stackops-qa.iso"
    opts = BuildOptions(base=demo_base, output=out, packages=False, serial_console=True,
                        source_date_epoch=1300000000)  # fmt: skip
    build_iso(data_dir, opts)
    return out


@pytest.fixture
def console_factory(tmp_path: Path) -> Iterator[ConsoleFactory]:
    """open(argv) -> a SerialConsole logging to tmp_path; every one is closed after the test."""
    require_tool_or_skip("qemu-system-x86_64")
    consoles: list[SerialConsole] = []

    def open_console(argv: list[str]) -> SerialConsole:
        console = SerialConsole(argv, tmp_path / f"console-{len(consoles)}.log")
        consoles.append(console)
        return console

    yield open_console
    for console in consoles:
        console.close()
