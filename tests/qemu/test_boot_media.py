"""The demo base and remastered ISOs boot in QEMU: isolinux menu, then the entry's kernel.

Driven through the same harness as `smoke` (distro_builder.qa): serial console, pexpect.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from distro_builder.qa.console import SerialConsole
from distro_builder.qa.qemu import choose_accel, qemu_argv
from distro_builder.remaster import remaster
from tests.qemu.conftest import ConsoleFactory

pytestmark = pytest.mark.qemu

MENU_TIMEOUT = 20
KERNEL_TIMEOUT = 60  # TCG: ISOLINUX reads 8 MB kernel + 40 MB initrd through int13 (~15 s)

# What a QA build (--serial-console) lays over the base: isolinux on the serial line, menu.c32
# instead of vesamenu/gfxboot, console=ttyS0 after `---` for the installed system.
QA_ISOLINUX_CFG = "serial 0 115200\nui menu.c32\ninclude menu.cfg\nprompt 0\ntimeout 0\n"
QA_TEXT_CFG = """\
default compute
label compute
  menu label ^Install StackOps compute node
  kernel /install/vmlinuz
  append file=/cdrom/preseed/ubuntu-server.seed stackops/roles=compute \
initrd=/install/initrd.gz --- console=ttyS0,115200n8
label install
  menu label ^Install Ubuntu Server
  kernel /install/vmlinuz
  append  file=/cdrom/preseed/ubuntu-server.seed initrd=/install/initrd.gz quiet --
"""


@pytest.fixture(scope="module")
def accel(demo_base: Path) -> str:
    """KVM only when a probe boots the demo base under it; otherwise TCG."""
    return choose_accel("auto", iso=demo_base)


@pytest.fixture(scope="module")
def qa_overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qa-overlay")
    (root / "isolinux").mkdir()
    (root / "isolinux" / "isolinux.cfg").write_text(QA_ISOLINUX_CFG)
    (root / "isolinux" / "text.cfg").write_text(QA_TEXT_CFG)
    return root


def _kernel_command_line(console: SerialConsole) -> str:
    with console.stage("kernel", timeout=KERNEL_TIMEOUT):
        console.expect("Linux version")
        return console.expect_line("Command line:")


def test_demo_base_boots_to_menu_and_install_starts_the_kernel(
    demo_base: Path, accel: str, console_factory: ConsoleFactory
) -> None:
    # An unmodified lucid disc has no serial directive: vesamenu falls back to text with no VGA
    # and SeaBIOS's serial console carries it.
    console = console_factory(qemu_argv(demo_base, accel=accel, sercon=True))
    with console.stage("menu", timeout=MENU_TIMEOUT):
        console.expect("Installer boot menu")
        console.expect("Install Ubuntu Server")
        console.expect("Install Ubuntu Enterprise Cl")  # lucid's `menu width 49` cuts it
        console.expect("Check disc for defects")
        console.expect("Press ENTER to boot or TAB to edit a menu entry")  # stdmenu.cfg tabmsg
    # The default entry is `install`; its append line has `quiet` and no console=, so add one.
    # Lucid's lines end in `--`, after which the kernel passes arguments to init: insert before it.
    console.send_key("tab")
    console.drain(0.5)
    console.send_key("backspace", times=2)
    console.send("loglevel=7 console=ttyS0,115200n8 --", char_delay=0.05)
    console.send_key("enter")
    cmdline = _kernel_command_line(console)
    assert "file=/cdrom/preseed/ubuntu-server.seed" in cmdline
    assert "console=ttyS0,115200n8" in cmdline


def test_remastered_iso_boots_its_new_entry(
    demo_base: Path,
    qa_overlay: Path,
    accel: str,
    console_factory: ConsoleFactory,
    tmp_path: Path,
) -> None:
    out = tmp_path / "qa.iso"
    remaster(demo_base, out, [qa_overlay])
    console = console_factory(qemu_argv(out, accel=accel, sercon=False))
    with console.stage("menu", timeout=MENU_TIMEOUT):
        console.expect("Installer boot menu")
        console.expect("nstall StackOps compute node")  # hotkey letter drawn separately
        console.expect("nstall Ubuntu Server")
    console.send_key("enter")
    cmdline = _kernel_command_line(console)
    assert "stackops/roles=compute" in cmdline
    assert "console=ttyS0,115200n8" in cmdline


@pytest.mark.parametrize("which", ["original", "remastered"])
def test_replayed_base_boots_to_menu(
    which: str,
    demo_replay_base: Path,
    qa_overlay: Path,
    accel: str,
    console_factory: ConsoleFactory,
    tmp_path: Path,
) -> None:
    """The demo base written by `xorriso -indev -outdev -boot_image any replay` (isolinux's
    boot-info table counting from block 48) boots as a CD to the menu, and so does its remaster,
    whose table the engine wrote for its own layout (before: "isolinux: Image checksum error,
    sorry..."). 0.3 s per boot under TCG."""
    iso, sercon = demo_replay_base, True
    if which == "remastered":
        iso, sercon = tmp_path / "qa.iso", False  # the QA overlay's isolinux.cfg has `serial`
        remaster(demo_replay_base, iso, [qa_overlay], source_date_epoch=1302825600)
    console = console_factory(qemu_argv(iso, accel=accel, sercon=sercon))
    with console.stage("menu", timeout=MENU_TIMEOUT):
        console.expect("Installer boot menu")
        if which == "remastered":
            console.expect("nstall StackOps compute node")  # its tree read through bi_pvd


def test_hybrid_output_boots_as_a_disk(
    demo_base: Path,
    qa_overlay: Path,
    accel: str,
    console_factory: ConsoleFactory,
    tmp_path: Path,
) -> None:
    out = tmp_path / "hybrid.iso"
    remaster(demo_base, out, [qa_overlay], hybrid=True)
    console = console_factory(qemu_argv(out, accel=accel, sercon=False, boot="disk"))
    with console.stage("menu", timeout=MENU_TIMEOUT):
        console.expect("Installer boot menu")
        console.expect("nstall StackOps compute node")
    console.send_key("enter")
    assert "stackops/roles=compute" in _kernel_command_line(console)


def test_base_is_not_hybrid(demo_base: Path, accel: str, console_factory: ConsoleFactory) -> None:
    """Negative control: the base (no isohybrid MBR) does not boot as a disk."""
    from distro_builder.errors import SmokeTestError

    console = console_factory(qemu_argv(demo_base, accel=accel, sercon=True, boot="disk"))
    with pytest.raises(SmokeTestError):
        console.expect("Installer boot menu", timeout=10)
