"""media/initrd.py: the newc archive it writes, parsed here field by field, and its reader."""

from __future__ import annotations

import bz2
import gzip
import lzma
import stat

import pytest

from distro_builder.errors import IsoError
from distro_builder.media.initrd import (
    append_to_initrd,
    initrd_members,
    list_initrd,
    newc_archive,
    read_initrd_file,
)

PRESEED = b"d-i preseed/early_command string echo STACKOPS-PRESEED roles=compute\n"
BASE = newc_archive({"init": (b"#!/bin/sh\nexec /sbin/init\n", 0o755), "etc/issue": b"base\n"})


def _headers(archive: bytes) -> list[dict[str, object]]:
    """Parse newc headers independently of the module under test."""
    out = []
    pos = 0
    while True:
        assert archive[pos : pos + 6] == b"070701", f"bad magic at {pos}"
        assert pos % 4 == 0
        f = [int(archive[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize = f[11]
        name = archive[pos + 110 : pos + 110 + namesize - 1].decode()
        assert archive[pos + 110 + namesize - 1] == 0, "name not NUL-terminated"
        data_at = pos + 110 + namesize
        data_at += -data_at % 4
        data = archive[data_at : data_at + f[6]]
        out.append(
            dict(
                name=name,
                ino=f[0],
                mode=f[1],
                uid=f[2],
                gid=f[3],
                nlink=f[4],
                mtime=f[5],
                data=data,
            )
        )
        pos = data_at + f[6]
        pos += -pos % 4
        if name == "TRAILER!!!":
            assert not archive[pos:].strip(b"\0"), "junk after the trailer"
            assert len(archive) % 512 == 0
            return out


def test_newc_headers_sorted_parents_root_owned_fixed_mtime() -> None:
    arc = newc_archive(
        {"/usr/lib/x/run.sh": (b"#!/bin/sh\n", 0o755), "preseed.cfg": PRESEED}, mtime=1234
    )
    hs = _headers(arc)
    names = [h["name"] for h in hs]
    assert names == ["preseed.cfg", "usr", "usr/lib", "usr/lib/x", "usr/lib/x/run.sh", "TRAILER!!!"]
    by = {h["name"]: h for h in hs}
    assert by["preseed.cfg"]["mode"] == stat.S_IFREG | 0o644
    assert by["preseed.cfg"]["data"] == PRESEED
    assert by["usr/lib/x/run.sh"]["mode"] == stat.S_IFREG | 0o755
    assert by["usr/lib"]["mode"] == stat.S_IFDIR | 0o755
    for h in hs[:-1]:
        assert (h["uid"], h["gid"], h["mtime"]) == (0, 0, 1234)
    assert len({h["ino"] for h in hs[:-1]}) == len(hs) - 1, "inode numbers must differ"


def test_append_keeps_the_original_bytes_and_adds_one_gzip_member() -> None:
    base = gzip.compress(BASE, mtime=0)
    out = append_to_initrd(base, {"preseed.cfg": PRESEED})
    assert out.startswith(base)
    tail = out[len(base) :]
    assert tail[:2] == b"\x1f\x8b"
    assert [h["name"] for h in _headers(gzip.decompress(tail))] == ["preseed.cfg", "TRAILER!!!"]
    assert list_initrd(base) == ["etc", "etc/issue", "init"]
    assert list_initrd(out) == ["etc", "etc/issue", "init", "preseed.cfg"]


def test_reproducible_and_order_independent() -> None:
    a = append_to_initrd(BASE, {"b": b"2", "a/c": b"1"}, mtime=7)
    b = append_to_initrd(BASE, {"a/c": b"1", "b": b"2"}, mtime=7)
    assert a == b
    assert append_to_initrd(BASE, {"b": b"2"}, mtime=8) != append_to_initrd(BASE, {"b": b"2"})


def test_later_archive_wins_like_the_kernel() -> None:
    out = append_to_initrd(BASE, {"etc/issue": b"ours\n"})
    assert read_initrd_file(out, "etc/issue") == b"ours\n"
    assert read_initrd_file(BASE, "/etc/issue") == b"base\n"
    assert read_initrd_file(out, "etc") is None  # a directory has no content
    assert read_initrd_file(out, "missing") is None
    archives = {m.name: m.archive for m in initrd_members(out) if m.name == "init"}
    assert archives == {"init": 0}


@pytest.mark.parametrize(
    "compress",
    [
        lambda b: gzip.compress(b, mtime=0),
        lambda b: gzip.compress(b[:512], mtime=0) + gzip.compress(b[512:], mtime=0),
        lzma.compress,
        lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE),
        bz2.compress,
        lambda b: b,
    ],
    ids=["gzip", "gzip-split-in-two-members", "xz", "lzma", "bzip2", "plain"],
)
def test_lists_every_member_kind(compress) -> None:
    base = compress(BASE) if len(BASE) > 512 else compress(BASE + b"\0" * 512)
    # an uncompressed early archive (like microcode) before the compressed main one
    early = newc_archive({"kernel/x86/microcode/GenuineIntel.bin": b"\x01\x02"})
    out = append_to_initrd(early + base, {"preseed.cfg": PRESEED})
    names = list_initrd(out)
    assert names[0] == "kernel"
    assert "init" in names and "etc/issue" in names
    assert names[-1] == "preseed.cfg"
    assert read_initrd_file(out, "preseed.cfg") == PRESEED


def test_padding_zeros_between_members_are_skipped() -> None:
    out = append_to_initrd(gzip.compress(BASE) + b"\0" * 13, {"x": b"y"})
    assert list_initrd(out)[-1] == "x"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no files"),
        ({"../etc/passwd": b""}, "bad path"),
        ({"/": b""}, "bad path"),
        ({"a": b"", "/a": b""}, "given twice"),
        ({"a": b"", "a/b": b""}, "both a file and a directory"),
        ({"a": (b"", 0o100644)}, "not permission bits"),
        ({"a": "text"}, "expected bytes"),
    ],
)
def test_rejects_bad_input(files, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        append_to_initrd(BASE, files)


def test_rejects_bad_mtime() -> None:
    with pytest.raises(ValueError, match="mtime"):
        append_to_initrd(BASE, {"a": b""}, mtime=-1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04junk", "unknown data at offset 0"),
        (gzip.compress(BASE)[:-20], "truncated"),
        (BASE[:200], "truncated"),
        (gzip.compress(b"not a cpio archive"), "no newc cpio header"),
        (b"\0\0" + BASE, "not 4-byte aligned"),
    ],
)
def test_malformed_initrd_is_an_iso_error(data, message) -> None:
    with pytest.raises(IsoError, match=message):
        list_initrd(data)
