"""The tiny instance the real-Nova libvirt tests launch: a kernel, an initramfs and a disk.

The kernel is the Debian 12 netboot installer's (package debian-installer-12-netboot-amd64, the
one the QEMU tests boot; its serial driver is built in); the initramfs holds /dev/console and a
static /init (realnova/tiny-init.c, compiled in the node's root) that prints
`STACKOPS-TINY-INSTANCE up cmdline: ...` on the console and stays up; the machine image is a
1 MiB raw disk (Nova's template makes it vda; nothing reads it). Under TCG on this machine the
marker is on the console about 6 s after libvirt starts the domain (measured).
"""

from __future__ import annotations

import gzip
import shutil
import stat
from pathlib import Path

import pytest

from tests.helpers import IN_CI
from tests.integration.realnova import DATA, RealNode

KERNEL = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux")
MARKER = "STACKOPS-TINY-INSTANCE up"


def _newc(entries: list[tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """A cpio archive in the kernel's newc format (the initramfs format)."""
    out = b""
    for ino, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", (0, 0))]):
        raw = name.encode() + b"\0"
        fields = (ino + 1, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0)
        head = ("070701" + "".join(f"{v:08x}" for v in fields)).encode() + raw
        out += head + b"\0" * (-len(head) % 4) + data + b"\0" * (-len(data) % 4)
    return out


def build(node: RealNode, folder: str = "/opt/tiny") -> str:
    """kernel, ramdisk and disk in `folder` of the node's root; returns the folder."""
    if not KERNEL.is_file():
        why = f"{KERNEL} is missing (package debian-installer-12-netboot-amd64)"
        pytest.fail(why) if IN_CI else pytest.skip(why)
    where = node.path(folder)
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "tiny-init.c", where / "init.c")
    node.chroot(["gcc", "-static", "-Os", "-s", "-o", f"{folder}/init", f"{folder}/init.c"])
    init = (where / "init").read_bytes()
    archive = _newc(
        [
            ("dev", stat.S_IFDIR | 0o755, b"", (0, 0)),
            ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
            ("proc", stat.S_IFDIR | 0o755, b"", (0, 0)),
            ("init", stat.S_IFREG | 0o755, init, (0, 0)),
        ]
    )
    (where / "ramdisk").write_bytes(gzip.compress(archive, mtime=0))
    shutil.copy(KERNEL, where / "kernel")
    (where / "disk").write_bytes(b"\0" * (1 << 20))
    for name in ("init", "init.c"):
        (where / name).unlink()
    shutil.copy(DATA / "launch-tiny", where / "launch-tiny")
    return folder
