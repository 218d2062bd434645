"""A QA build (--serial-console) of the demo base: each StackOps entry boots the installer, and the
initrd preseed's early_command prints the entry's roles on the serial console.

The demo base's installer is Debian 12's netboot d-i: it cannot read the CD, so the marker proves
that the initrd preseed (appended to install/initrd.gz) was read and its early_command ran with
the roles from the kernel command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from distro_builder.build import BuildOptions, build_iso
from distro_builder.qa.qemu import choose_accel, qemu_argv
from tests.helpers import require_tool_or_skip
from tests.qemu.conftest import ConsoleFactory

pytestmark = pytest.mark.qemu

MENU_TIMEOUT = 30
MARKER_TIMEOUT = 180  # TCG: kernel ~15 s, then the initrd (40 MB) unpacks and d-i starts
# Menu order of the build (boot_entries): most roles first, then one per role.
ORDER = ["all-in-one", "cloud-controller", "controller", "network", "volume", "compute"]
ROLES = {
    "all-in-one": "controller,network,volume,compute",
    "controller": "controller",
    "network": "network",
    "volume": "volume",
    "compute": "compute",
}


@pytest.fixture(scope="module")
def qa_iso(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, demo_base: Path) -> Path:
    require_tool_or_skip("debconf-set-selections")
    out = tmp_path_factory.mktemp("qa") / "stackops-qa.iso"
    opts = BuildOptions(
        base=demo_base,
        output=out,
        packages=False,
        serial_console=True,
        source_date_epoch=1300000000,
    )
    build_iso(data_dir, opts)
    return out


# make test boots all-in-one and compute; the single-role controller, network and volume
# entries (the same code path, one role each) only in make e2e: keeps make test under 50
# minutes on the 2-core TCG machine (README)
@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(e, marks=pytest.mark.e2e) if e in ("controller", "network", "volume") else e
        for e in ROLES
    ],
)
def test_entry_boots_the_installer_with_its_roles(
    qa_iso: Path, entry: str, console_factory: ConsoleFactory
) -> None:
    accel = choose_accel("auto", iso=qa_iso)
    # The disc says `serial 0 115200`: isolinux drives the serial line itself.
    console = console_factory(qemu_argv(qa_iso, accel=accel, sercon=False))
    with console.stage("menu", timeout=MENU_TIMEOUT):
        console.expect("Install StackOps all-in-one")
        console.expect("Install StackOps compute node")
        console.expect("Install Ubuntu Server")  # the base's entries stay
    for _ in range(ORDER.index(entry)):
        console.send_key("down")
        console.drain(0.3)
    console.send_key("enter")
    with console.stage("kernel", timeout=60):
        cmdline = console.expect_line("Command line:")
    assert f"stackops/roles={ROLES[entry]} " in cmdline
    assert cmdline.rstrip().endswith("console=ttyS0,115200n8 -- console=ttyS0,115200n8")
    with console.stage("preseed marker", timeout=MARKER_TIMEOUT):
        marker = console.expect_line("STACKOPS-PRESEED roles=")
    assert marker == ROLES[entry]
