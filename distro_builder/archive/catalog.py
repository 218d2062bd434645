"""Packages indexes prepared for the resolver (a Catalog), and the cache that keeps them.

A Catalog holds the packages of one or more Packages indexes as compact rows grouped by name,
and which names each package provides. IndexPackage objects are made only for the names that
are asked for (`named`, `providing`), then kept. Debian 12's main index has 63,440 packages; a
role's resolution looks at a few thousand. Making all 63,440 frozen dataclasses took 0.24-0.34 s.

`read_catalog()` turns an index as fetched (any compression) into a Catalog. Each stanza's
`Filename:` and `Size:` are checked on the way, and its Provides are parsed once. The result
goes into a cache under `<cache>/parsed/`, whose key has two parts: the index's SHA-256, and a
fingerprint of the code that builds the rows (this module, deb822.py, fetch.py's Filename
rules, python-debian's and apt_pkg's versions, Python's marshal format). A changed reader
never serves rows it would not build. Entries are written to a temporary file that is then
renamed into place, and their CRC-32 is checked on load. A damaged entry is built again;
nothing crashes on it. Entries of other code versions are removed when one is written, and the
least recently used ones beyond KEEP_BYTES (256 MB: about ten of Debian main's).

Cache formats measured on that index (load time, one run, same machine):
- a tuple of 16 strings per package (marshal, 27 MB): 0.08-0.17 s;
- the same with pickle: 0.095 s;
- one string per package, its fields joined by NUL, grouped by name (marshal, 26 MB): 0.045 s.
The last one is used. A field may not hold a NUL (the index is refused), so the split is exact.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import marshal
import os
import struct
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path

from distro_builder import __version__
from distro_builder.archive import deb822, fetch, index
from distro_builder.archive.fetch import check_filename
from distro_builder.errors import ArchiveError
from distro_builder.model import IndexPackage

log = logging.getLogger(__name__)

# The fields an IndexPackage is made of, in its order (origin, repo and on_disc come from the
# index, not the stanza).
INDEX_FIELDS = (
    "Package", "Version", "Architecture", "Depends", "Pre-Depends", "Provides", "Conflicts",
    "Breaks", "Multi-Arch", "Source", "Section", "Filename", "Size", "SHA256", "SHA1", "MD5sum",
)  # fmt: skip
_SOURCE, _FILENAME, _SIZE = 9, 11, 12
CACHE_FORMAT = "catalog-1"  # bump when the cached structure changes
_MAGIC = b"DBCATLG1"
# What the cache keeps: entries used most recently first (a hit moves its entry's mtime).
KEEP_BYTES = 256 << 20

# (provider name, its place among the packages of that name, the version provided or None)
Provider = tuple[str, int, str | None]
_Rows = Mapping[str, tuple["str | IndexPackage", ...]]
_Provides = Mapping[str, tuple[Provider, ...]]


class _Part:
    """The packages of one index (or one list of IndexPackages), by name."""

    def __init__(
        self, rows: _Rows, provides: _Provides, count: int, *, origin: str, repo: str, on_disc: bool
    ) -> None:
        self.rows, self.provides, self.count = rows, provides, count
        self.origin, self.repo, self.on_disc = origin, repo, on_disc
        self._made: dict[str, tuple[IndexPackage, ...]] = {}

    def named(self, name: str) -> tuple[IndexPackage, ...]:
        made = self._made.get(name)
        if made is None:
            made = tuple(
                r if isinstance(r, IndexPackage) else self._make(r) for r in self.rows.get(name, ())
            )
            self._made[name] = made
        return made

    def _make(self, row: str) -> IndexPackage:
        f = row.split("\0")
        return IndexPackage(
            f[0], f[1], f[2], self.origin, f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11],
            int(f[12]), f[13], f[14], f[15], self.repo, self.on_disc,
        )  # fmt: skip


class Catalog:
    """Packages from one or more indexes, looked up by name; iterating makes every one."""

    def __init__(self, parts: Iterable[_Part] = ()) -> None:
        self._parts = tuple(parts)

    @classmethod
    def of(cls, packages: Iterable[IndexPackage]) -> Catalog:
        """A Catalog of IndexPackages already made (the disc, local .debs, tests)."""
        rows: dict[str, list[IndexPackage]] = {}
        provides: dict[str, list[Provider]] = {}
        count = 0
        for pkg in packages:
            same = rows.setdefault(pkg.name, [])
            for name, version in index.parse_provides(pkg.provides) if pkg.provides else ():
                provides.setdefault(name, []).append((pkg.name, len(same), version))
            same.append(pkg)
            count += 1
        frozen = {k: tuple(v) for k, v in rows.items()}
        part = _Part(
            frozen, {k: tuple(v) for k, v in provides.items()}, count,
            origin="", repo="", on_disc=False,
        )  # fmt: skip
        return cls([part])

    @classmethod
    def join(cls, catalogs: Iterable[Catalog]) -> Catalog:
        """One Catalog of several, in their order."""
        return cls(part for c in catalogs for part in c._parts)

    def __len__(self) -> int:
        return sum(p.count for p in self._parts)

    def __iter__(self) -> Iterator[IndexPackage]:
        """Every package, index by index, each index's packages grouped by name."""
        for part in self._parts:
            for name in part.rows:
                yield from part.named(name)

    def named(self, name: str) -> list[IndexPackage]:
        """Every package called `name` (any architecture), in index order."""
        return [p for part in self._parts for p in part.named(name)]

    def providing(self, name: str) -> list[tuple[IndexPackage, str | None]]:
        """Every package whose Provides names `name`, with the version provided (`= v`) or None."""
        return [
            (part.named(provider)[n], version)
            for part in self._parts
            for provider, n, version in part.provides.get(name, ())
        ]

    def names(self) -> set[str]:
        """Every package name, and every name provided."""
        out: set[str] = set()
        for part in self._parts:
            out.update(part.rows)
            out.update(part.provides)
        return out


# -- reading an index --------------------------------------------------------------------------


def to_index_package(
    stanza: Mapping[str, str], *, origin: str, repo: str, on_disc: bool = False, flat: bool
) -> IndexPackage:
    """An IndexPackage from a Packages stanza (Filename and Size checked)."""
    fields = [str(stanza.get(k, "") or "").strip() for k in INDEX_FIELDS]
    f = _checked(fields, origin=origin, flat=flat, on_disc=on_disc)
    return IndexPackage(
        f[0], f[1], f[2], origin, f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11],
        int(f[12]), f[13], f[14], f[15], repo, on_disc,
    )  # fmt: skip


def _checked(fields: list[str], *, origin: str, flat: bool, on_disc: bool) -> list[str]:
    """A stanza's INDEX_FIELDS as an IndexPackage holds them: Filename checked, Size a number
    (as text), Source without its version."""
    filename = fields[_FILENAME]
    if filename or not on_disc:
        check_filename(filename, flat=flat, where=origin)
    try:
        fields[_SIZE] = str(int(fields[_SIZE] or 0))
    except ValueError:
        raise ArchiveError(f"{origin}: {fields[0]}: Size is not a number") from None
    fields[_SOURCE] = fields[_SOURCE].split(" ", 1)[0]
    return fields


def read_catalog(
    raw: bytes,
    name: str,
    *,
    origin: str,
    repo: str,
    flat: bool,
    on_disc: bool = False,
    cache_dir: Path | None = None,
    sha256: str | None = None,
) -> Catalog:
    """The Catalog of Packages index `raw` as fetched (any compression); `name` is for errors.

    Through the cache under `cache_dir` (None: no cache). `sha256` is the hex SHA-256 of `raw`
    when the caller has it (the Release's, just checked). Raises ArchiveError for an index that
    is not one, or holds a Filename or Size it must not.
    """
    path = None
    if cache_dir is not None:
        digest = sha256 or hashlib.sha256(raw).hexdigest()
        key = f"{digest}.{'flat' if flat else 'dists'}{'.disc' if on_disc else ''}.{_code()}"
        path = cache_dir / "parsed" / key
    payload = _load(path) if path is not None else None
    if payload is None:
        payload = _prepare(raw, name, origin=origin, flat=flat, on_disc=on_disc)
        if path is not None:
            _store(path, payload, name)
    rows, provides, count = payload
    return Catalog([_Part(rows, provides, count, origin=origin, repo=repo, on_disc=on_disc)])


_Payload = tuple[dict[str, tuple[str, ...]], dict[str, tuple[Provider, ...]], int]


def _prepare(raw: bytes, name: str, *, origin: str, flat: bool, on_disc: bool) -> _Payload:
    rows: dict[str, list[str]] = {}
    provides: dict[str, list[Provider]] = {}
    stanzas = deb822.parse_fields(index.decompress(raw, name), name, INDEX_FIELDS)
    for n, values in enumerate(stanzas, 1):
        if not values[0]:
            raise ArchiveError(
                f"{name}: stanza {n} has no Package field", hint="is this a Packages file?"
            )
        fields = _checked(list(values), origin=origin, flat=flat, on_disc=on_disc)
        row = "\0".join(fields)
        if row.count("\0") != len(INDEX_FIELDS) - 1:
            raise ArchiveError(
                f"{name}: stanza {n} ({fields[0]}): a field holds a NUL character",
                hint="the index is broken or hostile; do not use this repository",
            )
        same = rows.setdefault(fields[0], [])
        if fields[5]:
            for provided, version in index.parse_provides(fields[5]):
                provides.setdefault(provided, []).append((fields[0], len(same), version))
        same.append(row)
    return (
        {k: tuple(v) for k, v in rows.items()},
        {k: tuple(v) for k, v in provides.items()},
        len(stanzas),
    )


@cache
def _code() -> str:
    """A fingerprint of what builds the cached rows: a change to any of it is a new key."""
    h = hashlib.sha256(CACHE_FORMAT.encode())
    h.update(f"{sys.version_info[:2]} marshal {marshal.version}".encode())
    h.update(f"apt_pkg {getattr(deb822._apt_pkg, 'VERSION', None)}".encode())
    h.update(f"python-debian {index.python_debian_version()}".encode())
    for module in (sys.modules[__name__], deb822, fetch):
        try:
            h.update(Path(module.__file__ or "").read_bytes())
        except OSError:  # no source file (a frozen build): the release stands for it
            h.update(f"{module.__name__} {__version__}".encode())
    return h.hexdigest()[:16]


def _load(path: Path) -> _Payload | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.debug("%s: cannot read (%s), parsing again", path, e)
        return None
    head = len(_MAGIC) + 4
    if (
        len(data) > head
        and data.startswith(_MAGIC)
        and struct.unpack_from("<I", data, len(_MAGIC))[0] == zlib.crc32(memoryview(data)[head:])
    ):
        try:
            payload = marshal.loads(memoryview(data)[head:])
        except (ValueError, EOFError, TypeError):
            payload = None
        if (
            isinstance(payload, tuple)
            and len(payload) == 3
            and isinstance(payload[0], dict)
            and isinstance(payload[1], dict)
            and isinstance(payload[2], int)
        ):
            with contextlib.suppress(OSError):
                os.utime(path)  # used now: the last entry _prune removes
            return payload  # type: ignore[return-value]
    log.debug("%s: damaged, parsing again", path)
    return None


def _store(path: Path, payload: _Payload, name: str) -> None:
    """Write `payload` at `path` atomically; a cache that cannot be written only costs time."""
    body = marshal.dumps(payload)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + struct.pack("<I", zlib.crc32(body)))
            f.write(body)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        log.debug("cannot cache %s: %s", name, e)
    finally:
        if tmp is not None:  # a full disk or a signal: no .part file stays
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _prune(path)


def _prune(path: Path) -> None:
    """Remove the entries another version of the code wrote (they are never read again), then
    the least recently used ones beyond KEEP_BYTES: a mirror's index changes several times a
    day, and each of Debian main's is a 26 MB entry. `path`, just written, always stays."""
    keep: list[tuple[float, int, Path]] = []
    suffix = "." + _code()
    with contextlib.suppress(OSError):
        for other in path.parent.iterdir():
            if other.name.startswith(".") or other == path:
                continue
            with contextlib.suppress(OSError):
                if not other.name.endswith(suffix):
                    other.unlink()
                    continue
                st = other.stat()
                keep.append((st.st_mtime, st.st_size, other))
    with contextlib.suppress(OSError):
        total = path.stat().st_size
        for _, size, other in sorted(keep, reverse=True):  # the most recently used first
            total += size
            if total > KEEP_BYTES:
                with contextlib.suppress(OSError):
                    other.unlink()
