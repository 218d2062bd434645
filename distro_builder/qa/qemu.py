"""QEMU command lines for booting an ISO on a serial console, and the KVM probe.

Owns the qemu-system-x86_64 argv (pure functions) and the decision KVM vs TCG. It starts QEMU
only to probe KVM (through run.run, or qa.console.SerialConsole for the boot probe); driving a
console is qa/console.py's job.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from distro_builder.errors import SmokeTestError, ToolError
from distro_builder.qa.console import SerialConsole
from distro_builder.run import find_tool, run

log = logging.getLogger(__name__)

QEMU = "qemu-system-x86_64"
Accel = Literal["tcg", "kvm"]
BootMedium = Literal["cdrom", "disk"]
ACCELS: tuple[str, ...] = ("tcg", "kvm")
BOOT_MEDIA: tuple[str, ...] = ("cdrom", "disk")
ACCEL_CHOICES: tuple[str, ...] = ("auto", "kvm", "tcg")

# A booted ISO must run this long under KVM without "KVM internal error" to count as working.
_ISO_PROBE_SETTLE = 5.0

KVM_DEVICE = Path("/dev/kvm")

_probe_cache: dict[Path | str | None, bool] = {}


def _qemu_file(path: Path) -> str:
    # QEMU option values are comma-separated: a comma in a file name is written twice.
    return os.fspath(path).replace(",", ",,")


def qemu_argv(
    iso: Path,
    *,
    accel: str,
    memory_mb: int = 1024,
    boot: str = "cdrom",
    sercon: bool,
    extra: Sequence[str] = (),
) -> list[str]:
    """Return the argv booting `iso` with its serial line on stdio (drained by the console).

    sercon=False: the disc's bootloader talks to the serial port itself (`serial 0 115200`), so
    SeaBIOS must not mirror VGA text onto it too (every character would arrive twice).
    sercon=True: an unmodified disc without a serial directive; with no VGA card SeaBIOS's serial
    console carries the bootloader's text (vesamenu.c32 falls back to its text menu).
    boot="disk" boots a hybrid ISO as a hard disk (like a USB stick), never writing to it.
    """
    if accel not in ACCELS:
        raise ValueError(f"accel must be one of {ACCELS}, not {accel!r}")
    if boot not in BOOT_MEDIA:
        raise ValueError(f"boot must be one of {BOOT_MEDIA}, not {boot!r}")
    argv = [
        QEMU,
        "-nographic",
        "-no-reboot",
        "-nic", "none",
        "-m", str(memory_mb),
        "-accel", accel,
    ]  # fmt: skip
    if sercon:
        argv += ["-vga", "none"]
    else:
        # QEMU warns that the name lacks "opt/"; SeaBIOS reads exactly this name, so ignore it.
        argv += ["-fw_cfg", "name=etc/sercon-port,string=0"]
    if boot == "cdrom":
        argv += ["-cdrom", os.fspath(iso), "-boot", "d"]
    else:
        argv += ["-drive", f"file={_qemu_file(iso)},format=raw,if=ide,snapshot=on", "-boot", "c"]
    argv += list(extra)
    return argv


def _probe_seabios(qemu: str, timeout: float) -> bool:
    # No disk: SeaBIOS prints its banner, finds nothing to boot, "reboots" at once, and
    # -no-reboot turns that into a clean exit. stdin is a pipe so QEMU leaves the tty alone.
    argv = [
        qemu,
        "-accel", "kvm",
        "-nographic",  # also what makes SeaBIOS use the serial port (etc/sercon-port)
        "-nodefaults",
        "-serial", "stdio",
        "-m", "32",
        "-no-reboot",
        "-boot", "reboot-timeout=0",
    ]  # fmt: skip
    try:
        proc = run(argv, check=False, capture=True, binary=True, input=b"", timeout=timeout)
    except ToolError as e:  # a hang: run() killed it
        log.debug("KVM probe: %s", e)
        return False
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0 or "SeaBIOS" not in out:
        err = proc.stderr.decode(errors="replace").strip()
        log.debug(
            "KVM probe: exit %s, stderr %r, stdout %r", proc.returncode, err[-500:], out[-200:]
        )
        return False
    return True


def _probe_iso(qemu: str, iso: Path, timeout: float) -> bool:
    # SeaBIOS alone can pass where a bootloader fails: with nested KVM (kvm_pvm) ISOLINUX 6
    # dies on its first protected-mode iret with "KVM internal error ... emulation failure".
    argv = [qemu, *qemu_argv(iso, accel="kvm", memory_mb=256, sercon=True)[1:]]
    with tempfile.TemporaryDirectory(prefix="distro-builder-kvm-probe-") as tmp:
        try:
            with SerialConsole(argv, Path(tmp) / "console.log") as console:
                console.expect("Booting from", timeout=timeout)
                console.drain(_ISO_PROBE_SETTLE)
        except SmokeTestError as e:
            log.debug("KVM probe with %s failed: %s", iso, e)
            return False
    return True


def _probe_netboot(qemu: str, timeout: float) -> bool:
    # The NIC's iPXE ROM must get through DHCP under KVM. Measured here: SeaBIOS passes, then
    # iPXE dies in protected mode with "KVM internal error ... emulation failure" (the ISOLINUX
    # failure above), so a network boot under KVM never reaches its boot file.
    argv = [
        qemu, "-accel", "kvm", "-nographic", "-no-reboot", "-m", "128", "-vga", "none",
        "-nic", "user,model=e1000", "-boot", "n",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="distro-builder-kvm-probe-") as tmp:
        try:
            with SerialConsole(argv, Path(tmp) / "console.log") as console:
                console.expect(_NETBOOT_PROBE_OK, timeout=timeout)
        except SmokeTestError as e:
            log.debug("KVM network boot probe failed: %s", e)
            return False
    return True


_NETBOOT_PROBE_OK = re.compile(r"Configuring \(net0[^\n]*ok")


def probe_kvm(timeout: float = 20, *, iso: Path | None = None, netboot: bool = False) -> bool:
    """Return True if a guest really runs under KVM here; cached per process (and per iso).

    Without `iso`, SeaBIOS must print its banner under KVM within `timeout` seconds. With `iso`,
    that ISO must also boot under KVM for a few seconds without KVM failing. With `netboot`, the
    NIC's iPXE ROM must get an address by DHCP under KVM.
    """
    key: Path | str | None = "netboot" if netboot else (None if iso is None else iso.resolve())
    if key in _probe_cache:
        return _probe_cache[key]
    qemu = find_tool(QEMU)
    if qemu is None or not KVM_DEVICE.exists():
        ok = False
    elif netboot:
        ok = probe_kvm(timeout) and _probe_netboot(qemu, timeout)
    elif iso is None:
        ok = _probe_seabios(qemu, timeout)
    else:
        ok = probe_kvm(timeout) and _probe_iso(qemu, iso, timeout)
    log.debug("KVM probe%s: %s", f" ({key})" if key else "", "works" if ok else "fails")
    _probe_cache[key] = ok
    return ok


def choose_accel(requested: str, *, iso: Path | None = None, netboot: bool = False) -> Accel:
    """Resolve "auto" | "kvm" | "tcg" to the accelerator to use (probing with `iso`, or a
    network boot with `netboot`: see probe_kvm).

    Raises: SmokeTestError if "kvm" is requested and the probe fails.
    """
    if requested not in ACCEL_CHOICES:
        raise ValueError(f"accelerator must be one of {ACCEL_CHOICES}, not {requested!r}")
    if requested == "tcg":
        return "tcg"
    if probe_kvm(iso=iso, netboot=netboot):
        return "kvm"
    if requested == "kvm":
        raise SmokeTestError(
            "KVM was requested but a test guest does not run under KVM on this machine",
            hint="use --accel tcg (slower) or auto; check that /dev/kvm exists, is accessible "
            "to you, and that hardware virtualization is enabled",
        )
    log.info("KVM does not work here; using TCG (slower)")
    return "tcg"
