"""A StackOps disc served over the network straight from its ISO (issue 13).

`serve --disc stackops.iso` opens the image once, lists it (Rock Ridge names, symlinks, the byte
extent of every file in the image) and closes it: requests are then answered from that listing
with os.sendfile on the ISO file itself. Nothing is extracted or copied.

- The package archive (`dists/`, `pool/`, and the same through the disc's `ubuntu -> .` and
  `dists/stable -> lucid` symlinks) is a plain HTTP mirror for the installer's apt.
- The netboot kernel and initrd come from `install/netboot/ubuntu-installer/<arch>/` (lucid's
  server disc carries the unpacked netboot.tar.gz there). The initrd gets, appended as one more
  gzip'd cpio archive, exactly the layer `build` appends to the CD's install/initrd.gz
  (seed/preseed.py initrd_files: preseed.cfg, early.sh, late.sh, the question table).

A URL path is decoded once and then walked name by name through the disc's own directory tree:
`..`, `.`, empty names, a second level of %-encoding, backslashes and control characters are
refused, and a symlink is followed only while its target stays inside the disc (an absolute
target, or one climbing above the root, is refused). What a path finally names must be a regular
file below dists/ or pool/.
"""

from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from distro_builder.errors import IsoError
from distro_builder.imagemodel import EntryKind
from distro_builder.media.initrd import append_to_initrd
from distro_builder.media.iso import IsoImage
from distro_builder.model import RoleSet, SystemSettings
from distro_builder.seed.preseed import initrd_files
from distro_builder.smart_installer.errors import BadRequest, Forbidden, NotFound

log = logging.getLogger(__name__)

NETBOOT_DIR = "/install/netboot/ubuntu-installer"
ARCHIVE_TOPS = ("dists", "pool")
MAX_LINKS = 16
_ARCHIVE_HINT = "the mirror serves the files below dists/ and pool/ of the disc"
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\%]")


@dataclass(frozen=True, slots=True)
class Extent:
    """A file's bytes in the ISO file: [offset, offset + length)."""

    offset: int
    length: int


@dataclass
class ServedDisc:
    iso: Path
    codename: str
    version: str
    arches: tuple[str, ...]
    signed: bool  # dists/<codename>/Release.gpg present
    kinds: dict[str, EntryKind] = field(default_factory=dict)  # "/pool/main/..." -> kind
    targets: dict[str, str] = field(default_factory=dict)  # symlink path -> target
    extents: dict[str, Extent] = field(default_factory=dict)  # regular files
    initrd_layer: bytes = b""

    # --- the mirror ---------------------------------------------------------------------------

    def resolve(self, raw: str) -> tuple[str, Extent]:
        """The disc path and extent a URL path below the mirror names; NotFound / Forbidden."""
        try:
            text = unquote(raw, errors="strict")
        except UnicodeDecodeError as e:
            raise BadRequest("the path is not UTF-8") from e
        if _BAD_CHARS.search(text):
            raise Forbidden(
                "the path holds a control character, a backslash or a second %-encoding",
                hint=_ARCHIVE_HINT,
            )
        names = text.split("/")
        if text.endswith("/"):
            names.pop()
        if not names or any(n in ("", ".", "..") for n in names):
            raise Forbidden(
                "the path has an empty, '.' or '..' name: it must stay in the archive",
                hint=_ARCHIVE_HINT,
            )
        path = self._walk(names)
        top = path.split("/")[1]
        if top not in ARCHIVE_TOPS:
            raise Forbidden("only the package archive is served", hint=_ARCHIVE_HINT)
        if self.kinds.get(path) is not EntryKind.file:
            raise NotFound(f"{text[:120]} is a directory", hint=_ARCHIVE_HINT)
        return path, self.extents[path]

    def _walk(self, names: list[str]) -> str:
        """Follow `names` from the disc's root, symlinks included, never above the root."""
        todo = list(names)
        parts: list[str] = []
        hops = 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if not parts:
                    raise Forbidden("a symlink on the disc points outside it", hint=_ARCHIVE_HINT)
                parts.pop()
                continue
            if name in ("", "."):
                continue
            here = "/" + "/".join([*parts, name])
            kind = self.kinds.get(here)
            if kind is None:
                raise NotFound("not on the disc", hint=_ARCHIVE_HINT)
            if kind is EntryKind.symlink:
                hops += 1
                target = self.targets[here]
                if hops > MAX_LINKS:
                    raise Forbidden(
                        "too many symlinks on the way (a loop on the disc?)", hint=_ARCHIVE_HINT
                    )
                if target.startswith("/"):
                    raise Forbidden("a symlink on the disc points outside it", hint=_ARCHIVE_HINT)
                todo = target.split("/") + todo
                continue
            if kind is not EntryKind.dir and todo:
                raise NotFound("not on the disc", hint=_ARCHIVE_HINT)
            parts.append(name)
        return "/" + "/".join(parts)

    # --- netboot ------------------------------------------------------------------------------

    def kernel(self, arch: str) -> Extent:
        return self._netboot(arch, "linux")

    def initrd(self, arch: str) -> Extent:
        return self._netboot(arch, "initrd.gz")

    def _netboot(self, arch: str, name: str) -> Extent:
        if arch not in self.arches:
            raise NotFound(
                f"no netboot installer for {arch[:16]!r}",
                hint="the disc has: " + ", ".join(self.arches),
            )
        return self.extents[f"{NETBOOT_DIR}/{arch}/{name}"]


def open_disc(iso: Path, data_dir: Path, roleset: RoleSet) -> ServedDisc:
    """List `iso` for serving; IsoError when it is no install disc with a netboot tree."""
    with IsoImage(iso) as image:
        image.require_rock_ridge()
        entries = list(image.walk("/"))
        kinds = {e.path: e.kind for e in entries}
        arches = tuple(
            sorted(
                e.path.rsplit("/", 1)[1]
                for e in entries
                if e.kind is EntryKind.dir
                and posixpath.dirname(e.path) == NETBOOT_DIR
                and kinds.get(f"{e.path}/linux") is EntryKind.file
                and kinds.get(f"{e.path}/initrd.gz") is EntryKind.file
            )
        )
        if not arches:
            raise IsoError(
                f"{iso}: no netboot tree ({NETBOOT_DIR.lstrip('/')}/<arch>/linux and initrd.gz)",
                hint="a lucid server disc carries one; rebuild the demo base (`distro-builder "
                "demo-base`) or build from a disc that has install/netboot/",
            )
        codename, version, signed = "", "", False
        for e in entries:
            parent = posixpath.dirname(e.path)
            if e.kind is EntryKind.dir and parent == "/dists":
                release = image.read_text(f"{e.path}/Release")
                if release is None:
                    continue
                fields = {}
                for line in release.splitlines():
                    key, sep, value = line.partition(":")
                    if sep and not line.startswith(" "):
                        fields[key.strip()] = value.strip()
                codename = fields.get("Codename", e.path.rsplit("/", 1)[1])
                version = fields.get("Version", "")
                signed = f"{e.path}/Release.gpg" in kinds
                break
        if not codename:
            raise IsoError(f"{iso}: no dists/<codename>/Release: not an install disc")
        disc = ServedDisc(iso=Path(iso), codename=codename, version=version, arches=arches,
                          signed=signed, kinds=kinds)  # fmt: skip
        for e in entries:
            if e.kind is EntryKind.symlink:
                disc.targets[e.path] = e.target or ""
            elif e.kind is EntryKind.file:
                offset, length = image.extent(e.path)
                disc.extents[e.path] = Extent(offset, length)
    files = initrd_files(data_dir, roleset, SystemSettings())
    disc.initrd_layer = append_to_initrd(b"", files)
    log.info(
        "disc %s: %s %s, netboot %s, %d files served from the image",
        iso, codename, version, ",".join(arches), len(disc.extents),
    )  # fmt: skip
    return disc
