"""Find and corrupt the structures of an ISO 9660 image in raw bytes (tests only, never pycdlib).

`IsoLayout` walks the primary volume's directory tree (and Joliet's), the Rock Ridge System Use
entries of every record (following CE continuation areas) and the El Torito boot catalog, and
remembers where each field sits in the image. The functions below it make the damaged bases of
issue 20 (a file flagged as directory, names that are not UTF-8, extents beyond the end, hard
links...), and `mutate` makes the fuzzer's seeded random ones.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SECTOR = 2048


@dataclass
class Susp:
    """One System Use entry: its signature, where it starts in the image, its length."""

    sig: bytes
    offset: int
    length: int


@dataclass
class Record:
    """One directory record of the primary (or Joliet) tree."""

    path: str  # Rock Ridge path (the ISO 9660 or Joliet name where there is no NM)
    offset: int  # of the record in the image
    length: int
    extent: int
    size: int
    flags: int
    ident: bytes
    susp: list[Susp] = field(default_factory=list)

    def entry(self, sig: bytes) -> Susp | None:
        return next((s for s in self.susp if s.sig == sig), None)

    @property
    def is_dir(self) -> bool:
        return bool(self.flags & 2)


class IsoLayout:
    """Where the structures of the image in `data` are."""

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data
        self.records: list[Record] = []
        self.joliet: list[Record] = []
        self.descriptors: list[int] = []  # offsets of the volume descriptors
        self.catalog: int | None = None  # offset of the El Torito boot catalog
        self.path_tables: list[tuple[int, int]] = []  # (offset, size)
        self.ce_areas: list[tuple[int, int]] = []  # (offset, length)
        pvd = 16 * SECTOR
        for n in range(16, 64):
            at = n * SECTOR
            kind = data[at]
            if data[at + 1 : at + 6] != b"CD001":
                break
            self.descriptors.append(at)
            if kind == 0 and data[at + 7 : at + 30].rstrip(b"\0") == b"EL TORITO SPECIFICATION":
                self.catalog = struct.unpack_from("<L", data, at + 71)[0] * SECTOR
            if kind == 255:
                break
        self.space_size = struct.unpack_from("<L", data, pvd + 80)[0]
        pt_size = struct.unpack_from("<L", data, pvd + 132)[0]
        for off, fmt in ((140, "<L"), (148, ">L")):
            self.path_tables.append((struct.unpack_from(fmt, data, pvd + off)[0] * SECTOR, pt_size))
        self._walk(pvd + 156, self.records, joliet=False)
        for at in self.descriptors:
            if data[at] == 2 and data[at + 88 : at + 91] in (b"%/@", b"%/C", b"%/E"):
                self._walk(at + 156, self.joliet, joliet=True)

    def record(self, path: str) -> Record:
        return next(r for r in self.records if r.path == path)

    def files(self) -> list[Record]:
        return [r for r in self.records if not r.is_dir and r.path != "/"]

    def _parse(self, at: int, parent: str, joliet: bool) -> Record:
        d = self.data
        length, fi_len = d[at], d[at + 32]
        ident = bytes(d[at + 33 : at + 33 + fi_len])
        rec = Record(
            path="",
            offset=at,
            length=length,
            extent=struct.unpack_from("<L", d, at + 2)[0],
            size=struct.unpack_from("<L", d, at + 10)[0],
            flags=d[at + 25],
            ident=ident,
        )
        if joliet:
            name = ident.decode("utf-16_be", "replace")
        else:
            name = ident.decode("ascii", "replace")
            su = at + 33 + fi_len + (1 - fi_len % 2)
            rec.susp = self._susp(su, at + length)
            nm = rec.entry(b"NM")
            if nm is not None:
                name = bytes(d[nm.offset + 5 : nm.offset + nm.length]).decode("utf-8", "replace")
        rec.path = (parent.rstrip("/") + "/" + name) if ident not in (b"\0", b"\1") else parent
        return rec

    def _susp(self, start: int, end: int, depth: int = 0) -> list[Susp]:
        d, out = self.data, []
        while start + 4 <= end and depth < 8:
            sig, length = bytes(d[start : start + 2]), d[start + 2]
            if length < 4 or start + length > end:
                break
            out.append(Susp(sig, start, length))
            if sig == b"CE":
                block, off, n = (
                    struct.unpack_from("<L", d, start + 4)[0],
                    *struct.unpack_from("<L", d, start + 12),
                    struct.unpack_from("<L", d, start + 20)[0],
                )
                area = block * SECTOR + off
                if area + n <= len(d):
                    self.ce_areas.append((area, n))
                    out += self._susp(area, area + n, depth + 1)
            if sig == b"ST":
                break
            start += length
        return out

    def _walk(self, root_at: int, into: list[Record], *, joliet: bool) -> None:
        root = self._parse(root_at, "/", joliet)
        root.path = "/"
        into.append(root)
        todo, seen = [root], {root.extent}
        while todo:
            folder = todo.pop()
            at, end = folder.extent * SECTOR, folder.extent * SECTOR + folder.size
            while at < end and at < len(self.data):
                if self.data[at] == 0:  # records do not cross sectors: to the next one
                    at = (at // SECTOR + 1) * SECTOR
                    continue
                rec = self._parse(at, folder.path, joliet)
                at += rec.length
                if rec.ident in (b"\0", b"\1"):
                    if rec.ident == b"\0" and folder is root and not joliet:
                        root.susp = rec.susp  # the root's SP/ER/CE are on its '.' record
                    continue
                into.append(rec)
                if rec.is_dir and rec.extent not in seen:
                    seen.add(rec.extent)
                    todo.append(rec)

    @property
    def metadata(self) -> list[tuple[int, int]]:
        """(offset, length) of every structure a reader parses: descriptors, path tables,
        directories, continuation areas, the boot catalog."""
        out = [(at, SECTOR) for at in self.descriptors]
        out += [(at, n) for at, n in self.path_tables if at + n <= len(self.data)]
        for recs in (self.records, self.joliet):
            out += [(r.offset, r.length) for r in recs if r.path != "/"]
        out += self.ce_areas
        if self.catalog is not None:
            out.append((self.catalog, 64))
        return out


def put32(data: bytearray, at: int, value: int) -> None:
    """A both-endian 32-bit field (little then big endian)."""
    struct.pack_into("<L", data, at, value & 0xFFFFFFFF)
    struct.pack_into(">L", data, at + 4, value & 0xFFFFFFFF)


# -- the damaged bases of issue 20 (each on a copy of the image's bytes) ---------------------


def set_flags(data: bytearray, rec: Record, flags: int) -> None:
    data[rec.offset + 25] = flags


def set_extent(data: bytearray, rec: Record, extent: int) -> None:
    put32(data, rec.offset + 2, extent)


def set_size(data: bytearray, rec: Record, size: int) -> None:
    put32(data, rec.offset + 10, size)


def set_interleave(data: bytearray, rec: Record, unit: int = 1, gap: int = 1) -> None:
    data[rec.offset + 26] = unit
    data[rec.offset + 27] = gap


def rename(data: bytearray, rec: Record, new: bytes) -> None:
    """Overwrite the Rock Ridge NM name of `rec` with `new`, of the same length."""
    nm = rec.entry(b"NM")
    assert nm is not None, rec.path
    old = bytes(data[nm.offset + 5 : nm.offset + nm.length])
    assert len(new) == len(old), (old, new)
    data[nm.offset + 5 : nm.offset + nm.length] = new


def set_mode(data: bytearray, rec: Record, mode: int) -> None:
    px = rec.entry(b"PX")
    assert px is not None, rec.path
    put32(data, px.offset + 4, mode)


def set_sl_last_continue(data: bytearray, rec: Record) -> None:
    """Set the CONTINUE flag on the last component of the SL entry of `rec`."""
    sl = rec.entry(b"SL")
    assert sl is not None, rec.path
    at, end, last = sl.offset + 5, sl.offset + sl.length, None
    while at + 2 <= end:
        last = at
        at += 2 + data[at + 1]
    assert last is not None
    data[last] |= 1


def hard_link(data: bytearray, rec: Record, to: Record) -> None:
    """Make `rec` a second name of `to`'s data (same extent and size), as mkisofs -cache-inodes."""
    set_extent(data, rec, to.extent)
    set_size(data, rec, to.size)


def write(data: bytes | bytearray, out: Path) -> Path:
    out.write_bytes(bytes(data))
    return out


# -- the fuzzer's mutations ----------------------------------------------------------------------

Mutation = Callable[[bytearray, IsoLayout, random.Random], str]


def _pick_record(layout: IsoLayout, rng: random.Random, joliet: bool = False) -> Record:
    recs = [r for r in (layout.joliet if joliet else layout.records) if r.path != "/"]
    return rng.choice(recs)


def _bit_flips(data: bytearray, layout: IsoLayout, rng: random.Random) -> str:
    done = []
    for _ in range(rng.randint(1, 4)):
        at, n = rng.choice(layout.metadata)
        pos = at + rng.randrange(max(1, n))
        bit = rng.randrange(8)
        data[pos] ^= 1 << bit
        done.append(f"{pos}.{bit}")
    return "bit flips at " + ",".join(done)


def _byte_set(data: bytearray, layout: IsoLayout, rng: random.Random) -> str:
    at, n = rng.choice(layout.metadata)
    pos = at + rng.randrange(max(1, n))
    value = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    data[pos] = value
    return f"byte {pos} = {value:#x}"


_INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]


def _record_field(data: bytearray, layout: IsoLayout, rng: random.Random) -> str:
    rec = _pick_record(layout, rng, joliet=bool(layout.joliet) and rng.random() < 0.2)
    what = rng.choice(["flags", "extent", "size", "interleave", "len_fi", "length", "ext_attr"])
    if what == "flags":
        value = rng.choice([0x02, 0x80, 0x04, 0x01, 0x08, 0x10, 0x82, rng.randrange(256)])
        data[rec.offset + 25] = rec.flags ^ value if rng.random() < 0.5 else value
    elif what == "extent":
        value = rng.choice(
            [layout.space_size, layout.space_size + 1, layout.space_size - 1, 0, 16, 17]
            + _INTERESTING
        )
        put32(data, rec.offset + 2, value)
    elif what == "size":
        value = rng.choice([0, 1, rec.size + 1, rec.size * 2 + SECTOR, *_INTERESTING])
        put32(data, rec.offset + 10, value)
    elif what == "interleave":
        data[rec.offset + 26 + rng.randrange(2)] = rng.choice([1, 2, 0xFF])
        value = data[rec.offset + 26]
    elif what == "len_fi":
        value = rng.choice([0, 1, 0xFF, rec.length])
        data[rec.offset + 32] = value
    elif what == "length":
        value = rng.choice([0, 1, 33, 34, 0xFF, rec.length - 1, rec.length + 1])
        data[rec.offset] = value & 0xFF
    else:
        value = rng.choice([1, 0xFF])
        data[rec.offset + 1] = value
    return f"{rec.path}: {what} = {value:#x}"


def _susp_field(data: bytearray, layout: IsoLayout, rng: random.Random) -> str:
    recs = [r for r in layout.records if r.susp]
    rec = rng.choice(recs)
    entry = rng.choice(rec.susp)
    what = rng.choice(["len", "version", "sig", "payload", "payload"])
    if what == "len":
        value = rng.choice([0, 1, 3, 4, entry.length + 1, entry.length - 1, 0xFF])
        data[entry.offset + 2] = value & 0xFF
    elif what == "version":
        value = rng.choice([0, 2, 0xFF])
        data[entry.offset + 3] = value
    elif what == "sig":
        value = 0
        sig = rng.choice([b"PX", b"SL", b"NM", b"CE", b"TF", b"PN", b"CL", b"RE", b"ST", b"XX"])
        data[entry.offset : entry.offset + 2] = sig
        return f"{rec.path}: {entry.sig.decode('latin1')} -> {sig.decode()}"
    else:
        if entry.length <= 4:
            return _susp_field(data, layout, rng)
        pos = entry.offset + 4 + rng.randrange(entry.length - 4)
        value = rng.choice([0, 1, 2, 4, 8, 0x2F, 0x0A, 0x80, 0xC3, 0xFF, rng.randrange(256)])
        data[pos] = value
    return f"{rec.path}: {entry.sig.decode('latin1')} {what} = {value:#x}"


def _rr_semantic(data: bytearray, layout: IsoLayout, rng: random.Random) -> str:
    """The issue's own cases, on a random record: modes, symlinks, names."""
    files = [r for r in layout.records if r.entry(b"PX") and r.path != "/"]
    rec = rng.choice(files)
    what = rng.choice(["mode", "name", "sl-continue", "hard-link"])
    if what == "mode":
        mode = rng.choice([0o040555, 0o120777, 0o100444, 0o010644, 0o060644, 0o140755, 0])
        set_mode(data, rec, mode)
        return f"{rec.path}: PX mode {mode:o}"
    if what == "name" and rec.entry(b"NM"):
        nm = rec.entry(b"NM")
        assert nm is not None
        n = nm.length - 5
        if n > 0:
            pos = nm.offset + 5 + rng.randrange(n)
            value = rng.choice([0x2F, 0x0A, 0x00, 0xFF, 0xC3, 0x2E])
            data[pos] = value
            return f"{rec.path}: NM byte {value:#x}"
    if what == "sl-continue":
        links = [r for r in layout.records if r.entry(b"SL")]
        if links:
            link = rng.choice(links)
            set_sl_last_continue(data, link)
            return f"{link.path}: SL continue on the last component"
    others = [r for r in layout.files() if r is not rec and r.size]
    if others and not rec.is_dir:
        to = rng.choice(others)
        hard_link(data, rec, to)
        return f"{rec.path}: hard link to {to.path}"
    return _record_field(data, layout, rng)


def _descriptor_field(data: bytearray, layout: IsoLayout, rng: random.Random) -> str:
    pvd = 16 * SECTOR
    what = rng.choice(["space_size", "block_size", "root_extent", "root_size", "path_table",
                       "set_size", "type"])  # fmt: skip
    if what == "space_size":
        value = rng.choice([0, 1, layout.space_size - 1, layout.space_size + 1, 0xFFFFFFFF])
        put32(data, pvd + 80, value)
    elif what == "block_size":
        value = rng.choice([0, 512, 1024, 4096, 0xFFFF])
        struct.pack_into("<H", data, pvd + 128, value)
        struct.pack_into(">H", data, pvd + 130, value)
    elif what == "root_extent":
        value = rng.choice([0, 16, layout.space_size, 0xFFFFFFFF])
        put32(data, pvd + 156 + 2, value)
    elif what == "root_size":
        value = rng.choice([0, 1, 2047, 0xFFFFFFFF])
        put32(data, pvd + 156 + 10, value)
    elif what == "path_table":
        value = rng.choice([0, 1, layout.space_size, 0xFFFFFFFF])
        struct.pack_into("<L", data, pvd + 140, value)
    elif what == "set_size":
        value = rng.choice([0, 2, 0xFFFF])
        struct.pack_into("<H", data, pvd + 120, value)
        struct.pack_into(">H", data, pvd + 122, value)
    else:
        at = rng.choice(layout.descriptors)
        value = rng.choice([0, 1, 2, 3, 4, 255])
        data[at] = value
        return f"descriptor at {at}: type = {value}"
    return f"PVD {what} = {value:#x}"


def _eltorito_field(data: bytearray, layout: IsoLayout, rng: random.Random) -> str:
    if layout.catalog is None:
        return _bit_flips(data, layout, rng)
    cat = layout.catalog
    entry = cat + 32
    what = rng.choice(["checksum", "key", "indicator", "media", "count", "rba", "platform",
                       "catalog_ptr"])  # fmt: skip
    if what == "checksum":
        data[cat + 28] ^= 0xFF
        value = data[cat + 28]
    elif what == "key":
        value = 0
        data[cat + 30] = 0
    elif what == "indicator":
        value = rng.choice([0, 0x44, 0xFF])
        data[entry] = value
    elif what == "media":
        value = rng.choice([1, 2, 3, 4, 5, 0xFF])
        data[entry + 1] = value
    elif what == "count":
        value = rng.choice([0, 1, 0xFFFF, 100000 & 0xFFFF])
        struct.pack_into("<H", data, entry + 6, value)
    elif what == "rba":
        value = rng.choice([0, 16, layout.space_size, layout.space_size + 100, 0xFFFFFFFF])
        struct.pack_into("<L", data, entry + 8, value)
    elif what == "platform":
        value = rng.choice([1, 2, 0xEF, 0x55])
        data[cat + 1] = value
    else:
        boot = next(at for at in layout.descriptors if data[at] == 0)
        value = rng.choice([0, 16, layout.space_size, 0xFFFFFFFF])
        struct.pack_into("<L", data, boot + 71, value)
    return f"El Torito {what} = {value:#x}"


MUTATIONS: list[tuple[str, Mutation, int]] = [
    ("bits", _bit_flips, 3),
    ("byte", _byte_set, 2),
    ("record", _record_field, 4),
    ("susp", _susp_field, 3),
    ("rr", _rr_semantic, 3),
    ("pvd", _descriptor_field, 1),
    ("eltorito", _eltorito_field, 1),
]


def mutate(data: bytearray, layout: IsoLayout, seed: int) -> str:
    """Apply one seeded mutation (sometimes two) to `data`; what was done."""
    rng = random.Random(seed)
    names = [m for m in MUTATIONS for _ in range(m[2])]
    done = []
    for _ in range(1 if rng.random() < 0.8 else 2):
        name, fn, _weight = rng.choice(names)
        done.append(f"{name}: {fn(data, layout, rng)}")
    return "; ".join(done)


# -- the named damaged bases of the CLI table (tests/integration/test_cli_errors.py) -------------


def _readme(layout: IsoLayout) -> Record:
    return layout.record("/README.diskdefines")


DAMAGED: dict[str, Callable[[bytearray, IsoLayout], None]] = {
    "file-flagged-dir": lambda d, lo: set_flags(d, _readme(lo), 2),
    "rr-name-not-utf8": lambda d, lo: rename(d, _readme(lo), b"README.diskdefine\xff"),
    "rr-name-slash": lambda d, lo: rename(d, _readme(lo), b"README/diskdefines"),
    "extent-beyond-end": lambda d, lo: set_extent(d, _readme(lo), lo.space_size + 10),
    "multi-extent": lambda d, lo: set_flags(d, _readme(lo), 0x80),
    "interleaved": lambda d, lo: set_interleave(d, _readme(lo)),
    "px-dir-on-file": lambda d, lo: set_mode(d, _readme(lo), 0o040555),
    "px-link-no-sl": lambda d, lo: set_mode(d, _readme(lo), 0o120777),
    "sl-continue-last": lambda d, lo: set_sl_last_continue(d, lo.record("/ubuntu")),
    # a Joliet name of an odd length (a fuzzer finding, seed 1292: build raised
    # UnicodeDecodeError where it looks up the Joliet folders)
    "joliet-name-odd": lambda d, lo: _shorten_ident(
        d, next(r for r in lo.joliet if r.path == "/isolinux/stdmenu.cfg")
    ),
    # not damage: two names of one file, as mkisofs -cache-inodes records hard links
    "hard-link": lambda d, lo: hard_link(
        d, lo.record("/preseed/cli.seed"), lo.record("/preseed/ubuntu-server.seed")
    ),
    # nor this: the boot folder (and its boot.cat) under another name (fuzzer seed 3093: the
    # catalog, no longer under isolinux/, went into md5sum.txt and raised KeyError)
    "boot-folder-renamed": lambda d, lo: rename(d, lo.record("/isolinux"), b"isolinu\n"),
    # not damage either: a newline in a Rock Ridge name
    "rr-name-newline": lambda d, lo: rename(d, _readme(lo), b"README\ndiskdefines"),
}


def _shorten_ident(data: bytearray, rec: Record) -> None:
    data[rec.offset + 32] -= 1


def damaged(base: Path, name: str, out: Path) -> Path:
    """The demo base at `base` with the damage `name` (DAMAGED), written to `out`."""
    data = bytearray(base.read_bytes())
    DAMAGED[name](data, IsoLayout(data))
    return write(data, out)
