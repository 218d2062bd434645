"""The pycdlib wrapper: open an ISO, read it by Rock Ridge path, overlay files, write it atomically.

The only module that imports pycdlib. Names for new records come from media/names.py so nothing
can vanish through a name clash. Traps handled here (../shared/reference/pycdlib-notes.md):
writing onto the opened file destroys it (refused), `add_isohybrid()` needs `force_consistency()`,
and reproducible output needs a pinned clock in UTC and a fixed `mbr_id`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import stat
import struct
import tempfile
import threading
import time
import types
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pycdlib
import pycdlib.eltorito as pycdlib_eltorito
import pycdlib.headervd as pycdlib_headervd
import pycdlib.inode as pycdlib_inode
import pycdlib.isohybrid as pycdlib_isohybrid
import pycdlib.pycdlibexception as pycdlib_errors

from distro_builder.buffers import page_buffer
from distro_builder.errors import IsoError, OutputError
from distro_builder.imagemodel import ElToritoEntry, EntryKind, FileEntry
from distro_builder.media import crosscheck, names
from distro_builder.media.filecopy import (
    COPY_BUFFER,
    RangeCopier,
    TrailingSha256,
    Writeback,
    copy_range,
    fileno,
)

log = logging.getLogger(__name__)

SECTOR = 2048
FILE_MODE = 0o100444
EXEC_MODE = 0o100555
DIR_MODE = 0o040555
LINK_MODE = 0o120777

_PLATFORMS = {0: "bios", 1: "ppc", 2: "mac", 0xEF: "efi"}
_EMULATIONS = {0: "none", 1: "floppy-1.2", 2: "floppy-1.44", 3: "floppy-2.88", 4: "hard-disk"}

Progress = Callable[[int, int], None]


def _parent(path: str) -> tuple[str, str]:
    parent, _, name = path.rstrip("/").rpartition("/")
    return parent or "/", name


def _join(parent: str, name: str) -> str:
    return ("" if parent == "/" else parent) + "/" + name


def _decode_ident(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace")


class IsoImage:
    """An ISO image opened read-only, changed in memory, written to a new file."""

    def __init__(self, path: Path) -> None:
        self._init(path)
        self._open()

    def _init(self, path: Path) -> None:
        self.path = Path(path)
        self._iso = _PyCdlib()
        self._fps: list[IO[bytes]] = []  # data sources that must stay open until write
        self._iso_paths: dict[str, str] = {}  # RR path -> ISO 9660 path (dirs)
        self._joliet_paths: dict[str, str | None] = {}  # RR path -> Joliet path (dirs)
        # What this session put on the image, checked on the written file: RR path -> kind, size
        self._changed: dict[str, tuple[EntryKind, int]] = {}
        self._iso_taken: dict[str, names.Folded] = {}  # RR dir -> its ISO 9660 names
        self._joliet_taken: dict[str, names.Folded] = {}  # Joliet dir -> its names

    # -- opening -------------------------------------------------------------------------------

    def _open(self) -> None:
        p = self.path
        if not p.exists():
            raise IsoError(f"{p}: no such file", hint="check the path of the ISO")
        if not p.is_file():
            raise IsoError(f"{p}: not a regular file", hint="give the path of an .iso file")
        size = p.stat().st_size
        if size < 17 * SECTOR:
            raise IsoError(
                f"{p}: not an ISO 9660 image ({size} bytes is too small for one)",
                hint="give the path of an Ubuntu server install ISO",
            )
        try:
            self._iso.open(str(p))
        except Exception as e:  # noqa: BLE001 - pycdlib's parser meets hostile bytes here
            # (KeyError, IndexError, UnicodeDecodeError, ... besides its own errors)
            reason = _reason(e)
            if _has_iso_signature(p):
                raise IsoError(
                    f"{p}: damaged ISO 9660 image: {reason}",
                    hint="the file may be truncated or corrupt; fetch it again, check SHA256SUMS",
                ) from e
            raise IsoError(
                f"{p}: not an ISO 9660 image ({reason})",
                hint="give the path of an Ubuntu server install ISO",
            ) from e
        pvd = self._iso.pvd
        expected = pvd.space_size * pvd.logical_block_size()
        if size < expected:
            self.close()
            raise IsoError(
                f"{p}: truncated ISO: the volume says {expected} bytes, the file has {size}",
                hint="the download or copy was cut short; fetch it again, check SHA256SUMS",
            )
        problems = _tree_problems(self._iso)
        if problems:
            self.close()
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise IsoError(
                f"{p}: damaged ISO 9660 image: {'; '.join(problems[:3])}{more}",
                hint="fetch the ISO again and check its SHA256SUMS; distro-builder does not "
                "carry over multi-extent or interleaved files, or records that Rock Ridge and "
                "ISO 9660 describe differently (`xorriso -indev ISO -find /` shows what "
                "another reader makes of it)",
            )
        try:
            self._opened()
        except Exception as e:  # noqa: BLE001 - the boot catalog is parsed here
            self.close()
            raise IsoError(
                f"{p}: damaged ISO 9660 image: {_reason(e)}",
                hint="the file may be truncated or corrupt; fetch it again, check SHA256SUMS",
            ) from e

    @classmethod
    def _read_back(cls, path: Path) -> IsoImage | str:
        """The image just written to `path`, opened; or why it does not read back."""
        self = cls.__new__(cls)
        self._init(path)
        try:
            self._iso.open(str(path))
            problems = _tree_problems(self._iso)
            if problems:
                self.close()
                return "; ".join(problems[:3])
            self._opened()
        except Exception as e:  # noqa: BLE001 - whatever pycdlib raises, it does not read back
            self.close()
            return _reason(e)
        return self

    def _opened(self) -> None:
        self._iso_paths["/"] = "/"
        self._joliet_paths["/"] = "/" if self._iso.has_joliet() else None
        if self._iso.isohybrid_mbr is not None:
            # isolinux's MBR without an EFI partition on a disc with a UEFI El Torito entry
            # (iPXE's ipxe.iso): pycdlib would put the UEFI image in a GPT it does not have.
            self._iso.isohybrid_mbr.__class__ = _BiosIsoHybrid
        _adopt_session_boot_info_tables(self.path, self._iso)
        self._system = _SystemArea.read(self.path, self._iso)
        self._system.keep_out_of_layout(self._iso)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._iso.close()
        for fp in self._fps:
            fp.close()
        self._fps.clear()

    def __enter__(self) -> IsoImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- facts ---------------------------------------------------------------------------------

    @property
    def volume_id(self) -> str:
        return _decode_ident(self._iso.pvd.volume_identifier).rstrip(" \x00")

    @property
    def interchange_level(self) -> int:
        return int(self._iso.interchange_level)

    @property
    def has_rock_ridge(self) -> bool:
        return bool(self._iso.has_rock_ridge())

    @property
    def has_joliet(self) -> bool:
        return bool(self._iso.has_joliet())

    @property
    def volume_size(self) -> int:
        return int(self._iso.pvd.space_size * self._iso.pvd.logical_block_size())

    def require_rock_ridge(self) -> None:
        if not self.has_rock_ridge:
            raise IsoError(
                f"{self.path}: the image has no Rock Ridge names",
                hint="the engine names files by their Rock Ridge paths; rebuild the image with "
                "them (xorriso -as mkisofs -r, genisoimage -r) or give one that has them",
            )

    def eltorito(self) -> list[ElToritoEntry]:
        """The boot catalog's entries (initial entry first); empty when the disc is not bootable."""
        cat = self._iso.eltorito_boot_catalog
        if cat is None:
            return []
        if self._iso._needs_reshuffle:  # extents below are compared: lay out pending changes
            self._call(self._iso.force_consistency)
        files = {}
        for entry in self.walk():
            if entry.kind is EntryKind.file:
                rec = self._record(entry.path)
                files[rec.extent_location()] = entry.path
        result = []
        sections = [(cat.validation_entry.platform_id, cat.initial_entry)]
        for sec in cat.sections:
            sections += [(sec.platform_id, e) for e in sec.section_entries]
        for platform_id, e in sections:
            bit = e.inode.boot_info_table is not None if e.inode is not None else False
            result.append(
                ElToritoEntry(
                    platform=_PLATFORMS.get(platform_id, hex(platform_id)),
                    emulation=_EMULATIONS.get(e.boot_media_type, str(e.boot_media_type)),
                    bootable=e.boot_indicator == 0x88,
                    load_segment=e.load_segment,
                    sector_count=e.sector_count,
                    load_rba=e.load_rba,
                    boot_file=files.get(e.load_rba),
                    boot_info_table=bit,
                )
            )
        return result

    def boot_catalog_path(self) -> str | None:
        """The Rock Ridge path of the El Torito boot catalog, None when it has none (or no
        name): pycdlib writes the catalog itself and cannot open it as a file (a base whose
        catalog is not under isolinux/ raised KeyError in md5sum.txt)."""
        cat = self._iso.eltorito_boot_catalog
        if cat is None:
            return None
        for rec in cat.dirrecords:
            if getattr(rec, "vd", None) is self._iso.pvd and rec.rock_ridge is not None:
                parts = []
                while rec is not None and not rec.is_root:
                    if rec.rock_ridge is None:
                        return None
                    parts.append(rec.rock_ridge.name().decode("utf-8", errors="replace"))
                    rec = rec.parent
                return "/" + "/".join(reversed(parts))
        return None

    def require_bootable(self) -> None:
        if self._iso.eltorito_boot_catalog is None:
            raise IsoError(
                f"{self.path}: no El Torito boot record: the image is not a bootable CD",
                hint="give a bootable install ISO (an Ubuntu server disc boots through isolinux)",
            )

    # -- reading -------------------------------------------------------------------------------

    def _record(self, path: str) -> Any:
        try:
            return self._iso.get_record(rr_path=path)
        except pycdlib_errors.PyCdlibException as e:
            raise KeyError(path) from e

    def lookup(self, path: str) -> FileEntry | None:
        """The entry at Rock Ridge `path`, or None."""
        try:
            rec = self._record(path)
        except KeyError:
            return None
        return self._entry(path, rec)

    def _entry(self, path: str, rec: Any) -> FileEntry:
        rr = rec.rock_ridge
        ident = _decode_ident(rec.file_identifier())
        if rr is not None and rr.is_symlink():
            target = rr.symlink_path().decode("utf-8", errors="replace")
            return FileEntry(path, EntryKind.symlink, 0, LINK_MODE, target, ident)
        mode = rr.get_file_mode() if rr is not None and rr.dr_entries.px_record else 0
        if rec.is_dir():
            return FileEntry(path, EntryKind.dir, 0, mode or DIR_MODE, None, ident)
        return FileEntry(
            path, EntryKind.file, rec.get_data_length(), mode or FILE_MODE, None, ident
        )

    def _children(self, path: str) -> list[tuple[str, Any]]:
        out = []
        for rec in self._iso.list_children(rr_path=path):
            if rec.is_dot() or rec.is_dotdot():
                continue
            if rec.rock_ridge is None:
                continue  # a record without RR name (e.g. RR_MOVED bookkeeping)
            name = rec.rock_ridge.name().decode("utf-8", errors="replace")
            # A relocated directory (RE) comes here in its parent's listing: pycdlib follows
            # the CL placeholder to it and leaves it out of the rr_moved listing itself.
            out.append((name, rec))
        out.sort(key=lambda t: t[0])
        return out

    def walk(self, top: str = "/") -> Iterator[FileEntry]:
        """Every entry below `top`, parents first, sorted by name; symlinks not followed."""
        stack = [top]
        while stack:
            d = stack.pop()
            subdirs = []
            for name, rec in self._children(d):
                p = _join(d, name)
                e = self._entry(p, rec)
                yield e
                if e.kind is EntryKind.dir:
                    subdirs.append(p)
            stack.extend(reversed(subdirs))

    def read(self, path: str) -> bytes:
        """The whole content of the file at Rock Ridge `path` (KeyError when absent)."""
        with self.open_file(path) as f:
            return f.read()

    def read_text(self, path: str) -> str | None:
        """The file as text, or None when it does not exist."""
        e = self.lookup(path)
        if e is None or e.kind is not EntryKind.file:
            return None
        return self.read(path).decode("utf-8", errors="replace")

    def open_stream(self, path: str) -> IO[bytes]:
        """An open read-only stream of the file at `path`; the caller closes it."""
        try:
            stream = self._iso.open_file_from_iso(rr_path=path)
        except pycdlib_errors.PyCdlibException as e:
            raise KeyError(path) from e
        stream.__enter__()  # PyCdlibIO sets up its data window on enter; close() undoes it
        return stream  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def open_file(self, path: str) -> Iterator[IO[bytes]]:
        """A read-only stream of the file at `path`, without loading it whole."""
        try:
            ctx = self._iso.open_file_from_iso(rr_path=path)
        except pycdlib_errors.PyCdlibException as e:
            raise KeyError(path) from e
        with ctx as f:
            yield f

    def extent(self, path: str) -> tuple[int, int]:
        """(byte offset in the image file, length) of the regular file at Rock Ridge `path` as
        the opened image stores it, for readers that stream it straight from the ISO
        (os.sendfile); KeyError when absent or not a regular file."""
        rec = self._record(path)
        rr = rec.rock_ridge
        if rec.is_dir() or (rr is not None and rr.is_symlink()):
            raise KeyError(path)
        block = self._iso.pvd.logical_block_size()
        return int(rec.extent_location()) * block, int(rec.get_data_length())

    def copy_to(self, path: str, dest: IO[bytes]) -> int:
        """Append the content of the file at Rock Ridge `path` to the open file `dest`, through
        a 1 MiB buffer (never held whole in memory); its size. KeyError when absent."""
        offset, length = self.extent(path)
        dest.flush()
        at = dest.tell()
        with open(self.path, "rb") as src:
            buffer = page_buffer(COPY_BUFFER)
            done = copy_range(src, offset, dest.fileno(), at, length, buffer)
        if done != length:
            raise IsoError(
                f"{self.path}: {path} ends after {done} of its {length} bytes (truncated image?)",
                hint="fetch the ISO again and check its SHA256SUMS",
            )
        dest.seek(at + done)
        return done

    # -- changing ------------------------------------------------------------------------------

    def _iso_dir(self, rr_dir: str) -> str:
        if rr_dir not in self._iso_paths:
            rec = self._record(rr_dir)
            self._iso_paths[rr_dir] = self._iso.full_path_from_dirrecord(rec)
        return self._iso_paths[rr_dir]

    def _joliet_dir(self, rr_dir: str) -> str | None:
        if rr_dir in self._joliet_paths:
            return self._joliet_paths[rr_dir]
        parent, name = _parent(rr_dir)
        jparent = self._joliet_dir(parent)
        found = None
        if jparent is not None:
            for rec in self._iso.list_children(joliet_path=jparent):
                if rec.is_dot() or rec.is_dotdot() or not rec.is_dir():
                    continue
                jname = rec.file_identifier().decode("utf-16_be")
                if jname == name or jname == names.joliet_name(name, (), directory=True):
                    found = _join(jparent, jname)
                    break
        self._joliet_paths[rr_dir] = found
        return found

    def _taken_iso(self, rr_dir: str) -> names.Folded:
        """The ISO 9660 names in `rr_dir` (upper-case, no version), kept up to date as names
        are added and removed here."""
        taken = self._iso_taken.get(rr_dir)
        if taken is None:
            taken = names.Folded()
            for rec in self._iso.list_children(iso_path=self._iso_dir(rr_dir)):
                if rec.is_dot() or rec.is_dotdot():
                    continue
                ident = _decode_ident(rec.file_identifier()).upper()
                taken.add(ident.split(";", 1)[0])
            self._iso_taken[rr_dir] = taken
        return taken

    def _taken_joliet(self, jdir: str) -> names.Folded:
        """The Joliet names in `jdir` (lower-case, no version), kept up to date likewise."""
        taken = self._joliet_taken.get(jdir)
        if taken is None:
            taken = names.Folded(
                rec.file_identifier().decode("utf-16_be").split(";", 1)[0].lower()
                for rec in self._iso.list_children(joliet_path=jdir)
                if not (rec.is_dot() or rec.is_dotdot())
            )
            self._joliet_taken[jdir] = taken
        return taken

    def _took(self, rr_dir: str, iso_name: str, jparent: str | None, jpath: str | None) -> None:
        self._taken_iso(rr_dir).add(iso_name.split(";", 1)[0].upper())
        if jparent is not None and jpath is not None:
            self._taken_joliet(jparent).add(_parent(jpath)[1].split(";", 1)[0].lower())

    def make_dirs(self, path: str) -> None:
        """Create directory `path` and any missing parents (a file in the way is an error)."""
        if path == "/":
            return
        existing = self.lookup(path)
        if existing is not None:
            if existing.kind is not EntryKind.dir:
                raise IsoError(
                    f"cannot create directory {path}: a {existing.kind} has that name on the image",
                    hint="rename the directory in the overlay",
                )
            return
        parent, name = _parent(path)
        self.make_dirs(parent)
        iso_name = names.iso_dir_name(name, self.interchange_level, self._taken_iso(parent))
        iso_path = _join(self._iso_dir(parent), iso_name)
        jparent = self._joliet_dir(parent) if self.has_joliet else None
        jpath = None
        if jparent is not None:
            jpath = _join(
                jparent, names.joliet_name(name, self._taken_joliet(jparent), directory=True)
            )
        self._call(
            self._iso.add_directory,
            iso_path=iso_path,
            rr_name=name,
            joliet_path=jpath,
            file_mode=DIR_MODE,
        )
        self._took(parent, iso_name, jparent, jpath)
        self._iso_paths[path] = iso_path
        self._joliet_paths[path] = jpath
        self._changed[path] = (EntryKind.dir, 0)

    def _require_boot_image_fits(self, path: str, rec: Any, data: bytes | Path) -> None:
        """An El Torito boot image is never replaced by one the BIOS cannot load: empty (the
        entry would load whatever is laid out at its block next), or shorter than the 64
        bytes the boot-info table is written into."""
        if rec.inode is None:
            return
        entry = next((e for _, e in _boot_entries(self._iso) if e.inode is rec.inode), None)
        if entry is None:
            return
        size = len(data) if isinstance(data, bytes) else os.stat(data).st_size
        need = 64 if rec.inode.boot_info_table is not None else 1
        if size < need:
            raise IsoError(
                f"{path}: the disc boots from it (an El Torito boot image) and the new one is "
                f"{size} bytes" + (", shorter than its 64-byte boot-info table" if size else ""),
                hint=f"give the real boot image as {path} in the overlay, or leave it out",
            )

    def _other_names(self, rec: Any) -> list[Any]:
        """The other ISO 9660 records that share the data of `rec` (hard links)."""
        ino = rec.inode
        if ino is None:
            return []
        return [r for r, in_pvd in ino.linked_records if in_pvd and r is not rec]

    def add_file(
        self, path: str, data: bytes | Path, *, executable: bool = False, mode: int | None = None
    ) -> None:
        """Add a new file at Rock Ridge `path` (parents are created); `mode` (the Rock Ridge
        one) is 0444, or 0555 when `executable`, unless given."""
        parent, name = _parent(path)
        self.make_dirs(parent)
        source, length = self._source(data)
        iso_name = names.iso_file_name(name, self.interchange_level, self._taken_iso(parent))
        jparent = self._joliet_dir(parent) if self.has_joliet else None
        jpath = None
        if jparent is not None:
            jpath = _join(jparent, names.joliet_name(name, self._taken_joliet(jparent)))
        adds: list[Any] = (
            [self._iso.add_file, source] if isinstance(source, str)
            else [self._iso.add_fp, source, length]
        )  # fmt: skip
        self._call(
            *adds,
            iso_path=_join(self._iso_dir(parent), iso_name),
            rr_name=name,
            joliet_path=jpath,
            file_mode=mode if mode is not None else EXEC_MODE if executable else FILE_MODE,
        )
        self._took(parent, iso_name, jparent, jpath)
        self._changed[path] = (EntryKind.file, length)

    def replace_file(self, path: str, data: bytes | Path) -> None:
        """Replace the content of the existing file at `path`; its names and mode stay.

        A name that shares its data with another (a hard link, as mkisofs -cache-inodes
        records them) is taken off that data and given its own: the other name keeps what it
        had, where pycdlib would have changed the content of both."""
        rec = self._record(path)
        self._require_boot_image_fits(path, rec, data)
        if self._other_names(rec):
            rr = rec.rock_ridge
            mode = _rr_mode(rr) if rr is not None else None
            self.remove(path)
            self.add_file(path, data, mode=mode)
            return
        source, length = self._source(data)
        if isinstance(source, str):
            self._call(self._iso.update_file_contents, source, rr_path=path)
        else:
            self._call(self._iso.update_file_contents_fp, source, length, rr_path=path)
        self._changed[path] = (EntryKind.file, length)

    def lay_out_last(self, paths: Sequence[str]) -> None:
        """Lay the files at `paths` out after every other file, in this order, so that their
        content can come last (`refill`, from `write`'s `before_late`): all the image before
        them is written, and hashed, first. Their size must be final. Boot images are refused:
        their place is in the El Torito catalog, laid out with it."""
        inodes = []
        boot = {id(e.inode) for _, e in _boot_entries(self._iso)}
        for path in paths:
            ino = self._record(path).inode
            if ino is None or id(ino) in boot:
                raise IsoError(f"{path}: not a file that can be laid out last")
            inodes.append(ino)
        self._iso.late = inodes
        self._call(self._iso._reshuffle_extents)  # now: write() keeps this layout

    def refill(self, path: str, data: bytes) -> None:
        """Give the file at `path`, laid out already, new content of the same length: nothing
        moves (unlike replace_file, which lays the image out again). For `lay_out_last` files
        while the image is written."""
        ino = self._record(path).inode
        if ino is None or ino.get_data_length() != len(data):
            raise IsoError(
                f"{path}: {len(data)} bytes cannot take the place of "
                f"{ino.get_data_length() if ino is not None else 0}",
                hint="this is a bug in distro-builder: run with --debug and report it",
            )
        fp = io.BytesIO(data)
        self._fps.append(fp)
        ino.update_fp(fp, len(data))

    def add_symlink(self, path: str, target: str) -> None:
        """Add a Rock Ridge symlink `path` -> `target` (Joliet has no symlinks)."""
        parent, name = _parent(path)
        self.make_dirs(parent)
        iso_name = names.iso_file_name(name, self.interchange_level, self._taken_iso(parent))
        self._call(
            self._iso.add_symlink,
            symlink_path=_join(self._iso_dir(parent), iso_name),
            rr_symlink_name=name,
            rr_path=target,
        )
        self._took(parent, iso_name, None, None)
        self._changed[path] = (EntryKind.symlink, 0)

    def remove(self, path: str) -> None:
        """Remove the file or symlink at `path`: its ISO 9660 record and its Joliet twin. The
        data goes with them unless another name (a hard link) still has it."""
        rec = self._record(path)
        iso_path = self._iso.full_path_from_dirrecord(rec)
        parent, name = _parent(path)
        jparent = self._joliet_dir(parent) if self.has_joliet else None
        symlink = rec.rock_ridge is not None and rec.rock_ridge.is_symlink()
        jpath = None
        if jparent is not None and not symlink:
            jpath = self._joliet_twin(jparent, name, rec)
        if self._other_names(rec):
            # pycdlib's rm_file removes every name of the data: only this one goes
            self._call(self._iso.rm_hard_link, iso_path=iso_path)
            if jpath is not None:
                self._call(self._iso.rm_hard_link, joliet_path=jpath)
        else:
            self._call(self._iso.rm_file, iso_path=iso_path, rr_name=name)
            if jpath is not None and rec.inode is None:
                # An empty file has no data to link its names: pycdlib leaves the Joliet one
                with contextlib.suppress(IsoError):
                    self._call(self._iso.rm_file, joliet_path=jpath)
        self._changed.pop(path, None)
        ident = _decode_ident(rec.file_identifier()).split(";", 1)[0].upper()
        self._taken_iso(parent).discard(ident)
        if jparent is not None and jpath is not None:
            self._taken_joliet(jparent).discard(_parent(jpath)[1].split(";", 1)[0].lower())

    def _joliet_twin(self, jparent: str, name: str, rec: Any) -> str | None:
        """The Joliet path of the file whose ISO 9660 record is `rec` (Rock Ridge `name`): the
        record in `jparent` with the same data, or for an empty file (no data) or several hard
        links in one folder, the one with the Joliet form of its name."""
        ours = {name, names.joliet_name(name, ())}
        ranked = []
        for jrec in self._iso.list_children(joliet_path=jparent):
            if jrec.is_dot() or jrec.is_dotdot() or jrec.is_dir():
                continue
            jname = jrec.file_identifier().decode("utf-16_be")
            match = jname.split(";", 1)[0] in ours
            same = rec.inode is not None and jrec.inode is rec.inode
            if same or match:
                ranked.append((not (same and match), not match, jname))
        if ranked:
            return _join(jparent, min(ranked)[2])
        return None

    def _source(self, data: bytes | Path) -> tuple[IO[bytes] | str, int]:
        """What pycdlib reads the new content from: bytes in memory, or a file's name (pycdlib
        opens it when it copies it, and closes it: an overlay of 20,000 files held 20,000
        descriptors open until the write, and died at the 1,024 of `ulimit -n`)."""
        if isinstance(data, bytes):
            fp = io.BytesIO(data)
            self._fps.append(fp)
            return fp, len(data)
        return os.fspath(data), os.stat(data).st_size

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except pycdlib_errors.PyCdlibException as e:
            raise IsoError(
                f"{self.path}: cannot change the image: {e}",
                hint=f"the base may be damaged where pycdlib does not check it (`xorriso -indev "
                f"{self.path} -find /` tells); if it reads there, this is a bug in "
                "distro-builder: run with --debug and report it",
            ) from e

    # -- writing -------------------------------------------------------------------------------

    def write(
        self,
        out: Path,
        *,
        hybrid: bool = False,
        source_date_epoch: int | None = None,
        progress: Progress | None = None,
        digests: dict[str, str] | None = None,
        verify: Callable[[IsoImage], None] | None = None,
        before_late: Callable[[], None] | None = None,
    ) -> int:
        """Write the image to `out` through a temporary file beside it; returns the size.

        A failure or Ctrl-C leaves `out` as it was and no temporary file behind. The written
        file is re-opened and every name this session put on it looked up before it is renamed
        into place: a damaged image is an IsoError, never a success. `verify` gets that
        re-opened image too, before the rename (an exception from it keeps `out` as it was).
        Given a `digests` dict, the image's SHA-256 is put in it (`digests["sha256"]`), hashed
        while it is written. `before_late` is called once, before the files laid out last
        (`lay_out_last`) are written, to `refill` them.
        """
        out = Path(out)
        check_output_path(out, self.path)
        self._system.require_supported(self.path)
        if hybrid and (self._system.tail >= 0 or self._system.mbr is not None):
            raise IsoError(
                f"{self.path}: the base is a hybrid disk image already (its own MBR, a GPT or "
                "partitions after its ISO 9660 data); --hybrid would put isolinux's MBR in their "
                "place and drop them",
                hint="leave --hybrid out: the output keeps the base's MBR, GPT and partitions",
            )
        if hybrid:
            self._call(self._make_hybrid, source_date_epoch)
        # --hybrid gives the disc pycdlib's isolinux MBR in place of the base's
        system = self._system if self._iso.isohybrid_mbr is None else None
        self._call(self._settle_root_er)
        size = self._system.plan(self._iso) if system is not None else self.volume_size
        try:
            fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
        except OSError as e:
            raise OutputError(
                f"{out.parent}: cannot write the output there: {e.strerror}",
                hint="choose a directory you can write to",
            ) from e
        tmp = Path(tmp_name)
        try:
            # At its final size from the start: a file that ends early for a damaged one
            # ("ISOs in the wild lie about sizes") would end the image short. The holes are
            # the zeros pycdlib pads with; the image ends where it did.
            os.ftruncate(fd, size)
            with os.fdopen(fd, "wb") as fh:
                cb = (lambda done, total, _opaque: progress(done, total)) if progress else None
                hasher = TrailingSha256(tmp) if digests is not None else None
                writeback = Writeback(fh.fileno())
                synced: _Background | None = None
                readers: _Background | None = None
                try:
                    try:
                        with (
                            pinned_clock(source_date_epoch),
                            _file_copies(self._iso, hasher, system, writeback, before_late),
                        ):
                            self._call(self._iso.write_fp, fh, blocksize=1 << 20, progress_cb=cb)
                        fh.flush()
                        if system is not None:
                            system.write_tail(fh.fileno(), self.path)
                        # The flush to disk (its writeback started during the copy; fsync lets
                        # go of the GIL), the end of the hashing (its thread trails the copy)
                        # and the read-back check run side by side; all must succeed before the
                        # rename. The check waits for the write: begun during the copy, it took
                        # CPU from the copy threads on two cores (remaster 0.72 s against
                        # 0.61 s, medians of 7, 2026-12-07). xorriso and isoinfo read it in
                        # processes of their own meanwhile.
                        synced = _Background(os.fsync, fh.fileno())
                        readers = _Background(crosscheck.read_problems, tmp)
                        self._check_written(out, self._read_back_problems(tmp), verify)
                    finally:
                        digest = hasher.finish() if hasher is not None else None
                    if digests is not None and digest is not None:
                        digests["sha256"] = digest
                    self._check_other_readers(out, readers.result())
                finally:
                    writeback.finish()  # its thread's calls use the descriptor
                    if readers is not None:  # no reader outlives the write, on any path
                        with contextlib.suppress(BaseException):
                            readers.result()
                    if synced is not None:  # joined before the file is closed, on any path
                        synced.result()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return out.stat().st_size

    def _settle_root_er(self) -> None:
        """Point the root's CE record at the block its Rock Ridge 'ER' area is really written to.

        pycdlib gives the root's 'ER' area a sector of its own at layout time and points the
        root's CE record there, but an added name too long for its directory record (117 bytes
        and up here) gets its continuation area in the free end of the same block; that block is
        then laid out with the other records' areas and written elsewhere, the ER with it, and the
        root's CE record points at an empty sector: xorriso says "Damaged RR/SUSP information",
        pycdlib "Invalid RR version 0". Following the block keeps the two together.
        """
        self._iso.force_consistency()
        dot = self._iso.pvd.root_directory_record().children[0]
        rr = dot.rock_ridge
        if rr is None or rr.dr_entries.ce_record is None or not rr.ce_areas:
            return
        extent = rr.ce_areas[0].block.extent_location()
        if extent >= 0 and extent != rr.dr_entries.ce_record.bl_cont_area:
            rr.dr_entries.ce_record.update_extent(extent)

    def _read_back_problems(self, written: Path) -> tuple[IsoImage | None, list[str]]:
        """Re-open `written` with pycdlib and look up every name this session added or replaced:
        (the re-opened image or None, what is wrong). Runs beside the output's fsync."""
        check = IsoImage._read_back(written)
        if isinstance(check, str):
            return None, [f"it does not read back: {check}"]
        problems = []
        try:
            for path, (kind, size) in sorted(self._changed.items()):
                problem = _check_record(check._iso, path, kind, size)
                if problem:
                    problems.append(f"{path}: {problem}")
        except BaseException:
            check.close()
            raise
        return check, problems

    def _check_written(
        self,
        out: Path,
        read_back: tuple[IsoImage | None, list[str]],
        verify: Callable[[IsoImage], None] | None = None,
    ) -> None:
        """Raise unless the re-opened image (_read_back_problems) has every name right; then
        `verify` (the caller's own checks) gets it. The image is closed in any case.

        Raises:
            IsoError when the image does not read back or a name is missing or wrong.
        """
        check, problems = read_back
        if check is not None:
            with check:
                if not problems and verify is not None:
                    verify(check)
        if not problems:
            return
        long_names = sorted(
            p for p in self._changed if len(_parent(p)[1].encode()) >= _RR_NAME_INLINE_MAX
        )
        also = ""
        if long_names:
            more = " ..." if len(long_names) > 5 else ""
            also = (
                f" (names of {_RR_NAME_INLINE_MAX} bytes or more, which need a Rock Ridge "
                f"continuation area: {', '.join(long_names[:5])}{more})"
            )
        shown = "; ".join(problems[:5]) + (
            f"; ... {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise IsoError(
            f"{out}: the image written is damaged, so it was not kept: {shown}{also}",
            hint="this is a bug in distro-builder or pycdlib; run with --debug and report it "
            "(shortening the names listed works around it)",
        )

    def _check_other_readers(self, out: Path, problems: list[str]) -> None:
        """Raise unless xorriso and isoinfo read the image just written (`problems`, from
        media/crosscheck.py): pycdlib reading back what it wrote is no proof that anyone else
        can."""
        if problems:
            raise IsoError(
                f"{out}: the image written does not read in other ISO 9660 readers, so it was "
                f"not kept: {'; '.join(problems)}",
                hint=f"the base {self.path} may hold a structure pycdlib writes back wrongly "
                f"(`xorriso -indev {self.path} -find /` tells whether the base itself reads); "
                "run with --debug and report it",
            )

    def _make_hybrid(self, source_date_epoch: int | None) -> None:
        mbr_id = None
        if source_date_epoch is not None:
            digest = hashlib.sha256(f"{self.volume_id}\0{source_date_epoch}".encode()).digest()
            mbr_id = int.from_bytes(digest[:4], "little")
        try:
            self._iso.add_isohybrid(mbr_id=mbr_id)
        except pycdlib_errors.PyCdlibInvalidInput as e:
            raise IsoError(
                f"{self.path}: cannot make a hybrid image: {e}",
                hint="the boot image must be isolinux.bin (syslinux >= 3.72), 4-sector load",
            ) from e
        # Without this the MBR gets boot LBA 0 when isohybrid is the only change (pycdlib-notes §4).
        self._iso.force_consistency()


# -- the file-data pass --------------------------------------------------------------------------
# pycdlib copies every file's bytes through Python objects: a new bytes per `blocksize` read, a
# seek and a buffered write per block. The engine replaces that one step
# (PyCdlib._output_file_data, a generator per inode, pycdlib 1.20-1.22) with media/filecopy.py:
# pread/pwrite from the base or overlay file at the inode's offset to the output at its new
# extent, on two worker threads while pycdlib goes on to the next file, the files in volume
# order, the writeback started as they become final (the measurements are in filecopy.py).
# Everything else (layout, directory records, El Torito catalog, boot-info tables, isohybrid
# MBR/GPT) is still pycdlib's.

# Worker threads of the file-data copy: two keep two cores busy (pread/pwrite let go of the GIL);
# more only share the same two cores and the memory bus. One on a single core: pycdlib's own
# work still runs beside it.
_COPY_WORKERS = min(2, os.cpu_count() or 1)


class _PyCdlib(pycdlib.PyCdlib):
    """PyCdlib whose file-data step can be replaced for one write (`data_writer`)."""

    # PyCdlib has __slots__; this subclass adds a __dict__ for the one attribute below.
    data_writer: Callable[[Any, int, Any], Iterator[int]] | None = None
    # The El Torito images in the base's appended partitions (their inodes): copied with the
    # partitions after the volume (_SystemArea.write_tail), never laid out inside it.
    outside: set[int] = set()
    # Files laid out after every other file (their inodes, in this order): their content may
    # come last, while the rest of the image is written and hashed (IsoImage.lay_out_last).
    late: list[Any] = []
    _skipped: set[int] = set()  # during a layout: the late inodes, placed after the rest

    def _set_inode(self, ino: Any, current_extent: int, part_start: int) -> int:
        if id(ino) in self.outside or id(ino) in self._skipped:
            return current_extent
        return super()._set_inode(ino, current_extent, part_start)  # type: ignore[no-any-return]

    def _reshuffle_extents(self) -> None:
        # not with UDF, whose last anchor goes right after the last file
        late = {id(i) for i in self.late} if self.late and not self.udf_anchors else set()
        self._skipped = late
        try:
            super()._reshuffle_extents()
        finally:
            self._skipped = set()
        if not late:
            return
        block = self.logical_block_size
        end = 0
        for ino in self.inodes:
            if id(ino) not in late and id(ino) not in self.outside and ino.get_data_length():
                end = max(end, ino.extent_location() + -(-ino.get_data_length() // block))
        for ino in self.late:
            end = super()._set_inode(ino, end, 0)
        if end > self.pvd.space_size:
            raise pycdlib_errors.PyCdlibInternalError(
                f"the files laid out last end at block {end}, past the volume's "
                f"{self.pvd.space_size}"
            )

    def _output_file_data(self, outfp: Any, blocksize: int, ino: Any) -> Iterator[int]:
        if id(ino) in self.outside:
            return iter(())
        if self.data_writer is None:
            return super()._output_file_data(outfp, blocksize, ino)  # type: ignore[misc]
        return self.data_writer(outfp, blocksize, ino)

    # pycdlib lays the whole image out again (_reshuffle_extents) before a look-up that follows
    # a change; name look-ups do not need extents, and an overlay interleaves the two, so the
    # layout waits for the write (it was 16 layouts, 0.12 s, for the benchmark's overlay).

    @contextlib.contextmanager
    def _layout_later(self) -> Iterator[None]:
        pending = self._needs_reshuffle
        self._needs_reshuffle = False
        try:
            yield
        finally:
            self._needs_reshuffle = self._needs_reshuffle or pending

    def get_record(self, **kwargs: Any) -> Any:
        with self._layout_later():
            return super().get_record(**kwargs)

    def list_children(self, **kwargs: Any) -> Any:
        with self._layout_later():  # pycdlib's is a generator: consume it inside
            return list(super().list_children(**kwargs))


@contextlib.contextmanager
def _file_copies(
    iso: _PyCdlib,
    hasher: TrailingSha256 | None,
    system: _SystemArea | None = None,
    writeback: Writeback | None = None,
    before_late: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Within the block, `iso.write_fp` copies file data as described above, and
    the base's own MBR (`system`, one pycdlib does not rebuild) is carried over with its boot
    image addresses and partition sizes moved to the new layout. After each file,
    `writeback` and `hasher` are told how far the output is final: below the
    lowest offset still to be written (by pycdlib later, or by a copy still running). Every
    copy has ended when the block does; an error in one is raised there. `before_late` is
    called before the first of the files laid out last (`iso.late`), once the copies before
    it have ended and the hasher may go up to it."""
    if not callable(getattr(pycdlib.PyCdlib, "_output_file_data", None)):  # another pycdlib
        if system is not None and system.changes_output:
            raise IsoError(
                "this pycdlib has no per-file write step: the base's MBR cannot be carried over",
                hint="install the pycdlib version pinned in pyproject.toml",
            )
        if before_late is not None:  # nothing is written before it is done
            before_late()
        yield
        return
    late = {id(ino) for ino in iso.late} if before_late is not None else set()
    late_begun: list[bool] = []
    block = iso.logical_block_size
    # pycdlib writes file data in the order its inodes were found or added, so an added file
    # laid out early in the volume came last: written in volume order, the hasher trails the
    # copy instead of waiting for the end, and the writeback goes front to back. The image
    # is laid out (write() settles it first); the order changes no byte.
    if not iso._needs_reshuffle:
        # (an empty file's inode has no extent: pycdlib writes no data for it)
        iso.inodes.sort(key=lambda ino: ino.extent_location() if ino.get_data_length() else -1)
    # The inodes in pycdlib's write order, and for each the lowest offset still to be written
    # after it: nothing below it changes any more once the copies before it have ended. Known
    # once write_fp has laid the image out, at its first file. The El Torito boot images are
    # copied in this thread: their boot-info table and GRUB 2's boot info are patched after.
    lowest_after: list[int] = []
    position: dict[int, int] = {}
    boot_images: set[int] = set()
    started: list[bool] = []
    buffer = page_buffer(COPY_BUFFER)
    copier: RangeCopier | None = None

    def plan() -> None:
        todo = [
            ino for ino in iso.inodes if ino.get_data_length() > 0 and id(ino) not in iso.outside
        ]
        lowest_after.extend([-1] * len(todo))
        low = -1
        for i in range(len(todo) - 1, -1, -1):
            lowest_after[i] = low
            start = todo[i].extent_location() * block
            low = start if low < 0 else min(low, start)
        position.update({id(ino): i for i, ino in enumerate(todo)})
        boot_images.update(id(e.inode) for _, e in _boot_entries(iso) if e.inode is not None)

    def output_file_data(outfp: Any, blocksize: int, ino: Any) -> Iterator[int]:
        nonlocal copier
        first = not position and not started
        if not position:
            plan()
        start = ino.extent_location() * block
        outfp.flush()  # pycdlib's buffered metadata first; then the writes at offsets
        out_fd = outfp.fileno()
        if first:
            started.append(True)
            if system is not None:  # before the hasher reads sector 0 (at the first advance)
                system.write_mbr(out_fd, iso)
        if id(ino) in late and not late_begun:  # (late is empty without before_late)
            late_begun.append(True)
            if copier is not None:  # the hasher may go up to here while before_late waits
                copier.finish()
                copier = None
            final = start
            if system is not None and system.final_limit >= 0:
                final = min(final, system.final_limit)
            if writeback is not None:
                writeback.advance(final)
            if hasher is not None:
                hasher.advance(final)
            before_late()
        with pycdlib_inode.InodeOpenData(ino, block) as (src, length):
            in_fd = fileno(src)
            if in_fd is None or id(ino) in boot_images:
                copied = copy_range(src, src.tell(), out_fd, start, length, buffer)
            else:
                if copier is None:
                    copier = RangeCopier(out_fd, _COPY_WORKERS)
                copier.submit(in_fd, src.tell(), start, length)
                copied = length
        yield copied
        if ino.boot_info_table is not None:  # what pycdlib patches at offset 8 of a boot file
            os.pwrite(out_fd, ino.boot_info_table.record(), start + 8)
        if system is not None:
            system.patch_boot_image(out_fd, iso, ino, start, copied)
        outfp.seek(start + copied)
        if writeback is not None or hasher is not None:
            i = position.get(id(ino))
            final = os.fstat(out_fd).st_size if i is not None else 0
            if i is not None and lowest_after[i] >= 0:
                final = min(final, lowest_after[i])
            if system is not None and system.final_limit >= 0:  # written after the volume
                final = min(final, system.final_limit)
            running = copier.lowest_unfinished() if copier is not None else None
            if running is not None:
                final = min(final, running)
            if writeback is not None:
                writeback.advance(final)
            if hasher is not None:
                hasher.advance(final)

    iso.data_writer = output_file_data
    try:
        yield
        if copier is not None:
            copier.finish()
        if before_late is not None and not late_begun:  # no file of iso.late was written
            raise IsoError(
                "the files to be laid out last were not written",
                hint="this is a bug in distro-builder: run with --debug and report it",
            )
    finally:
        if copier is not None:  # after an error, or a Ctrl-C even within finish(): no copy
            copier.cancel()  # thread outlives the output's descriptor
        iso.data_writer = None


class _Background:
    """fn(*args) in a thread; `result()` joins it and re-raises what it raised."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = fn(*args)
            except BaseException as e:
                self._error = e

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


# -- the system area ------------------------------------------------------------------------------
# pycdlib rebuilds one kind of MBR, isolinux's isohybrid (and its GPT when it has an EFI
# partition), and writes zeros over any other. GRUB 2's hybrid images (grub-mkrescue, xorriso
# -boot_image grub) have their own MBR: its boot code finds the El Torito image through a 64-bit
# 512-byte address at byte 432 (the image's + 4), GRUB's El Torito image finds itself through
# the same kind of address at its byte 2548 (+ 5, "grub2-boot-info"), and a partition covers
# the volume. The engine carries such an MBR over: the addresses follow the boot image to its
# new extent, a partition that ended with the volume ends with the new one.
#
# Images with partitions appended after the ISO 9660 data (xorriso -append_partition: Ubuntu
# 20.10 and later, memtest86+, grub-mkrescue) have a tail pycdlib cannot lay out: the appended
# partitions (an EFI System Partition the UEFI El Torito entry points into), xorriso's padding
# and, with a GPT (-appended_part_as_gpt), the backup GPT at the very end. The engine lets
# pycdlib lay out the ISO 9660 data only (its volume ends where the tail begins; the boot images
# in the tail get no place in it), copies the tail byte for byte after the new data, moved by
# whole 2048-byte blocks, and moves what points into it: the MBR's and the GPT's partition
# entries (a partition in the tail moves with it, one that ended with the data ends with the new
# data, the protective one ends with the file), the GPT headers (backup at the new last block,
# last usable block, CRC-32s), the El Torito entries into the tail, and the volume size where it
# counted the tail. The primary GPT's array must lie in the system area (xorriso's does).
# A GPT beside isolinux's MBR (Debian: -isohybrid-gpt-basdat, with an Apple partition map from
# -isohybrid-apm-hfsplus, the backup GPT at the end of the volume) is carried the same way, not
# rebuilt by pycdlib; partitions that start at an El Torito image (efi.img) follow it, and an
# image of whole cylinders stays one. An ISO 9660 partition with its own superblock at its block
# 16 (-partition_offset 16, Ubuntu) gets a new one, and a copy of the folders and path tables
# with addresses counted from the partition (_PartitionTree). isolinux's MBR whose partition 1
# starts past block 0 (xorriso -isohybrid-mbr -partition_offset 16) or beside a partition pycdlib
# does not know (-append_partition 2 0xef) is carried the same way too: partition 1 keeps its
# start and ends at a whole cylinder where the new ISO data ends (the image padded to whole
# cylinders when it was one, the appended partitions moved to the next cylinder when they began
# at one), the geometry and CHS stay the base's. Refused: a boot image past the
# volume in no partition, a GPT whose checksums do not match or whose array lies outside the
# system area.

_MBR_BOOT_LBA = 432
_SYSTEM_AREA = 16 * SECTOR  # the blocks before the volume descriptors
_GRUB2_BOOT_INFO = 2548


class _BiosIsoHybrid(pycdlib_isohybrid.IsoHybrid):  # type: ignore[misc]
    """pycdlib's isohybrid MBR that leaves a UEFI El Torito entry alone when it has no EFI
    partition (pycdlib raises 'Attempted to set EFI lba on a non-EFI ISO')."""

    __slots__ = ()

    def update_efi(self, current_extent: int, sector_count: int, iso_size: int) -> None:
        if self.efi:
            super().update_efi(current_extent, sector_count, iso_size)

    def update_mac(self, current_extent: int, sector_count: int) -> None:
        if self.mac:
            super().update_mac(current_extent, sector_count)


def _chs(lba: int, heads: int, sectors: int) -> tuple[int, int, int]:
    """The MBR's (head, sector | cylinder high bits, cylinder low byte) of `lba`."""
    cyl, rest = divmod(lba, heads * sectors)
    if cyl > 1023:
        return heads - 1, sectors | 0xC0, 0xFF
    return rest // sectors, (rest % sectors + 1) | ((cyl >> 2) & 0xC0), cyl & 0xFF


def _chs_geometry(lba: int, head: int, sect: int, cyl: int) -> tuple[int, int] | None:
    """The disk geometry (heads, sectors) under which `lba` has that CHS, or None."""
    for geometry in ((64, 32), (255, 63), (16, 63), (128, 32), (32, 32), (64, 63)):
        if _chs(lba, *geometry) == (head, sect, cyl):
            return geometry
    return None


class _SystemArea:
    """What the base's system area and tail hold that pycdlib does not rebuild (see above)."""

    def __init__(self) -> None:
        self.mbr: bytes | None = None  # the base's MBR, when it is not pycdlib's to rebuild
        self.boot_lba = -1  # the base's BIOS boot image extent (2048-byte blocks)
        self.mbr_boot_delta: int | None = None  # MBR[432] - 4 * boot_lba on the base
        self.grub2_boot_info = False
        self.volume_blocks = 0  # the base's volume in 512-byte blocks
        self.file_blocks = 0
        self.file_size = 0
        self.unsupported: list[str] = []
        self.gpt: _Gpt | None = None  # the base's GPT, when it is carried over
        self.area = b""  # the base's system area (32 KiB) when its MBR is carried: sectors 1-63 too
        self.tail = -1  # 512-byte block where the appended partitions begin (-1: none)
        self.tail_boot: list[tuple[Any, int]] = []  # El Torito entries in the tail, their LBA
        self.image_lbas: list[tuple[Any, int]] = []  # the other El Torito entries, their LBA
        self.covers_tail = False  # the base's volume size counts the tail (xorriso's GPT images)
        self.data_end = 0  # 512-byte block where the base's ISO 9660 data ends
        self.cylinder = 0  # blocks per cylinder when the base is a whole number of them
        self.partition_offset = 0  # 2048-byte blocks: an ISO 9660 partition with its own tree
        self.tree: _PartitionTree | None = None
        # The new layout (plan()): 512-byte block moves
        self.shift = 0  # how far the tail moves
        self.ends: dict[int, int] = {}  # where a partition ending at a known place ends now
        self.iso_end = 0  # 2048-byte block where the new ISO 9660 part ends (its padding too)

    @property
    def changes_output(self) -> bool:
        return self.mbr is not None or self.grub2_boot_info or self.tail >= 0

    @property
    def final_limit(self) -> int:
        """Where pycdlib's part of the output ends (-1: the whole file is pycdlib's): the rest
        is written after it (the partition's tree, the tail)."""
        if self.tree is not None and self.tree.blocks:
            return self.tree.start * SECTOR
        return self.new_tail

    @property
    def new_tail(self) -> int:
        """The byte offset of the tail in the new image (-1: none); after plan()."""
        return (self.tail + self.shift) * 512 if self.tail >= 0 else -1

    @classmethod
    def read(cls, path: Path, iso: pycdlib.PyCdlib) -> _SystemArea:
        self = cls()
        block = iso.logical_block_size
        self.volume_blocks = iso.pvd.space_size * block // 512
        self.file_size = path.stat().st_size
        self.file_blocks = self.file_size // 512
        entries = _boot_entries(iso)
        with open(path, "rb") as f:
            head = f.read(_SYSTEM_AREA)
            bios = next((e for p, e in entries if p == 0), None)
            if bios is not None:
                self.boot_lba = bios.load_rba
                f.seek(self.boot_lba * block + _GRUB2_BOOT_INFO)
                field = f.read(8)
                self.grub2_boot_info = (
                    len(field) == 8
                    and bios.inode is not None
                    and bios.inode.get_data_length() >= _GRUB2_BOOT_INFO + 8
                    and struct.unpack("<Q", field)[0] == self.boot_lba * 4 + 5
                )
            has_gpt = head[512:520] == b"EFI PART"
            ours = iso.isohybrid_mbr is not None
            took_isolinux = False
            if ours and (has_gpt or not _pycdlib_rebuilds(iso.isohybrid_mbr, head)):
                # A GPT (and an Apple partition map) beside isolinux's MBR: xorriso's
                # -isohybrid-mbr -isohybrid-gpt-basdat -isohybrid-apm-hfsplus (Debian), syslinux's
                # isohybrid -u. pycdlib would rebuild the MBR and a GPT of its own making and
                # drop the rest (xorriso then refused the image); the engine carries all three.
                # Likewise isolinux's MBR whose partition 1 starts past block 0 (xorriso
                # -isohybrid-mbr -partition_offset 16) or with a partition pycdlib does not
                # know (-append_partition 2 0xef): pycdlib kept the start, derived the geometry
                # from the size (32 sectors a head read as 31) and dropped the other entries.
                iso.isohybrid_mbr = None
                ours, took_isolinux = False, True
            if ours or len(head) < 1024 or head[510:512] != b"\x55\xaa":
                if has_gpt:
                    self.unsupported.append("a GPT without an MBR")
                self._boot_images_inside(entries)
                return self
            parts = [struct.unpack_from("<BBBBBBBBLL", head, 446 + 16 * i) for i in range(4)]
            gpt_parts: list[tuple[int, int]] = []
            if has_gpt:
                self.gpt = _Gpt.read(f, head, self.file_blocks, self.unsupported)
                if self.gpt is not None:
                    self.area = head
                    gpt_parts = self.gpt.partitions()
        if not any(p[4] or p[9] for p in parts) and self.gpt is None:
            self._boot_images_inside(entries)
            return self  # boot code without a partition table: not a hybrid disk image
        # The tail: what begins after the ISO 9660 data (appended partitions, the backup GPT).
        self.data_end = data_end = _data_end(iso)
        starts = [p[8] for p in parts if (p[4] or p[9]) and p[4] != 0xEE and p[8] >= data_end]
        starts += [start for start, _ in gpt_parts if start >= data_end]
        if self.gpt is not None and self.gpt.backup_entries >= data_end:
            starts.append(self.gpt.backup_entries)
        if starts:
            self.tail = min(starts)
            self.covers_tail = self.volume_blocks > self.tail
        elif self.gpt is not None:
            self.unsupported.append("a GPT whose backup lies inside the ISO 9660 data")
        for platform, e in entries:
            if self.tail >= 0 and e.load_rba * 4 >= self.tail:
                if e.load_rba * 4 + e.sector_count > self.file_blocks:
                    self.unsupported.append(
                        f"its {_PLATFORMS.get(platform, hex(platform))} boot image runs past "
                        f"the end of the file (block {e.load_rba})"
                    )
                self.tail_boot.append((e, e.load_rba))
            else:
                self.image_lbas.append((e, e.load_rba))
        self._boot_images_inside([(p, e) for p, e in entries if (e, e.load_rba) in self.image_lbas])
        self.mbr = head[:512]
        self.area = head  # (what xorriso -G or another writer put in sectors 1-63 is kept too)
        self.partition_offset = _partition_offset(path, parts, gpt_parts)
        for p in parts:  # isohybrid pads a disk image to whole cylinders (cyl-align-on)
            geometry = _chs_geometry(p[8] + p[9] - 1, p[5], p[6], p[7]) if p[9] else None
            cylinder = geometry[0] * geometry[1] if geometry else 0
            # (xorriso's isolinux MBR: the ISO partition ends at a whole cylinder where the
            # appended partitions begin, or xorriso's padding after the volume, the file not)
            if cylinder and (
                self.file_blocks % cylinder == 0
                or (took_isolinux and (p[8] + p[9]) % cylinder == 0)
            ):
                self.cylinder = cylinder
        if self.boot_lba >= 0:
            delta = struct.unpack_from("<Q", head, _MBR_BOOT_LBA)[0] - self.boot_lba * 4
            self.mbr_boot_delta = delta if delta in (0, 4) else None  # isolinux / GRUB 2
        return self

    def _boot_images_inside(self, entries: list[tuple[int, Any]]) -> None:
        """Refuse a boot image past the volume that no appended partition carries."""
        for platform, e in entries:
            if e.load_rba * 4 >= self.volume_blocks:
                self.unsupported.append(
                    f"its {_PLATFORMS.get(platform, hex(platform))} boot image lies after "
                    f"the ISO 9660 volume (block {e.load_rba}) outside any appended partition"
                )

    def keep_out_of_layout(self, iso: _PyCdlib) -> None:
        """pycdlib lays out the ISO 9660 data only: the volume it sees ends where the tail
        begins, and the boot images in the tail are not given a place in it. The blocks of an
        ISO 9660 partition's second descriptor set are reserved."""
        if self.partition_offset:
            self.tree = _PartitionTree.reserve(iso, self.partition_offset)
        if self.tail < 0:
            return
        for vd in [*iso.pvds, *iso.svds]:
            vd.space_size = self.tail // 4
        iso.outside = {id(e.inode) for e, _ in self.tail_boot if e.inode is not None}

    def require_supported(self, path: Path) -> None:
        if self.unsupported:
            raise IsoError(
                f"{path}: cannot remaster this layout: {'; '.join(self.unsupported)}",
                hint="the engine carries over MBRs, GPTs and partitions appended after the "
                "ISO 9660 data; xorriso -indev BASE -outdev NEW -boot_image any replay -map "
                "OVERLAY / may keep this one",
            )

    def plan(self, iso: pycdlib.PyCdlib) -> int:
        """The places of the new layout (pycdlib has laid the volume out); the new image's
        size in bytes. The El Torito entries into the tail are pointed at its new place.

        Raises:
            IsoError when an MBR entry, moved, no longer fits its 32-bit fields (a damaged
            table: seen with a seeded size of 0xffffffff).
        """
        size = self._plan(iso)
        for number, start, end in self._mbr_entries():
            new_start, new_end = self.moved(start, end)
            if not (0 <= new_start <= 0xFFFFFFFF and 0 <= new_end - new_start <= 0xFFFFFFFF):
                raise IsoError(
                    f"cannot remaster this layout: MBR partition {number} (block {start}, "
                    f"{end - start} blocks) would run past what an MBR entry can hold once moved",
                    hint="the base's partition table looks damaged; fetch the ISO again, check "
                    "SHA256SUMS (`sfdisk -d BASE` shows the table)",
                )
        return size

    def _mbr_entries(self) -> list[tuple[int, int, int]]:
        """(number, start, end) of the base's used MBR entries (512-byte blocks, end excluded)."""
        if self.mbr is None:
            return []
        out = []
        for i in range(4):
            entry = struct.unpack_from("<BBBBBBBBLL", self.mbr, 446 + 16 * i)
            if entry[4] or entry[9]:
                out.append((i + 1, entry[8], entry[8] + entry[9]))
        return out

    def _plan(self, iso: pycdlib.PyCdlib) -> int:
        volume = iso.pvd.space_size * iso.logical_block_size // 512
        laid_out = volume
        if self.tree is not None:  # the partition's folders and path tables after the data
            volume += self.tree.plan(iso, volume // 4) * 4
        if self.tail < 0:
            if self.cylinder and self.cylinder % 4 == 0:  # padded as xorriso's volume was
                volume = -(-volume // self.cylinder) * self.cylinder
            if volume != laid_out:
                for vd in [*iso.pvds, *iso.svds]:
                    vd.space_size = volume // 4
            self.ends = {self.volume_blocks: volume, self.file_blocks: volume}
            self.iso_end = volume // 4
            return volume * 512
        # The tail keeps its place within a 2048-byte block: El Torito counts in those.
        self.shift = volume + self.tail % 4 - self.tail
        if self.cylinder:  # and stays a whole number of cylinders
            self.shift = -(-self.shift // self.cylinder) * self.cylinder
        self.ends = {self.volume_blocks: volume, self.tail: self.tail + self.shift}
        self.iso_end = (self.tail + self.shift) // 4
        for e, lba in self.tail_boot:
            e.load_rba = lba + self.shift // 4
        if self.covers_tail:
            for vd in [*iso.pvds, *iso.svds]:
                vd.space_size = (self.volume_blocks + self.shift) // 4
        return self.file_size + self.shift * 512

    def moved(self, start: int, end: int) -> tuple[int, int]:
        """A partition [start, end) (512-byte blocks) in the new layout: in the tail it moves
        with it, and one that ends in or after it ends as far later; one that starts at an El
        Torito image follows the image; one that ended with the volume or the ISO data ends
        with the new one."""
        if self.tail >= 0 and start >= self.tail:
            return start + self.shift, end + self.shift
        for e, lba in self.image_lbas:
            if start and start == lba * 4 and e.load_rba != lba:
                return e.load_rba * 4, end - start + e.load_rba * 4
        if self.tail >= 0 and end >= self.data_end:  # over the data (and the tail: protective)
            return start, end + self.shift
        return start, self.ends.get(end, end)

    def write_mbr(self, out_fd: int, iso: pycdlib.PyCdlib) -> None:
        """The base's MBR (and GPT) at the start of the new image, moved to its layout."""
        if self.mbr is None:
            return
        mbr = bytearray(self.mbr)
        new_lba = iso.eltorito_boot_catalog.initial_entry.get_rba() if self.boot_lba >= 0 else -1
        if self.mbr_boot_delta is not None and new_lba >= 0:
            struct.pack_into("<Q", mbr, _MBR_BOOT_LBA, new_lba * 4 + self.mbr_boot_delta)
        for i in range(4):
            off = 446 + 16 * i
            entry = list(struct.unpack_from("<BBBBBBBBLL", mbr, off))
            start, end = entry[8], entry[8] + entry[9]
            new_start, new_end = self.moved(start, end)
            # (type 0 with a size: xorriso's -iso_mbr_part_type 0x00 over the ISO data)
            if not (entry[4] or entry[9]) or (new_start, new_end) == (start, end):
                continue
            for at, old, new in ((1, start, new_start), (5, end - 1, new_end - 1)):
                geometry = _chs_geometry(old, *entry[at : at + 3])
                if geometry is not None:  # else the CHS stays as the base had it
                    entry[at : at + 3] = _chs(new, *geometry)
            entry[8], entry[9] = new_start, new_end - new_start
            struct.pack_into("<BBBBBBBBLL", mbr, off, *entry)
        if self.tree is not None and self.tree.blocks:
            end = max(self.tree.start + self.tree.blocks, self.iso_end)
            self.tree.write_descriptors(out_fd, end - self.tree.offset)
        if self.gpt is not None:
            area = bytearray(self.area)
            area[:512] = mbr
            self.gpt.write_primary(area, self)
            self._move_apm(area)
            os.pwrite(out_fd, bytes(area), 0)
        else:
            os.pwrite(out_fd, bytes(mbr) + self.area[512:], 0)

    def _move_apm(self, area: bytearray) -> None:
        """An Apple partition map of 2048-byte blocks (xorriso -isohybrid-apm-hfsplus: "ER" at
        byte 0, an entry per block from block 1): each entry's start and size, big-endian,
        moved as the MBR's are."""
        if area[:4] != b"ER\x08\x00" or area[2048:2050] != b"PM":
            return
        (count,) = struct.unpack_from(">L", area, 2048 + 4)
        for n in range(1, min(count, 15) + 1):
            off = n * 2048
            if area[off : off + 2] != b"PM":
                break
            start, size = struct.unpack_from(">LL", area, off + 8)
            new_start, new_end = self.moved(start * 4, (start + size) * 4)
            struct.pack_into(">LL", area, off + 8, new_start // 4, (new_end - new_start) // 4)

    def write_tail(self, out_fd: int, base: Path) -> None:
        """The partition's tree and the base's tail after the new ISO data, the backup GPT
        moved to the new end."""
        if self.tree is not None and self.tree.blocks:
            self.tree.write_copies(out_fd)
        if self.tail < 0:
            return
        length = self.file_size - self.tail * 512
        with open(base, "rb") as src:
            buffer = page_buffer(COPY_BUFFER)
            done = copy_range(src, self.tail * 512, out_fd, self.new_tail, length, buffer)
        if done != length:
            raise IsoError(
                f"{base}: its appended partitions end after {done} of {length} bytes",
                hint="the file may be truncated; fetch it again, check SHA256SUMS",
            )
        if self.gpt is not None:
            self.gpt.write_backup(out_fd, self)

    def patch_boot_image(
        self, out_fd: int, iso: pycdlib.PyCdlib, ino: Any, start: int, length: int
    ) -> None:
        """GRUB 2's boot info in its El Torito image, at the image's new address."""
        entry = iso.eltorito_boot_catalog.initial_entry if iso.eltorito_boot_catalog else None
        if not self.grub2_boot_info or entry is None or entry.inode is not ino:
            return
        if length < _GRUB2_BOOT_INFO + 8:
            return
        old = os.pread(out_fd, 8, start + _GRUB2_BOOT_INFO)
        new = struct.pack("<Q", start // 512 + 5)
        os.pwrite(out_fd, new, start + _GRUB2_BOOT_INFO)
        if ino.boot_info_table is not None:
            # The boot-info table's checksum (32-bit words from byte 64 on) covers the field.
            (checksum,) = struct.unpack("<L", os.pread(out_fd, 4, start + 20))
            checksum += sum(struct.unpack("<2L", new)) - sum(struct.unpack("<2L", old))
            os.pwrite(out_fd, struct.pack("<L", checksum & 0xFFFFFFFF), start + 20)


class _PartitionTree:
    """The second superblock and directory tree of an ISO 9660 partition that starts inside the
    image (xorriso -partition_offset 16, Ubuntu's layout): the same volume descriptors, path
    tables and directory records with every block address counted from the partition's start,
    so the partition mounts as ISO 9660 too. Files and Rock Ridge continuation areas are shared
    with the main tree; the folders and path tables are copies laid after the ISO 9660 data.

    Laid out by reserving the blocks of the second descriptor set (the partition's block 16 on)
    with extra set terminators in pycdlib's layout; the block before them is zeroed when the
    second set is written, so a reader of the main set (pycdlib reads past a terminator) stops
    there."""

    def __init__(self, offset: int, count: int) -> None:
        self.offset = offset  # the partition's start, 2048-byte blocks
        self.count = count  # descriptors in the set (primary, supplementary, terminator)
        self.main = 0  # descriptors in the main set (with the El Torito boot record)
        self.dirs: dict[int, tuple[int, int]] = {}  # folder extent -> (its copy's extent, length)
        self.tables: list[tuple[int, int, int, bool]] = []  # (extent, copy extent, size, big end)
        self.start = 0  # where the copies begin
        self.blocks = 0  # how many blocks they take

    @classmethod
    def reserve(cls, iso: Any, offset: int) -> _PartitionTree:
        # As xorriso writes it: no El Torito boot record in the partition's set (its catalog
        # counts from the image's start; a reader of the partition would look past its end).
        count = len(iso.pvds) + len(iso.svds) + 1
        first_free = 16 + len(iso.pvds) + len(iso.brs) + len(iso.svds) + len(iso.vdsts)
        for _ in range(max(0, offset + 16 + count - first_free)):
            iso.vdsts.append(pycdlib_headervd.vdst_factory())
        tree = cls(offset, count)
        tree.main = len(iso.pvds) + len(iso.brs) + len(iso.svds) + 1
        return tree

    def plan(self, iso: Any, start: int) -> int:
        """Lay the copies out from block `start`; how many blocks they take (0: the layout does
        not leave the second set its blocks, and no second tree is written)."""
        terminators = {v.extent_location() for v in iso.vdsts}
        wanted = range(self.offset + 15, self.offset + 16 + self.count)
        if not all(b in terminators for b in wanted):
            return 0
        block = iso.logical_block_size
        at = self.start = start
        for vd in [*iso.pvds, *iso.svds]:
            stack, seen = [vd.root_directory_record()], set()
            while stack:
                rec = stack.pop()
                extent = rec.extent_location()
                if extent in seen:
                    continue
                seen.add(extent)
                self.dirs[extent] = (at, rec.get_data_length())
                at += -(-rec.get_data_length() // block)
                stack.extend(
                    c for c in rec.children if c.is_dir() and not (c.is_dot() or c.is_dotdot())
                )
            size = vd.path_tbl_size
            n = -(-size // block)
            self.tables.append((vd.path_table_location_le, at, size, False))
            self.tables.append((vd.path_table_location_be, at + n, size, True))
            at += 2 * n
        self.blocks = at - start
        return self.blocks

    def _dir(self, extent: int) -> int:
        return self.dirs[extent][0] - self.offset if extent in self.dirs else extent - self.offset

    def write_descriptors(self, fd: int, partition_blocks: int) -> None:
        """The second set from the main one as pycdlib wrote it; the block before it zeroed."""
        off = self.offset
        os.pwrite(fd, bytes(SECTOR), (off + 15) * SECTOR)
        tables = {extent: copy for extent, copy, _, _ in self.tables}
        at_block = off + 16
        for i in range(self.main):
            vd = bytearray(os.pread(fd, SECTOR, (16 + i) * SECTOR))
            if vd[1:6] != b"CD001" or vd[0] == 0:  # (the El Torito boot record stays out)
                continue
            if vd[0] in (1, 2):
                struct.pack_into("<L", vd, 80, partition_blocks)
                struct.pack_into(">L", vd, 84, partition_blocks)
                for at, fmt in ((140, "<L"), (144, "<L"), (148, ">L"), (152, ">L")):
                    (loc,) = struct.unpack_from(fmt, vd, at)
                    if loc:
                        struct.pack_into(fmt, vd, at, tables.get(loc, loc + off) - off)
                self._record(vd, 156)
            os.pwrite(fd, bytes(vd), at_block * SECTOR)
            at_block += 1
            if vd[0] == 0xFF:
                break

    def _record(self, buf: bytearray, at: int) -> None:
        """One directory record at buf[at:], its addresses counted from the partition."""
        (extent,) = struct.unpack_from("<L", buf, at + 2)
        new = self._dir(extent) if buf[at + 25] & _DIRECTORY else extent - self.offset
        if extent and new >= 0:
            struct.pack_into("<L", buf, at + 2, new)
            struct.pack_into(">L", buf, at + 6, new)
        name_len = buf[at + 32]
        su = at + 33 + name_len + (1 - name_len % 2)
        end = at + buf[at]
        while su + 4 <= end and buf[su + 2] >= 4:
            sig, length = bytes(buf[su : su + 2]), buf[su + 2]
            if sig == b"CE" and length >= 28:
                (loc,) = struct.unpack_from("<L", buf, su + 4)
                struct.pack_into("<L", buf, su + 4, loc - self.offset)
                struct.pack_into(">L", buf, su + 8, loc - self.offset)
            elif sig in (b"PL", b"CL") and length >= 12:
                (loc,) = struct.unpack_from("<L", buf, su + 4)
                struct.pack_into("<L", buf, su + 4, self._dir(loc))
                struct.pack_into(">L", buf, su + 8, self._dir(loc))
            elif sig == b"ST":
                break
            su += length

    def write_copies(self, fd: int) -> None:
        """The folders and path tables, copied from the main tree and moved."""
        for extent, (copy, length) in self.dirs.items():
            size = -(-length // SECTOR) * SECTOR
            buf = bytearray(os.pread(fd, size, extent * SECTOR))
            pos = 0
            while pos < len(buf):
                if buf[pos] == 0:  # records do not cross a block: the rest of it is padding
                    pos = (pos // SECTOR + 1) * SECTOR
                    continue
                self._record(buf, pos)
                pos += buf[pos]
            os.pwrite(fd, bytes(buf), copy * SECTOR)
        for extent, copy, size, big in self.tables:
            buf = bytearray(os.pread(fd, size, extent * SECTOR))
            fmt = ">L" if big else "<L"
            pos = 0
            while pos + 8 <= size:
                name_len = buf[pos]
                (loc,) = struct.unpack_from(fmt, buf, pos + 2)
                struct.pack_into(fmt, buf, pos + 2, self._dir(loc))
                pos += 8 + name_len + name_len % 2
            os.pwrite(fd, bytes(buf), copy * SECTOR)


# The GPT (UEFI 2.10 §5.3): a 92-byte header at block 1 and its copy at the disk's last block,
# each pointing at an array of partition entries (128 bytes: type GUID, GUID, first and last
# block, inclusive, flags, name); CRC-32s over the header and over the array.
_GPT_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")


class _Gpt:
    """The base's GPT: the primary in the system area, the backup in the tail."""

    def __init__(self, header: bytes, array: bytes, backup: int, backup_entries: int) -> None:
        self.header, self.array = header, array
        self.backup, self.backup_entries = backup, backup_entries
        fields = _GPT_HEADER.unpack_from(header)
        self.size, self.entries_lba, self.count, self.entry_size = (
            fields[2], fields[10], fields[11], fields[12],
        )  # fmt: skip

    @classmethod
    def read(cls, f: IO[bytes], head: bytes, blocks: int, problems: list[str]) -> _Gpt | None:
        fields = _GPT_HEADER.unpack_from(head, 512)
        size, my_lba, alternate, entries_lba, count, entry_size = (
            fields[2], fields[5], fields[6], fields[10], fields[11], fields[12],
        )  # fmt: skip
        header = head[512 : 512 + size] if 92 <= size <= 512 else b""
        array_end = entries_lba * 512 + count * entry_size
        if not header or my_lba != 1 or entry_size < 128 or entry_size % 8:
            problems.append("a GPT header that does not read")
            return None
        if zlib.crc32(header[:16] + b"\0\0\0\0" + header[20:]) != fields[3]:
            problems.append("a GPT header whose checksum is wrong")
            return None
        if entries_lba < 2 or array_end > _SYSTEM_AREA:
            problems.append("a GPT whose partition array lies outside the system area")
            return None
        array = head[entries_lba * 512 : array_end]
        if zlib.crc32(array) != fields[13]:
            problems.append("a GPT partition array whose checksum is wrong")
            return None
        if not 1 < alternate < blocks:
            problems.append(f"a GPT whose backup header (block {alternate}) is not in the file")
            return None
        f.seek(alternate * 512)
        backup = f.read(512)
        if backup[:8] != b"EFI PART":
            problems.append(f"a GPT without its backup header (block {alternate})")
            return None
        backup_entries = _GPT_HEADER.unpack_from(backup)[10]
        if not backup_entries * 512 + count * entry_size <= alternate * 512:
            problems.append("a backup GPT whose partition array does not precede its header")
            return None
        return cls(header, array, alternate, backup_entries)

    def _entries(self) -> Iterator[tuple[int, int, int]]:
        """(offset in the array, first block, last block) of each used entry."""
        for i in range(self.count):
            off = i * self.entry_size
            if any(self.array[off : off + 16]):
                first, last = struct.unpack_from("<QQ", self.array, off + 32)
                yield off, first, last

    def partitions(self) -> list[tuple[int, int]]:
        return [(first, last + 1) for _, first, last in self._entries()]

    def _moved_array(self, area: _SystemArea) -> bytes:
        array = bytearray(self.array)
        for off, first, last in self._entries():
            start, end = area.moved(first, last + 1)
            struct.pack_into("<QQ", array, off + 32, start, end - 1)
        return bytes(array)

    def _header(self, area: _SystemArea, array: bytes, *, backup: bool) -> bytes:
        fields = list(_GPT_HEADER.unpack_from(self.header))
        last_usable = fields[8]
        if area.tail >= 0 and last_usable >= area.data_end:
            fields[8] = last_usable + area.shift
        mine, other = 1, self.backup + area.shift
        fields[5], fields[6] = (other, mine) if backup else (mine, other)
        fields[10] = self.backup_entries + area.shift if backup else self.entries_lba
        fields[13] = zlib.crc32(array)
        fields[3] = 0
        header = bytearray(self.header)
        _GPT_HEADER.pack_into(header, 0, *fields)
        struct.pack_into("<I", header, 16, zlib.crc32(header))
        return bytes(header)

    def write_primary(self, system_area: bytearray, area: _SystemArea) -> None:
        array = self._moved_array(area)
        system_area[512 : 512 + self.size] = self._header(area, array, backup=False)
        at = self.entries_lba * 512
        system_area[at : at + len(array)] = array

    def write_backup(self, out_fd: int, area: _SystemArea) -> None:
        array = self._moved_array(area)
        os.pwrite(out_fd, array, (self.backup_entries + area.shift) * 512)
        os.pwrite(out_fd, self._header(area, array, backup=True), (self.backup + area.shift) * 512)


def _pycdlib_rebuilds(mbr: Any, head: bytes) -> bool:
    """Whether pycdlib's isohybrid MBR (parsed from `head`) rebuilds the base's as it was: its
    bootable partition starts at block 0 and every other used entry is its EFI or Mac one."""
    if mbr.part_offset != 0:
        return False
    for i in range(1, 5):
        entry = head[446 + 16 * (i - 1) : 446 + 16 * i]
        if i == mbr.part_entry or not any(entry):
            continue
        if (i == 2 and mbr.efi) or (i == 3 and mbr.mac):
            continue
        return False
    return True


def _partition_offset(
    path: Path, parts: list[tuple[int, ...]], gpt_parts: list[tuple[int, int]]
) -> int:
    """The start (2048-byte blocks) of a partition that holds its own ISO 9660 superblock
    (xorriso -partition_offset), or 0."""
    starts = sorted({p[8] for p in parts if p[4] or p[9]} | {start for start, _ in gpt_parts})
    with open(path, "rb") as f:
        for start in starts:
            if start and start % 4 == 0 and 16 <= start // 4 <= 64:
                f.seek((start // 4 + 16) * SECTOR)
                if f.read(6) == b"\x01CD001":
                    return start // 4
    return 0


def _boot_entries(iso: pycdlib.PyCdlib) -> list[tuple[int, Any]]:
    """(platform id, entry) of every El Torito entry, the initial one first."""
    cat = iso.eltorito_boot_catalog
    if cat is None:
        return []
    entries = [(cat.validation_entry.platform_id, cat.initial_entry)]
    for sec in cat.sections:
        entries += [(sec.platform_id, e) for e in sec.section_entries]
    return entries


# xorriso writing a new image to a file (`-indev A -outdev B -boot_image any replay`, the way
# many custom Ubuntu ISOs are made) starts the volume at block 32: its descriptors at 48-50, a
# copy of them at 16-18 for readers that look there (the demo base replayed: the root directory
# at block 51 in both, the volume space 48601 blocks at 48, 48633 at 16). It fills isolinux.bin's
# boot-info table from the session's own: bi_pvd 48, bi_file 132 (the file's block, counted
# from the image's start), bi_length and bi_csum right. pycdlib takes a table only when bi_pvd
# is the descriptor it read (16; pycdlib 1.22.0 eltorito.py:71), so it saw none and the base's
# 64 bytes went unchanged to the file's new block (105, 3 MiB added): isolinux loads the rest
# of itself from bi_file + 1 (syslinux core/isolinux.asm:380-381; "isolinux: Image checksum
# error, sorry...", :1073: the remastered image did not boot as a CD) and reads its PVD, then
# the root directory from it, at bi_pvd (core/fs/iso9660/iso9660.c:302-308, syslinux
# 5e426532), by then file data. Such a table is the image's: given to pycdlib, the file-data
# pass writes its record for the output's layout (bi_pvd 16, bi_file the new block, the base's
# length and checksum).


def _adopt_session_boot_info_tables(path: Path, iso: pycdlib.PyCdlib) -> None:
    """Give each El Torito image a boot-info table that counts from a session's own volume
    descriptor (one with the same root directory as pycdlib's, at another block) and is right
    otherwise: bi_file its block, bi_length its size, bi_csum its bytes from 64 on."""
    block = iso.logical_block_size
    with open(path, "rb") as f:
        fd = f.fileno()
        pvd_at = iso.pvd.extent_location()
        root = os.pread(fd, block, pvd_at * block)[156:190]  # the root directory record
        for _, entry in _boot_entries(iso):
            ino = entry.inode
            if ino is None or ino.boot_info_table is not None or ino.get_data_length() < 64:
                continue
            start, length = ino.extent_location() * block, ino.get_data_length()
            bi_pvd, bi_file, bi_length, bi_csum = struct.unpack("<4I", os.pread(fd, 16, start + 8))
            if bi_pvd == pvd_at or bi_file != ino.extent_location() or bi_length != length:
                continue
            vd = os.pread(fd, block, bi_pvd * block)
            if vd[:7] != b"\x01CD001\x01" or vd[156:190] != root:
                continue
            data = os.pread(fd, length, start)[64:]
            data += bytes(-len(data) % 4)
            if sum(struct.unpack(f"<{len(data) // 4}I", data)) & 0xFFFFFFFF != bi_csum:
                continue
            table = pycdlib_eltorito.EltoritoBootInfoTable()
            table.new(iso.pvd, ino, bi_length, bi_csum)
            ino.add_boot_info_table(table)


def _data_end(iso: pycdlib.PyCdlib) -> int:
    """Where the ISO 9660 data ends, in 512-byte blocks: the end of the last file, folder,
    path table or boot catalog (a boot image no name points at does not count)."""
    block = iso.logical_block_size
    end = 17 * block
    for ino in iso.inodes:
        if any(
            not isinstance(rec, pycdlib_eltorito.EltoritoEntry) for rec, _ in ino.linked_records
        ):
            end = max(end, ino.extent_location() * block + ino.get_data_length())
    for vd in [*iso.pvds, *iso.svds]:
        end = max(end, vd.path_table_location_le * block + vd.path_tbl_size)
        end = max(end, vd.path_table_location_be * block + vd.path_tbl_size)
        stack = [vd.root_directory_record()]
        seen: set[int] = set()
        while stack:
            rec = stack.pop()
            if id(rec) in seen:
                continue
            seen.add(id(rec))
            end = max(end, rec.extent_location() * block + rec.get_data_length())
            stack.extend(
                c for c in rec.children if c.is_dir() and not (c.is_dot() or c.is_dotdot())
            )
    cat = iso.eltorito_boot_catalog
    if cat is not None and cat.dirrecords:
        end = max(end, cat.extent_location() * block + block)
    return -(-end // block) * block // 512


# The longest overlay file name whose Rock Ridge NM entry still fits in the directory record
# beside the ISO 9660 name and the PX/TF entries; a longer one goes to a continuation area.
_RR_NAME_INLINE_MAX = 117


def _check_record(iso: Any, path: str, kind: EntryKind, size: int) -> str | None:
    """What is wrong with `path` on the re-opened `iso`, or None."""
    try:
        rec = iso.get_record(rr_path=path)
    except pycdlib_errors.PyCdlibException:
        return "missing"
    rr = rec.rock_ridge
    if rr is None:
        return "no Rock Ridge entry"
    name = rr.name().decode("utf-8", errors="replace")
    if name != _parent(path)[1]:
        return f"the Rock Ridge name reads back as {name!r}"
    if kind is EntryKind.dir and not rec.is_dir():
        return "not a directory"
    if kind is EntryKind.symlink and not rr.is_symlink():
        return "not a symlink"
    if kind is EntryKind.file and (rec.is_dir() or rec.get_data_length() != size):
        return f"{rec.get_data_length()} bytes where {size} were written"
    return None


def _reason(e: BaseException) -> str:
    if isinstance(e, KeyError) and isinstance(e.args[0] if e.args else None, int):
        # pycdlib's directory walk: an extent where it read no directory
        return (
            f"a directory record points at block {e.args[0]}, where no folder was read (a "
            "file record flagged as a folder, or a damaged extent)"
        )
    text = str(e).strip()
    if isinstance(e, pycdlib_errors.PyCdlibException) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


_MULTI_EXTENT = 0x80
_DIRECTORY = 0x02


def _tree_problems(iso: Any) -> list[str]:
    """What is wrong with the directory records of the opened `iso` that pycdlib let through
    and another reader (or the engine's look-ups by Rock Ridge name) would not: names that
    are not UTF-8 or hold a '/', two entries of one name, data beyond the end of the volume,
    multi-extent and interleaved files (pycdlib writes them back broken), a Rock Ridge mode
    that contradicts the ISO 9660 record, a symlink mode without a target. Each problem
    names the record by its ISO 9660 path. A stack, no recursion (a disc may be deep)."""
    problems: list[str] = []
    block = iso.logical_block_size
    end = iso.pvd.space_size * block
    if iso.joliet_vd is not None:
        problems += _joliet_problems(iso.joliet_vd.root_directory_record())
    root = iso.pvd.root_directory_record()
    stack = [(root, "")]
    seen = {id(root)}
    while stack and len(problems) < 20:
        folder, where = stack.pop()
        names_here: set[bytes] = set()
        for rec in folder.children:
            if rec.is_dot() or rec.is_dotdot():
                continue
            ident = _decode_ident(rec.file_identifier())
            path = f"{where}/{ident}"
            problem = _record_problem(rec, block, end, names_here)
            if problem:
                problems.append(f"{path}: {problem}")
            elif rec.is_dir() and id(rec) not in seen:
                seen.add(id(rec))
                stack.append((rec, path))
    return problems


def _joliet_problems(root: Any) -> list[str]:
    """Joliet names that are not UCS-2 (an odd length): the engine finds a file's Joliet twin
    by name."""
    problems = []
    stack = [(root, "")]
    seen = {id(root)}
    while stack and len(problems) < 5:
        folder, where = stack.pop()
        for rec in folder.children:
            if rec.is_dot() or rec.is_dotdot():
                continue
            raw = rec.file_identifier()
            try:
                name = raw.decode("utf-16_be")
            except UnicodeDecodeError:
                problems.append(f"Joliet {where}/{raw!r}: the name is not UCS-2")
                continue
            if rec.is_dir() and id(rec) not in seen:
                seen.add(id(rec))
                stack.append((rec, f"{where}/{name}"))
    return problems


def _rr_has(rr: Any, records: str) -> bool:
    """Whether the Rock Ridge entries of a record hold `records` (in the record or its CE)."""
    ce = rr.ce_entries
    return bool(getattr(rr.dr_entries, records)) or (ce is not None and bool(getattr(ce, records)))


def _rr_mode(rr: Any) -> int | None:
    ce = rr.ce_entries
    if rr.dr_entries.px_record is None and (ce is None or ce.px_record is None):
        return None
    return int(rr.get_file_mode())


def _record_problem(rec: Any, block: int, end: int, names_here: set[bytes]) -> str | None:
    rr = rec.rock_ridge
    if rr is not None and _rr_has(rr, "nm_records"):
        raw = rr.name()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"its Rock Ridge name {raw!r} is not UTF-8"
        if not raw or raw in (b".", b"..") or b"/" in raw or b"\0" in raw:
            return f"its Rock Ridge name {raw!r} is not a file name"
        # (relocated folders, RE, keep their names in rr_moved: 'd' many times over)
        if rr.dr_entries.re_record is None and not rec.file_flags & _MULTI_EXTENT:
            if raw in names_here:
                return f"a second entry named {raw!r} in its folder"
            names_here.add(raw)
    mode = _rr_mode(rr) if rr is not None else None
    if rec.is_dir():
        if mode is not None and not stat.S_ISDIR(mode):
            return f"a folder whose Rock Ridge mode is {mode:o}"
        return None
    if rec.file_flags & _MULTI_EXTENT:
        return "a multi-extent file (ISO 9660 level 3), which distro-builder cannot carry over"
    if rec.file_unit_size or rec.interleave_gap_size:
        return "an interleaved file, which distro-builder cannot carry over"
    # (pycdlib cuts the length of data that runs past the end of the file, below zero even)
    if rec.data_length < 0 or (
        rec.data_length and rec.orig_extent_loc * block + rec.data_length > end
    ):
        return (
            f"its data (from block {rec.orig_extent_loc}) lies beyond the end of the volume "
            f"({end // block} blocks)"
        )
    if rr is None or rr.dr_entries.cl_record is not None:
        return None  # (a CL record is the place of a relocated folder: a file with its mode)
    link = _rr_has(rr, "sl_records")
    if mode is not None and stat.S_ISDIR(mode):
        return f"a file whose Rock Ridge mode says folder ({mode:o})"
    if mode is not None and stat.S_ISLNK(mode) != link:
        if link:
            return f"a symlink target (SL) on a record whose mode ({mode:o}) is not a link"
        return f"a symlink mode ({mode:o}) without a target (no SL entry)"
    if link:
        try:
            rr.symlink_path()
        except Exception as e:  # noqa: BLE001 - hostile SL components
            return f"its symlink target does not read: {_reason(e)}"
    return None


def _has_iso_signature(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(16 * SECTOR + 1)
        return f.read(5) == b"CD001"


def check_output_path(out: Path, base: Path | None = None) -> None:
    """Raise OutputError unless `out` can be written (atomically) without touching `base`.

    The output is written beside `out` and renamed over it, so `out` must be absent or a
    regular file: a rename would silently replace a device node (`-o /dev/sdb`), a FIFO or a
    socket with a regular file and report success.
    """
    out = Path(out)
    if out.exists() and base is not None and base.exists() and os.path.samefile(out, base):
        raise OutputError(
            f"{out}: the output would overwrite the base ISO",
            hint="write to another path; pycdlib cannot rewrite the file it reads from",
        )
    if out.exists() and out.is_dir():
        raise OutputError(f"{out}: is a directory", hint="give a file name for the output ISO")
    try:
        mode = out.stat().st_mode  # follows a symlink: a link to /dev/sdb is a device too
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        kind = _special_kind(mode)
        if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
            hint = (
                f"write to a file, then copy it to the device: "
                f"dd if=OUT.iso of={out} bs=4M conv=fsync (or cp OUT.iso {out}; sync); "
                "an ISO boots from a USB stick when built with --hybrid"
            )
        else:
            hint = "give the path of a regular file (absent or to be replaced)"
        raise OutputError(
            f"{out}: is a {kind}, not a regular file; the output is only written to files",
            hint=hint,
        )
    parent = out.parent
    if not parent.is_dir():
        raise OutputError(f"{parent}: output directory does not exist", hint=f"mkdir -p {parent}")
    try:  # os.access() says yes to root even on read-only or virtual file systems: really try
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(
            f"{parent}: output directory is not writable ({e.strerror})",
            hint="choose a directory you can write to, or fix its permissions",
        ) from e


def _special_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISBLK, "block device"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return kind
    return "special file"


class _FrozenClock(types.SimpleNamespace):
    """Stands in for the `time` module inside pycdlib: a fixed now, always in UTC."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)  # strptime, struct_time, ... as the real module has them


@contextlib.contextmanager
def pinned_clock(epoch: int | None) -> Iterator[None]:
    """Inside the block, pycdlib sees time.time() == epoch and local time == UTC.

    pycdlib stamps new records and the volume modification date with time.time() in local
    time plus a GMT offset, and has no SOURCE_DATE_EPOCH support (pycdlib issue #113).
    """
    if epoch is None:
        yield
        return
    clock = _FrozenClock(
        time=lambda: float(epoch),
        localtime=lambda t=None: time.gmtime(epoch if t is None else t),
        gmtime=lambda t=None: time.gmtime(epoch if t is None else t),
    )
    modules = [m for m in _pycdlib_modules() if getattr(m, "time", None) is time]
    for m in modules:
        m.time = clock  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for m in modules:
            m.time = time  # type: ignore[attr-defined]


def _pycdlib_modules() -> list[types.ModuleType]:
    import sys

    return [m for name, m in sys.modules.items() if name.startswith("pycdlib") and m is not None]


def file_mode_for(path: Path) -> bool:
    """True when an overlay file should be executable on the disc (any x bit set)."""
    return bool(path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
