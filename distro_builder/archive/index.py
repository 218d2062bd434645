"""Archive indices: Packages stanzas and files, Release files, md5sum.txt, deterministic gzip.

Owns the text formats of a CD's archive metadata (see reference/lucid-and-nova.md §1.5-1.6):
`Packages` (read in any compression, written sorted), the top-level `dists/<codename>/Release` with
debian-cd's `" %s %8d %s"` hash lines, the per-component `binary-<arch>/Release` and `md5sum.txt`.
Besides debs.py it is the only importer of python-debian. Hashing streams, so files as large as an
ISO's pool need not be held in memory, and a Release can list content that is not on the disc (the
lucid CD lists uncompressed `Packages` files it deleted): give that content, or its `FileDigest`.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from functools import cmp_to_key
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from distro_builder.archive import deb822
from distro_builder.archive.debs import fold_field
from distro_builder.errors import ArchiveError

if TYPE_CHECKING:
    from debian.deb822 import Packages

    from distro_builder.archive.controls import ControlCache
    from distro_builder.model import IndexPackage

# python-debian is imported where it is used: its deb822 module pulls in its changelog parser,
# email.utils and subprocess (30-40 ms), and the remaster engine, which imports this module for
# md5sum.txt and the disc's Release, needs none of it.

Source = (
    bytes | bytearray | memoryview | BinaryIO | os.PathLike[str] | Callable[[], bytes | BinaryIO]
)
"""Content to hash: bytes, an open binary file, a path, or a callable returning bytes or a file
(called, and a returned file closed, only when that entry is hashed)."""

HASH_FIELDS: tuple[str, ...] = ("MD5Sum", "SHA1", "SHA256")
_STRIPPED_RELEASE_FIELDS = frozenset({"md5sum", "sha1", "sha256", "sha512"})
_CHUNK = 1 << 20


class FileDigest(NamedTuple):
    """Hashes and size of one file's content (hex digests, size in bytes)."""

    md5: str
    sha1: str
    sha256: str
    size: int


def _open_source(source: Source) -> tuple[bytes | None, BinaryIO | None, bool]:
    """(bytes, None, _) or (None, stream, close_it) for a Source."""
    if callable(source) and not hasattr(source, "read"):
        source = source()
        if isinstance(source, bytes | bytearray | memoryview):
            return bytes(source), None, False
        return None, source, True
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), None, False
    if isinstance(source, os.PathLike):
        return None, open(source, "rb"), True  # closed by _hash_source
    if hasattr(source, "read"):
        return None, source, False
    raise TypeError(f"cannot hash {type(source).__name__}: give bytes, a binary file or a path")


def _hash_source(source: Source, algorithms: tuple[str, ...]) -> tuple[list[str], int]:
    hashers = [hashlib.new(a) for a in algorithms]
    data, stream, close = _open_source(source)
    size = 0
    try:
        chunks: Iterable[bytes] = (
            [data] if data is not None else iter(lambda: stream.read(_CHUNK), b"")  # type: ignore[union-attr]
        )
        for chunk in chunks:
            size += len(chunk)
            for h in hashers:
                h.update(chunk)
    finally:
        if close and stream is not None:
            stream.close()
    return [h.hexdigest() for h in hashers], size


def file_digest(source: Source) -> FileDigest:
    """MD5, SHA1, SHA256 and size of `source`, read once in 1 MiB chunks."""
    (md5, sha1, sha256), size = _hash_source(source, ("md5", "sha1", "sha256"))
    return FileDigest(md5, sha1, sha256, size)


def sums_from_index(data: bytes, pkg: IndexPackage) -> FileDigest | None:
    """The sums the index gives `pkg`, as `data`'s own when `data` is that file (its size and
    SHA-256 match): one hash pass instead of file_digest's three (MD5 is the slow one, about
    750 MB/s here). None when the index lacks a sum or `data` is another file."""
    if not (pkg.md5 and pkg.sha1 and pkg.sha256) or len(data) != pkg.size:
        return None
    if hashlib.sha256(data).hexdigest() != pkg.sha256.lower():
        return None
    return FileDigest(pkg.md5.lower(), pkg.sha1.lower(), pkg.sha256.lower(), pkg.size)


def gzip_bytes(data: bytes, *, mtime: int = 0) -> bytes:
    """gzip -9n: deterministic (fixed mtime, no file name in the header)."""
    return gzip.compress(data, compresslevel=9, mtime=mtime)


def decompress(data: bytes, name: str) -> bytes:
    """Plain, gzip, bzip2 or xz content, chosen by magic bytes; `name` is used in errors."""
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data)
        if data[:3] == b"BZh":
            return bz2.decompress(data)
        if data[:6] == b"\xfd7zXZ\x00":
            return lzma.decompress(data)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as e:
        raise ArchiveError(
            f"{name} is corrupt: {e}", hint="fetch it again or check the medium"
        ) from e
    return data


def _paragraph(fields: Mapping[str, str]) -> str:
    return "".join(fold_field(k, v) for k, v in fields.items())


def _check_relpath(path: str, what: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ArchiveError(
            f"Invalid {what} path {path!r}", hint="use a relative path like pool/main/n/nova/x.deb"
        )
    return path


def python_debian_version() -> str:
    """python-debian's version, "" when unknown: from its own _version module, as importing
    importlib.metadata and scanning site-packages costs 15-25 ms of every build."""
    try:
        from debian._version import __version__ as version  # see the imports

        return str(version)
    except ImportError:
        pass
    try:
        from importlib.metadata import version as installed

        return installed("python-debian")
    except Exception:  # noqa: BLE001 - no metadata either
        return ""


def _read_control(deb: bytes, filename: str) -> dict[str, str]:
    from debian import arfile, debfile  # see the imports

    try:
        with debfile.DebFile(fileobj=io.BytesIO(deb)) as pkg:
            control = pkg.debcontrol()
    except (debfile.DebError, arfile.ArError, tarfile.TarError, OSError, EOFError, KeyError) as e:
        raise ArchiveError(
            f"{filename} is not a readable .deb: {e}", hint="rebuild or fetch the package again"
        ) from e
    missing = [f for f in ("Package", "Version", "Architecture") if not control.get(f)]
    if missing:
        raise ArchiveError(
            f"{filename}: control lacks {', '.join(missing)}", hint="rebuild the package"
        )
    return {str(k): str(v) for k, v in control.items()}


def packages_stanza(
    deb_bytes: bytes,
    filename: str,
    *,
    digest: FileDigest | None = None,
    controls: ControlCache | None = None,
) -> dict[str, str]:
    """The Packages stanza of a .deb/.udeb stored at `filename` (archive-relative).

    Control fields in their order, with Filename, Size, MD5sum, SHA1, SHA256 inserted before
    Description (apt-ftparchive's placement). Multi-line values keep their leading spaces.
    `digest`: the sums of `deb_bytes` when the caller knows them already (sums_from_index);
    otherwise they are computed. `controls`: control fields kept by the bytes' SHA-256
    (archive/controls.py), read from the .deb only when not kept there.
    """
    _check_relpath(filename, "Filename")
    if digest is None:
        digest = file_digest(deb_bytes)
    if controls is not None:
        control = controls.fields(digest.sha256.lower(), lambda: _read_control(deb_bytes, filename))
    else:
        control = _read_control(deb_bytes, filename)
    index = {
        "Filename": filename,
        "Size": str(digest.size),
        "MD5sum": digest.md5,
        "SHA1": digest.sha1,
        "SHA256": digest.sha256,
    }
    stanza: dict[str, str] = {}
    ours = {k.lower() for k in index}
    for key, value in control.items():
        if key.lower() in ours:
            continue  # the file's own place, size and hashes, never what its control file says
        if key == "Description":
            stanza.update(index)
        stanza[key] = value
    if "Filename" not in stanza:
        stanza.update(index)
    return stanza


def _stanza_order(a: Mapping[str, str], b: Mapping[str, str]) -> int:
    from debian.debian_support import version_compare  # see the imports

    if a["Package"] != b["Package"]:
        return -1 if a["Package"] < b["Package"] else 1
    by_version = version_compare(a.get("Version", "0"), b.get("Version", "0"))
    if by_version:
        return by_version
    arch_a, arch_b = a.get("Architecture", ""), b.get("Architecture", "")
    return (arch_a > arch_b) - (arch_a < arch_b)


def render_packages(stanzas: Iterable[Mapping[str, str]]) -> str:
    """A Packages file: stanzas sorted by Package then Version (dpkg order) then Architecture.

    Each stanza keeps its field order and is followed by a blank line (as apt-ftparchive writes).
    """
    items = list(stanzas)
    for s in items:
        if not s.get("Package"):
            raise ArchiveError(
                f"Packages stanza without a Package field: {dict(s)!r}",
                hint="build stanzas with packages_stanza()",
            )
    return "".join(_paragraph(s) + "\n" for s in sorted(items, key=cmp_to_key(_stanza_order)))


def read_packages(data: bytes, name: str) -> list[Packages]:
    """Parse a Packages (or debian-installer Packages) index, plain or gz/bz2/xz compressed.

    `name` (e.g. `dists/lucid/main/binary-amd64/Packages.gz`) appears in errors.
    """
    from debian.deb822 import Packages  # see the imports

    stanzas = [Packages(s) for s in deb822.parse(decompress(data, name), name)]
    for i, stanza in enumerate(stanzas, 1):
        if "Package" not in stanza:
            raise ArchiveError(
                f"{name}: stanza {i} has no Package field",
                hint="is this really a Packages file?",
            )
    return stanzas


def parse_provides(text: str) -> list[tuple[str, str | None]]:
    """The names a `Provides:` field provides, each with its version when it is `(= version)`,
    the only versioned Provides that satisfies a versioned relation (python-debian's parser)."""
    from debian.deb822 import PkgRelation  # see the imports

    out = []
    for alternatives in PkgRelation.parse_relations(text) if text.strip() else ():
        for rel in alternatives:
            ver = rel.get("version")
            out.append((rel["name"], ver[1] if ver and ver[0] == "=" else None))
    return out


Release = dict[str, Any]
"""A Release file's fields (str; the standard ones under their usual spelling, in whatever case
the file wrote them), except its hash lists (MD5Sum, SHA1, SHA256, SHA512: any case), which are
lists of {"md5sum"|"sha1"|...: hex, "size": str, "name": str} under their canonical names, as
python-debian's Release gives them."""

_RELEASE_HASH_LISTS = {name.lower(): name for name in (*HASH_FIELDS, "SHA512")}
# Field names are not case-sensitive (Debian Policy 5.1): these come out as spelled here,
# whatever the file wrote, so `release.get("Codename")` finds `codename: lucid` too.
_RELEASE_FIELDS = {
    name.lower(): name
    for name in (
        "Origin", "Label", "Suite", "Version", "Codename", "Date", "Valid-Until",
        "Architectures", "Components", "Description", "Acquire-By-Hash", "Changelogs",
        "NotAutomatic", "ButAutomaticUpgrades", "Signed-By", "No-Support-for-Architecture-all",
    )
}  # fmt: skip


def read_release(data: bytes, name: str) -> Release:
    """Parse a Release file (fields plus the MD5Sum/SHA1/SHA256 lists); `name` is for errors.

    Read with the one deb822 reader (archive/deb822.py); a hash line that is not
    `<hex> <size> <path>` is an ArchiveError naming it.
    """
    stanzas = deb822.parse(data, name)
    if not stanzas or not stanzas[0]:
        raise ArchiveError(f"{name} has no fields", hint="is this really a Release file?")
    release: Release = {}
    for key, value in stanzas[0].items():
        canonical = _RELEASE_HASH_LISTS.get(key.lower())
        if canonical is None:
            release[_RELEASE_FIELDS.get(key.lower(), key)] = value
            continue
        entries = []
        for line in value.splitlines():
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise ArchiveError(
                    f"{name}: {key} line {line.strip()[:80]!r} is not '<hash> <size> <path>'",
                    hint="the Release file is damaged or not a Release; re-fetch it or fix the "
                    "repository",
                )
            entries.append(dict(zip((canonical.lower(), "size", "name"), parts, strict=True)))
        release[canonical] = entries
    return release


def release_checksums(release: Mapping[str, object]) -> dict[str, tuple[str, str, int]]:
    """{path: (algorithm, hex, size)} of the files a Release covers, its strongest algorithm each.

    A path missing here is vouched for by nothing: the caller must not read it unchecked.
    """
    out: dict[str, tuple[str, str, int]] = {}
    for fld, algorithm in zip(HASH_FIELDS, ("md5", "sha1", "sha256"), strict=True):
        for entry in release.get(fld, []) or []:  # type: ignore[attr-defined]
            size = entry["size"]
            if not size.isdigit():
                raise ArchiveError(
                    f"Release: {fld} line of {entry['name']}: size {size[:20]!r} is not a number",
                    hint="the Release file is damaged or not a Release; re-fetch it or fix the "
                    "repository",
                )
            out[entry["name"]] = (algorithm, entry[fld.lower()], int(size))
    return out


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def release_date(epoch: int) -> str:
    """A Release `Date:` for a Unix time, locale-independent: `Thu, 29 Apr 2010 17:24:52 UTC`."""
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC"
    )


def render_release(
    fields: Mapping[str, str], files: Mapping[str, Source | FileDigest | tuple[str, str, str, int]]
) -> str:
    """An archive Release: `fields` in their order, then MD5Sum:, SHA1:, SHA256: blocks.

    `files` maps a path relative to the Release file's directory to its content (any Source) or
    to a precomputed FileDigest (or a plain (md5, sha1, sha256, size) tuple). The content need
    not exist on the disc, which expresses the lucid CD's quirk of listing the deleted
    uncompressed Packages. Lines are debian-cd's
    `" %s %8d %s"` (size right-aligned in 8 columns), sorted by path. Hash fields already in
    `fields` (e.g. from the mirror's Release) are dropped, as debian-cd strips them.
    """
    header = {k: v for k, v in fields.items() if k.lower() not in _STRIPPED_RELEASE_FIELDS}
    digests: dict[str, FileDigest] = {}
    for path, value in files.items():
        _check_relpath(path, "Release entry")
        if isinstance(value, tuple):
            digests[path] = FileDigest(*value)
        else:
            digests[path] = file_digest(value)
    out = [_paragraph(header)]
    for field, index in (("MD5Sum", 0), ("SHA1", 1), ("SHA256", 2)):
        out.append(f"{field}:\n")
        for path in sorted(digests):
            d = digests[path]
            out.append(f" {d[index]} {d.size:8d} {path}\n")  # printf " %s %8d %s\n"
    return "".join(out)


def render_component_release(
    archive: str, version: str, component: str, origin: str, label: str, arch: str
) -> str:
    """`dists/<codename>/<component>/binary-<arch>/Release` as the lucid CD/mirror ships it."""
    return _paragraph(
        {
            "Archive": archive,
            "Version": version,
            "Component": component,
            "Origin": origin,
            "Label": label,
            "Architecture": arch,
        }
    )


def md5sum_txt(
    files: Mapping[str, Source] | Iterable[tuple[str, Source]],
    *,
    known: Mapping[str, str] | None = None,
) -> str:
    """debian-cd's md5sum.txt: `<md5>  ./<path>` lines sorted by path.

    `files` is a mapping or an iterable of (path, Source) pairs; paths may be given as `a/b`,
    `./a/b` or `/a/b`. Entries are hashed one at a time, streaming, so pass paths, open files or
    callables for large content; an entry whose path (`a/b`) is in `known` takes that MD5
    instead and its source is never opened. Choosing which files to list (debian-cd leaves out
    md5sum.txt, `dists/stable` etc.) is the caller's job.
    """
    pairs = files.items() if isinstance(files, Mapping) else files
    lines: dict[str, str] = {}
    for raw, source in pairs:
        path = raw[2:] if raw.startswith("./") else raw.lstrip("/")
        _check_relpath(path, "md5sum.txt entry")
        if path in lines:
            raise ArchiveError(f"md5sum.txt entry ./{path} given twice", hint="list each file once")
        md5 = known.get(path) if known is not None else None
        if md5 is None:
            (md5,), _ = _hash_source(source, ("md5",))
        lines[path] = _md5sum_line(md5, path)
    return "".join(lines[p] for p in sorted(lines))


def _md5sum_line(md5: str, path: str) -> str:
    """One line as GNU md5sum writes it: a name holding a newline or a backslash is escaped
    (`\\n`, `\\\\`) and the line starts with a backslash (coreutils manual, "md5sum
    invocation"), so a newline in a name can never make a line of its own."""
    if "\n" in path or "\\" in path:
        return "\\" + md5 + "  ./" + path.replace("\\", "\\\\").replace("\n", "\\n") + "\n"
    return f"{md5}  ./{path}\n"


def _md5sum_unescape(raw: str) -> str | None:
    out, chars = [], iter(raw)
    for c in chars:
        if c == "\\":
            c = {"\\": "\\", "n": "\n"}.get(next(chars, ""), "")
            if not c:
                return None
        out.append(c)
    return "".join(out)


def read_md5sum_txt(text: str) -> dict[str, str]:
    """The `path -> md5` of an md5sum.txt (`<md5>  ./<path>`; paths as `a/b`).

    Lines that are not an MD5 and a path are skipped: the result only ever saves re-reading a
    file, so a line it cannot use costs a hash, never a wrong entry.
    """
    out: dict[str, str] = {}
    for line in text.split("\n"):  # not splitlines(): a name may hold a \r or \x1c
        escaped = line.startswith("\\")
        md5, sep, raw = line[escaped:].partition("  ")
        if escaped and sep:
            raw = _md5sum_unescape(raw) or ""
        if not sep or len(md5) != 32 or not raw:
            continue
        try:
            int(md5, 16)
        except ValueError:
            continue
        path = raw[2:] if raw.startswith("./") else raw.lstrip("/")
        out[path] = md5.lower()
    return out
