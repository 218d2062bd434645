"""Output checks of a disc's archive (`distro-builder verify`).

- release: every MD5Sum/SHA1/SHA256 line of `dists/<codename>/Release` names a file that exists
  and matches (the lucid disc lists absent uncompressed Packages files: reported here);
- pool: every package of every index is on the disc with the size and hash its index gives;
- closure: every Depends/Pre-Depends of every package in the binary indexes is satisfiable
  inside the disc (what dose-debcheck checks), and each package's whole closure resolves;
- preseed: every package a preseed on the disc names in `pkgsel/include` is on the disc.

Returns plain records; cli/ formats them. Nothing here writes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distro_builder.archive import index
from distro_builder.archive.resolve import Universe, parse_relations, resolve
from distro_builder.archive.sources import read_disc_packages
from distro_builder.errors import ArchiveError, DependencyError
from distro_builder.imagemodel import EntryKind
from distro_builder.media.iso import IsoImage
from distro_builder.media.layout import detect_flavor
from distro_builder.model import IndexPackage
from distro_builder.packageset import image_reader

_PKGSEL = re.compile(r"^\s*\S+\s+pkgsel/include\s+string\s*(.*)$")
_MAX_PROBLEMS = 200


@dataclass(slots=True)
class Check:
    """One check: its name, what it looked at, and what is wrong."""

    name: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(message)


def _release_check(image: IsoImage, release_path: str) -> Check:
    check = Check("release")
    base = release_path.rsplit("/", 1)[0]
    release = index.read_release(image.read(release_path), release_path)
    algorithms = (
        ("MD5Sum", "md5", "md5sum"),
        ("SHA1", "sha1", "sha1"),
        ("SHA256", "sha256", "sha256"),
    )
    for fld, algo, key in algorithms:
        for entry in release.get(fld, []) or []:
            check.checked += 1
            path = f"{base}/{entry['name']}"
            found = image.lookup(path)
            if found is None or found.kind is not EntryKind.file:
                check.fail(f"{fld}: {entry['name']} is listed but absent")
                continue
            data = image.read(path)
            if len(data) != int(entry["size"]):
                check.fail(
                    f"{fld}: {entry['name']}: size {len(data)}, Release says {entry['size']}"
                )
            elif hashlib.new(algo, data).hexdigest() != entry[key]:
                check.fail(f"{fld}: {entry['name']}: hash does not match")
    if not check.checked:
        check.fail(f"{release_path} lists no files")
    return check


def _pool_check(image: IsoImage, packages: Sequence[IndexPackage]) -> Check:
    check = Check("pool")
    for p in packages:
        check.checked += 1
        path = "/" + p.filename
        found = image.lookup(path)
        if found is None or found.kind is not EntryKind.file:
            check.fail(f"{p.key} ({p.origin}): {p.filename} is missing")
            continue
        if found.size != p.size:
            check.fail(f"{p.key}: {p.filename} has {found.size} bytes, the index says {p.size}")
            continue
        algo, want = ("sha256", p.sha256) if p.sha256 else ("md5", p.md5)
        h = hashlib.new(algo)
        with image.open_file(path) as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != want.lower():
            check.fail(f"{p.key}: {p.filename} does not match its {algo.upper()}")
    return check


def _closure_check(packages: Sequence[IndexPackage], arch: str) -> Check:
    check = Check("closure")
    universe = Universe([packages], arch)
    for p in packages:
        if p.arch not in (arch, "all"):
            continue
        check.checked += 1
        for group in universe.dependencies(p):
            if not any(
                universe.real_candidates(rel) or universe.provider_candidates(rel) for rel in group
            ):
                alts = " | ".join(str(r) for r in group)
                check.fail(f"{p.key} ({p.origin}): {alts}: {universe.why_not(group[0])}")
    if check.ok:  # direct relations hold: also resolve every package's whole closure
        for name in sorted({p.name for p in packages}):
            try:
                resolve([name], universe)
            except DependencyError as e:
                check.fail(str(e))
    return check


def _preseed_check(image: IsoImage, packages: Sequence[IndexPackage]) -> Check:
    check = Check("preseed")
    names = {p.name for p in packages}
    for p in packages:
        for group in parse_relations(p.provides) if p.provides else ():
            names.update(r.name for r in group)
    if image.lookup("/preseed") is None:
        return check
    for entry in image.walk("/preseed"):
        if entry.kind is not EntryKind.file or not entry.path.endswith((".seed", ".cfg")):
            continue
        text = image.read_text(entry.path) or ""
        for n, line in enumerate(text.splitlines(), 1):
            m = _PKGSEL.match(line)
            if not m:
                continue
            for pkg in re.split(r"[\s,]+", m.group(1).strip()):
                if not pkg:
                    continue
                check.checked += 1
                if pkg not in names:
                    check.fail(f"{entry.path}:{n}: pkgsel/include names {pkg}, not on the disc")
    return check


def verify_archive(path: Path) -> list[Check]:
    """Run the archive checks on the ISO at `path`. Raises IsoError for an unreadable disc."""
    with IsoImage(Path(path)) as image:
        flavor = detect_flavor(image)
        arch = flavor.architectures[0] if flavor.architectures else "amd64"
        read = image_reader(image)
        try:
            debs = list(read_disc_packages(read, flavor))
            udebs = list(read_disc_packages(read, flavor, udebs=True))
        except ArchiveError as e:
            broken = Check("pool")
            broken.fail(str(e))
            return [_release_check(image, flavor.release_path), broken]
        return [
            _release_check(image, flavor.release_path),
            _pool_check(image, debs + udebs),
            _closure_check(debs, arch),
            _preseed_check(image, debs),
        ]
