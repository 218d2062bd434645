"""Initramfs images: append files to an initrd without unpacking it, and list what one holds.

Linux unpacks every cpio archive in an initrd one after another into the same rootfs, each
archive plain or compressed, later names replacing earlier ones (kernel
Documentation/driver-api/early-userspace/buffer-format.rst). So a file is added to an installer's
initrd by appending one more gzip'd "newc" cpio archive: d-i's initrd-preseed reads `/preseed.cfg`
from the initramfs root. The archive is written here in pure Python (no cpio tool), byte for byte
reproducible: sorted names, parent directories first, root:root, one fixed mtime, gzip header
without name or time.

`list_initrd` walks every member (plain cpio, gzip, xz/lzma, bzip2) for diagnostics and tests.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import posixpath
import stat
import zlib
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from distro_builder.errors import IsoError

NEWC_MAGIC = b"070701"
NEWC_CRC_MAGIC = b"070702"
TRAILER = "TRAILER!!!"
_HEADER_LEN = 110  # 6 magic + 13 fields of 8 hex digits
_BLOCK = 512  # GNU cpio pads an archive to a multiple of this
_FIRST_INO = 0x5000  # arbitrary; nlink is 1 for files so the kernel never links by inode

FileSpec = bytes | tuple[bytes, int]
"""File content, or (content, permission bits) — default 0644."""


class InitrdMember(NamedTuple):
    """One cpio entry of an initrd, as listed by `initrd_members`."""

    name: str  # normalized: no leading '/' or './'
    mode: int  # full st_mode (type and permission bits)
    data: bytes  # file content, or the link target for symlinks; b"" for directories
    archive: int  # index of the cpio archive in the initrd the entry comes from (0-based)


def append_to_initrd(initrd: bytes, files: Mapping[str, FileSpec], *, mtime: int = 0) -> bytes:
    """`initrd` followed by a gzip'd newc cpio archive holding `files` (path -> content).

    Paths are relative to the initramfs root ('preseed.cfg', 'lib/foo/bar'; a leading '/' is
    ignored). Missing parent directories are added (0755). A file replaces one of the same name
    in the original initrd when the kernel unpacks it.
    """
    if not files:
        raise ValueError("append_to_initrd: no files given")
    return initrd + gzip.compress(newc_archive(files, mtime=mtime), compresslevel=9, mtime=0)


def newc_archive(files: Mapping[str, FileSpec], *, mtime: int = 0) -> bytes:
    """An uncompressed newc cpio archive with `files` and their parent directories."""
    if not 0 <= mtime <= 0xFFFFFFFF:
        raise ValueError(f"append_to_initrd: mtime {mtime} does not fit a cpio header")
    entries: dict[str, tuple[int, bytes]] = {}
    for raw_name, spec in files.items():
        name = _clean_name(raw_name)
        if isinstance(spec, bytes | bytearray):
            data, perm = spec, 0o644
        elif (
            isinstance(spec, tuple)
            and len(spec) == 2
            and isinstance(spec[0], bytes | bytearray)
            and isinstance(spec[1], int)
        ):
            data, perm = spec
        else:
            raise TypeError(f"append_to_initrd: {raw_name!r}: expected bytes or (bytes, mode)")
        if perm & ~0o7777:
            raise ValueError(
                f"append_to_initrd: {raw_name!r}: mode {perm:o} is not permission bits"
            )
        if name in entries:
            raise ValueError(f"append_to_initrd: {raw_name!r} given twice")
        entries[name] = (stat.S_IFREG | perm, bytes(data))
    for name in list(entries):
        parent = posixpath.dirname(name)
        while parent:
            kind = entries.setdefault(parent, (stat.S_IFDIR | 0o755, b""))
            if not stat.S_ISDIR(kind[0]):
                raise ValueError(f"append_to_initrd: {parent!r} is both a file and a directory")
            parent = posixpath.dirname(parent)
    out = bytearray()
    for ino, name in enumerate(sorted(entries), start=_FIRST_INO):
        mode, data = entries[name]
        nlink = 2 if stat.S_ISDIR(mode) else 1
        out += _entry(name, mode=mode, data=data, ino=ino, nlink=nlink, mtime=mtime)
    out += _entry(TRAILER, mode=0, data=b"", ino=0, nlink=1, mtime=0)
    out += b"\0" * (-len(out) % _BLOCK)
    return bytes(out)


def list_initrd(initrd: bytes) -> list[str]:
    """Every name in every cpio archive of `initrd`, in archive order (directories included)."""
    return [m.name for m in initrd_members(initrd)]


def read_initrd_file(initrd: bytes, name: str) -> bytes | None:
    """The content `name` has once the kernel unpacked `initrd` (the last archive wins), or None."""
    want = _clean_name(name)
    found: bytes | None = None
    for m in initrd_members(initrd):
        if m.name == want:
            found = m.data if stat.S_ISREG(m.mode) else None
    return found


def initrd_members(initrd: bytes) -> Iterator[InitrdMember]:
    """Walk all concatenated (and compressed) cpio archives; IsoError on a malformed image."""
    archive = 0
    pos = 0
    view = memoryview(initrd)
    while pos < len(initrd):
        if initrd[pos] == 0:  # padding between archives
            pos += 1
            continue
        head = bytes(view[pos : pos + 6])
        if head in (NEWC_MAGIC, NEWC_CRC_MAGIC):
            if pos % 4:
                raise IsoError(f"initrd: cpio archive at offset {pos} is not 4-byte aligned")
            end = yield from _walk_cpio(initrd, pos, archive, f"offset {pos}")
            archive += 1
            pos = end
            continue
        payload, used = _decompress(view[pos:], pos)
        inner = 0
        while inner < len(payload):
            if payload[inner] == 0:
                inner += 1
                continue
            where = f"offset {inner} of the compressed member at {pos}"
            if payload[inner : inner + 6] not in (NEWC_MAGIC, NEWC_CRC_MAGIC):
                raise IsoError(f"initrd: no newc cpio header at {where}")
            inner = yield from _walk_cpio(payload, inner, archive, where)
            archive += 1
        pos += used


def _walk_cpio(buf: bytes, pos: int, archive: int, where: str) -> Iterator[InitrdMember]:
    """Yield the members of the cpio archive at buf[pos:]; return the offset after its trailer."""
    while True:
        header = buf[pos : pos + _HEADER_LEN]
        if len(header) < _HEADER_LEN or header[:6] not in (NEWC_MAGIC, NEWC_CRC_MAGIC):
            raise IsoError(f"initrd: truncated or bad cpio header in the archive at {where}")
        try:
            fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        except ValueError as e:
            raise IsoError(f"initrd: bad cpio header field in the archive at {where}") from e
        mode, filesize, namesize = fields[1], fields[6], fields[11]
        name_start = pos + _HEADER_LEN
        name = buf[name_start : name_start + namesize - 1].decode("utf-8", "surrogateescape")
        data_start = _align4(name_start + namesize)
        data = bytes(buf[data_start : data_start + filesize])
        if namesize < 1 or len(data) < filesize:
            raise IsoError(f"initrd: cpio entry {name!r} is truncated in the archive at {where}")
        pos = _align4(data_start + filesize)
        if name == TRAILER:
            return pos
        clean = name.lstrip("/")
        while clean.startswith("./"):
            clean = clean[2:]
        if clean not in ("", "."):
            yield InitrdMember(clean, mode, data, archive)


def _decompress(data: memoryview, offset: int) -> tuple[bytes, int]:
    """Decompress the member starting at data[0]; return (payload, bytes of input it used)."""
    magic = bytes(data[:6])
    if magic.startswith(b"\x1f\x8b"):
        d = zlib.decompressobj(wbits=31)
        kind = "gzip"
    elif magic.startswith(b"\xfd7zXZ\x00"):
        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        kind = "xz"
    elif magic.startswith(b"\x5d\x00\x00"):
        d = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
        kind = "lzma"
    elif magic.startswith(b"BZh"):
        d = bz2.BZ2Decompressor()
        kind = "bzip2"
    else:
        raise IsoError(
            f"initrd: unknown data at offset {offset} (magic {magic.hex()})",
            hint="supported members: newc cpio, plain or gzip/xz/lzma/bzip2 compressed",
        )
    try:
        payload = d.decompress(data)
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as e:
        raise IsoError(f"initrd: damaged {kind} member at offset {offset}: {e}") from e
    if not d.eof:
        raise IsoError(f"initrd: {kind} member at offset {offset} is truncated")
    return payload, len(data) - len(d.unused_data)


def _entry(name: str, *, mode: int, data: bytes, ino: int, nlink: int, mtime: int) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, 0, 0, len(encoded), 0)
    header = NEWC_MAGIC + b"".join(b"%08X" % f for f in fields)
    out = header + encoded
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def _clean_name(name: str) -> str:
    parts = [p for p in name.strip().split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"append_to_initrd: bad path {name!r}")
    if any("\0" in p for p in parts):
        raise ValueError(f"append_to_initrd: NUL in path {name!r}")
    return "/".join(parts)


def _align4(n: int) -> int:
    return n + (-n % 4)
