"""stackops-check's instance image boots in real QEMU (TCG, as libvirt_type=qemu runs it): SeaBIOS
loads its boot sector, which prints `STACKOPS-CHECK-INSTANCE <id> up` on COM1 (the serial port
Nova 2011.2 keeps as console.log) and halts. Broken on purpose: the same sector without its
`out` to the port prints nothing, and the wait fails (test below)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from distro_builder.instance_image import boot_sector, build_instance_image, marker
from distro_builder.qa.console import scale_timeout
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.qemu

QEMU = "qemu-system-x86_64"
# Measured under TCG on a busy 2-CPU host: the marker is in the serial log about 0.3-1 s after
# QEMU starts (SeaBIOS, then one sector); 30 s leaves room for a loaded machine.
TIMEOUT = 30.0


def _boot(image: bytes, tmp_path: Path, want: str, timeout: float) -> tuple[str, float]:
    """(serial log, seconds until `want` was in it, or the timeout) of a TCG boot of `image`."""
    require_tool_or_skip(QEMU)
    disk, serial = tmp_path / "instance.img", tmp_path / "serial.log"
    disk.write_bytes(image)
    argv = [
        QEMU, "-machine", "pc,accel=tcg", "-m", "32", "-display", "none", "-nodefaults",
        "-no-reboot", "-serial", f"file:{serial}",
        "-drive", f"file={disk},format=raw,if=ide",
    ]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        text = ""
        while time.monotonic() - t0 < timeout and proc.poll() is None:
            text = serial.read_text(errors="replace") if serial.exists() else ""
            if want in text:
                break
            time.sleep(0.1)
        took = time.monotonic() - t0
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        proc.kill()
        proc.wait()
    return serial.read_text(errors="replace"), took


def test_the_image_prints_its_marker_on_com1(tmp_path: Path) -> None:
    iid = os.urandom(4).hex()
    log, took = _boot(build_instance_image(iid), tmp_path, marker(iid), scale_timeout(TIMEOUT))
    print(f"marker after {took:.1f} s")
    lines = [ln.strip("\r") for ln in log.splitlines()]
    assert f"STACKOPS-CHECK-INSTANCE {iid} up" in lines, log[-500:]


def test_a_sector_that_does_not_write_the_port_fails_the_wait(tmp_path: Path) -> None:
    sector = boot_sector()
    out = sector.index(b"\x88\xe0\xee")  # mov al, ah; out dx, al: the byte to the port
    broken = sector[: out + 2] + b"\x90" + sector[out + 3 :]  # out -> nop
    log, took = _boot(broken + bytes(1024 * 1024 - 512), tmp_path, marker(), 5.0)
    assert "STACKOPS-CHECK-INSTANCE" not in log and took >= 5.0, (log, took)
