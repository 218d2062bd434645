"""The instance image stackops-check boots (distro_builder/instance_image.py): a 1 MiB raw disk
whose boot sector prints its marker line on COM1; shipped in the agent package. The boot itself
is tests/qemu/test_instance_image.py's."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from distro_builder.agent import INSTANCE_IMAGE, build_agent_deb
from distro_builder.instance_image import (
    IMAGE_SIZE,
    PLACEHOLDER_ID,
    boot_sector,
    build_instance_image,
    marker,
)


def test_a_1_mib_disk_with_a_boot_signature_and_one_marker() -> None:
    image = build_instance_image()
    assert len(image) == IMAGE_SIZE == 1024 * 1024
    assert image[510:512] == b"\x55\xaa"  # the BIOS boots only a sector that ends so
    assert image[446:510] == bytes(64)  # no partition table: nothing else reads the disk
    assert image[512:] == bytes(IMAGE_SIZE - 512)
    assert image.count(b"STACKOPS-CHECK-INSTANCE") == 1
    assert b"\r\nSTACKOPS-CHECK-INSTANCE 00000000 up\r\n\0" in image[:446]
    assert build_instance_image() == image  # reproducible: the agent .deb is too


def test_stackops_check_finds_the_placeholder_it_replaces() -> None:
    """agent/stackops-check's PLACEHOLDER and IMAGE are this image's line and installed path."""
    check = (Path(__file__).parents[2] / "agent/stackops-check").read_text()
    assert f"PLACEHOLDER = '{marker(PLACEHOLDER_ID)}'" in check
    assert f"IMAGE = '{INSTANCE_IMAGE}'" in check
    assert "PLACEHOLDER.replace('00000000', binascii.hexlify(os.urandom(4)))" in check


def test_the_id_goes_into_the_line_and_nothing_else_moves() -> None:
    a, b = boot_sector(), boot_sector("0123abcd")
    diff = [i for i in range(512) if a[i] != b[i]]
    assert len(diff) == 7 and diff == list(range(diff[0], diff[0] + 7)), diff  # '0' stays '0'
    assert b"STACKOPS-CHECK-INSTANCE 0123abcd up" in b
    # the id replaced as stackops-check does it (bytes for bytes) gives the same sector
    assert a.replace(b"00000000 up", b"0123abcd up") == b


@pytest.mark.parametrize("bad", ["", "0123abc", "0123ABCD", "0123abcg", "0123abcde"])
def test_a_bad_id_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="hex digits"):
        marker(bad)


def test_the_code_writes_com1_and_halts() -> None:
    """The few instructions that matter, as encoded (a guard against a careless edit; the boot
    test proves the rest)."""
    code = boot_sector()[:446]
    assert code.startswith(b"\xfa\x31\xc0\x8e\xd8\x8e\xd0\xbc\x00\x7c")  # cli; ds=ss=0; sp
    assert b"\xba\xf8\x03\x88\xe0\xee" in code  # mov dx, 0x3f8; mov al, ah; out dx, al
    assert b"\xec\xa8\x20\x74\xfb" in code  # wait for the transmitter: in; test 0x20; jz
    assert b"\xfa\xf4\xeb\xfc" in code  # cli; hlt; jmp back to cli
    # mov si, <message> points at the message's first byte (the image is loaded at 0x7c00)
    at = code.index(b"\xbe")
    msg = int.from_bytes(code[at + 1 : at + 3], "little") - 0x7C00
    assert code[msg:].startswith(b"\r\nSTACKOPS-CHECK-INSTANCE")


def test_the_agent_package_ships_it(data_dir: Path) -> None:
    _, deb = build_agent_deb(data_dir, version="0.1.0", mtime=0)
    start = deb.index(b"data.tar.gz")
    size = int(deb[start + 48 : start + 58].decode().strip())
    with tarfile.open(fileobj=io.BytesIO(deb[start + 60 : start + 60 + size]), mode="r:gz") as t:
        member = t.getmember("." + INSTANCE_IMAGE)
        assert member.mode == 0o644
        f = t.extractfile(member)
        assert f is not None and f.read() == build_instance_image()
    assert re.fullmatch(r"/usr/share/stackops/instance\.img", INSTANCE_IMAGE)
