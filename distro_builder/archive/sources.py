"""Package sources: apt source lines -> RepoSpec, repositories and the disc -> IndexPackage lists.

A source is written as apt writes it (`deb [arch=amd64 signed-by=KEYRING] URL SUITE COMPONENT...`,
`trusted=yes` to say "unsigned on purpose"), or as a bare local directory of .debs. URLs may be
`file://`, a plain path or `http(s)://`. Indexes are read in any compression archives use
(xz, bz2, gz, plain), each one checked against the Release's SHA256 (MD5Sum for old archives);
the Release is checked with gpgv when a keyring is given, and a source without one is announced
loudly as unauthenticated. Every `Filename:` is checked before it is trusted.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from distro_builder.archive import deb822, index, sign
from distro_builder.archive.fetch import Fetcher, check_filename, join_url, url_to_path
from distro_builder.errors import ArchiveError, ConfigError
from distro_builder.model import Flavor, IndexPackage, RepoSpec

log = logging.getLogger(__name__)

INDEX_NAMES = ("Packages.xz", "Packages.bz2", "Packages.gz", "Packages")


@dataclass(frozen=True, slots=True)
class Repository:
    """A read repository: its packages and whether its Release signature was checked."""

    spec: RepoSpec
    packages: tuple[IndexPackage, ...]
    authenticated: bool
    release: tuple[tuple[str, str], ...] = ()


def describe(spec: RepoSpec) -> str:
    """The apt source line of `spec`."""
    opts = [f"arch={spec.arch}"]
    if spec.keyring:
        opts.append(f"signed-by={spec.keyring}")
    if spec.trusted:
        opts.append("trusted=yes")
    tail = " ".join(spec.components)
    return f"deb [{' '.join(opts)}] {spec.url} {spec.suite or './'}" + (f" {tail}" if tail else "")


def parse_source_line(line: str, *, arch: str = "amd64", where: str = "") -> RepoSpec:
    """`deb [options] URL SUITE [COMPONENT...]` (the leading `deb` may be left out).

    Options: arch=, signed-by= (a keyring file), trusted=yes.
    """
    ctx = f" ({where})" if where else ""
    text = line.strip()
    options: dict[str, str] = {}
    if text.startswith("deb-src"):
        raise ConfigError(f"source lines are not used: {line!r}{ctx}", hint="use `deb ...` lines")
    if text.startswith("deb "):
        text = text[4:].strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"unclosed '[' in {line!r}{ctx}", hint="deb [arch=amd64] URL SUITE")
        for opt in text[1:end].split():
            key, sep, value = opt.partition("=")
            if not sep or not value:
                raise ConfigError(f"bad option {opt!r} in {line!r}{ctx}", hint="use key=value")
            options[key] = value
        text = text[end + 1 :].strip()
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ConfigError(f"cannot parse {line!r}{ctx}: {e}") from e
    unknown = sorted(set(options) - {"arch", "signed-by", "trusted"})
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} in {line!r}{ctx}",
            hint="supported: arch=, signed-by=, trusted=yes",
        )
    if not words:
        raise ConfigError(f"empty source line{ctx}", hint="deb [options] URL SUITE COMPONENT...")
    url = words[0]
    if "://" not in url and not url.startswith("/"):
        raise ConfigError(
            f"{url!r} is not a URL{ctx}",
            hint="give file:///path, /absolute/path or http(s)://host/path",
        )
    if "://" in url and not url.startswith(("file://", "http://", "https://")):
        raise ConfigError(
            f"unsupported URL scheme in {url!r}{ctx}", hint="use file://, http:// or https://"
        )
    suite = words[1] if len(words) > 1 else ""
    components = tuple(words[2:])
    if suite and not suite.endswith("/") and not components:
        raise ConfigError(
            f"{line!r}{ctx}: suite {suite!r} without components",
            hint="name the components (`lucid main universe`), or use `./` for a flat repository",
        )
    if suite.endswith("/") and components:
        raise ConfigError(f"{line!r}{ctx}: a flat repository ({suite}) has no components")
    if arch_opt := options.get("arch"):
        if "," in arch_opt:
            raise ConfigError(f"{line!r}{ctx}: one architecture per source", hint="arch=amd64")
        arch = arch_opt
    trusted = options.get("trusted", "no")
    if trusted not in ("yes", "no"):
        raise ConfigError(f"{line!r}{ctx}: trusted= takes yes or no")
    return RepoSpec(
        url=url.rstrip("/") if url != "/" else url,
        suite="" if suite in ("./", ".") else suite,
        components=components,
        arch=arch,
        keyring=options.get("signed-by"),
        trusted=trusted == "yes",
    )


def parse_repo_arg(arg: str, *, arch: str = "amd64") -> RepoSpec:
    """A `--repo` value: a source line, or an existing local directory of .debs (flat)."""
    path = Path(arg)
    if " " not in arg.strip() and not arg.startswith("[") and path.is_dir():
        return RepoSpec(url=str(path.resolve()), suite="", components=(), arch=arch)
    return parse_source_line(arg, arch=arch, where="--repo")


def read_sources_list(path: Path, *, arch: str = "amd64") -> tuple[RepoSpec, ...]:
    """A sources.list-style file: one `deb ...` line per source, `#` comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}", hint="check the path") from e
    except UnicodeDecodeError as e:
        line = Path(path).read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text", hint="save it as UTF-8 (iconv -t utf-8)"
        ) from e
    specs = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        specs.append(parse_source_line(line, arch=arch, where=f"{path}:{n}"))
    if not specs:
        raise ConfigError(f"{path}: no `deb ...` lines", hint="deb [options] URL SUITE COMPONENT")
    return tuple(specs)


# -- reading a repository ------------------------------------------------------------------------


def _field(stanza: Mapping[str, str], name: str) -> str:
    return str(stanza.get(name, "") or "").strip()


def to_index_package(
    stanza: Mapping[str, str], *, origin: str, repo: str, on_disc: bool = False, flat: bool
) -> IndexPackage:
    """An IndexPackage from a Packages stanza (Filename checked)."""
    filename = _field(stanza, "Filename")
    if filename or not on_disc:
        check_filename(filename, flat=flat, where=origin)
    try:
        size = int(_field(stanza, "Size") or 0)
    except ValueError:
        raise ArchiveError(f"{origin}: {_field(stanza, 'Package')}: Size is not a number") from None
    return IndexPackage(
        name=_field(stanza, "Package"),
        version=_field(stanza, "Version"),
        arch=_field(stanza, "Architecture"),
        origin=origin,
        depends=_field(stanza, "Depends"),
        pre_depends=_field(stanza, "Pre-Depends"),
        provides=_field(stanza, "Provides"),
        conflicts=_field(stanza, "Conflicts"),
        breaks=_field(stanza, "Breaks"),
        multi_arch=_field(stanza, "Multi-Arch"),
        source=_field(stanza, "Source").split(" ", 1)[0],
        section=_field(stanza, "Section"),
        filename=filename,
        size=size,
        sha256=_field(stanza, "SHA256"),
        sha1=_field(stanza, "SHA1"),
        md5=_field(stanza, "MD5sum"),
        repo=repo,
        on_disc=on_disc,
    )


def parse_index(data: bytes, name: str) -> list[dict[str, str]]:
    """A Packages index (any compression) as plain dicts (archive/deb822.py). Relations are
    parsed by python-debian, in resolve.py."""
    stanzas = deb822.parse(index.decompress(data, name), name)
    for n, stanza in enumerate(stanzas, 1):
        if "Package" not in stanza:
            raise ArchiveError(
                f"{name}: stanza {n} has no Package field", hint="is this a Packages file?"
            )
    return stanzas


# The fields to_index_package reads: what the parsed-index cache keeps of each stanza.
INDEX_FIELDS = (
    "Package", "Version", "Architecture", "Depends", "Pre-Depends", "Provides", "Conflicts",
    "Breaks", "Multi-Arch", "Source", "Section", "Filename", "Size", "SHA256", "SHA1", "MD5sum",
)  # fmt: skip


def _read_index(raw: bytes, name: str, fetcher: Fetcher) -> list[dict[str, str]]:
    """parse_index through the parsed-index cache beside the package cache."""
    return deb822.cached_stanzas(raw, name, fetcher.cache_dir, parse_index, INDEX_FIELDS)


def _check_index(data: bytes, path: str, expected: tuple[str, str, int], where: str) -> None:
    algorithm, hexdigest, size = expected
    if len(data) != size or hashlib.new(algorithm, data).hexdigest() != hexdigest.lower():
        raise ArchiveError(
            f"{where}: {path} does not match the Release's {algorithm.upper()} (corrupt or "
            "tampered)",
            hint="the index and the Release disagree; the mirror is broken or hostile",
        )


def load_repository(spec: RepoSpec, fetcher: Fetcher) -> Repository:
    """Read a repository's indexes (checking the Release signature when a keyring is given)."""
    if spec.flat:
        return _load_flat(spec, fetcher)
    base = join_url(spec.url, f"dists/{spec.suite}")
    where = f"{spec.url} {spec.suite}"
    release_raw = fetcher.read(f"{base}/Release", optional=True)
    release_name = f"{base}/Release"
    authenticated = False
    if release_raw is None:
        release_name = f"{base}/InRelease"
        inrelease = fetcher.read(f"{base}/InRelease", optional=True)
        if inrelease is None:
            raise ArchiveError(
                f"{where}: no dists/{spec.suite}/Release or InRelease",
                hint="check the URL and the suite name",
            )
        if spec.keyring:
            release_raw, fpr = sign.verify_clearsigned(
                inrelease, Path(spec.keyring), name=f"{base}/InRelease"
            )
            authenticated = True
            log.info("    %s: InRelease signed by %s", where, fpr)
        else:
            release_raw = _strip_clearsign(inrelease)
    elif spec.keyring:
        sig = fetcher.read(f"{base}/Release.gpg", optional=True)
        fpr = sign.verify_detached(release_raw, sig, Path(spec.keyring), name=f"{base}/Release")
        authenticated = True
        log.info("    %s: Release signed by %s", where, fpr)
    if not authenticated:
        log.warning(
            "WARNING: %s is UNAUTHENTICATED: no keyring given, its Release signature is not "
            "checked (add signed-by=KEYRING)",
            where,
        )
    release = index.read_release(release_raw, release_name)
    hashes = index.release_checksums(release)
    packages: list[IndexPackage] = []
    for comp in spec.components:
        rel_dir = f"{comp}/binary-{spec.arch}"
        data = None
        for name in INDEX_NAMES:
            rel = f"{rel_dir}/{name}"
            expected = hashes.get(rel)
            if expected is None:
                continue  # only an index the Release vouches for is read
            raw = fetcher.read(f"{base}/{rel}", optional=True)
            if raw is None:
                continue
            _check_index(raw, rel, expected, where)
            data = _read_index(raw, f"{base}/{rel}", fetcher)
            break
        if data is None:
            _refuse_uncovered_index(fetcher, base, rel_dir, release_name, bool(hashes), where)
            raise ArchiveError(
                f"{where}: no Packages index for {comp}/binary-{spec.arch}",
                hint=f"is {comp} a component of {spec.suite} for {spec.arch}?",
            )
        origin = f"{spec.suite}/{comp}"
        for stanza in data:
            packages.append(to_index_package(stanza, origin=origin, repo=spec.url, flat=False))
    fields = tuple((k, str(v)) for k, v in release.items() if k not in ("MD5Sum", "SHA1", "SHA256"))
    return Repository(spec, tuple(packages), authenticated, fields)


def _refuse_uncovered_index(
    fetcher: Fetcher, base: str, rel_dir: str, release_name: str, any_sums: bool, where: str
) -> None:
    """Raise when an index is there but no checksum of the Release covers it (never read it)."""
    for name in INDEX_NAMES:
        if fetcher.read(f"{base}/{rel_dir}/{name}", optional=True) is None:
            continue
        why = "it has no MD5Sum, SHA1 or SHA256 field" if not any_sums else "it does not list it"
        raise ArchiveError(
            f"{where}: no checksum in {release_name} covers {rel_dir}/{name} ({why}); "
            "an index nothing vouches for could be tampered with, so it is not read",
            hint="the Release must list every index with its SHA256 (apt-ftparchive release "
            "DIR > Release); if it does upstream, the mirror is broken or hostile",
        )


def _strip_clearsign(data: bytes) -> bytes:
    text = data.decode("utf-8", errors="replace")
    if "-----BEGIN PGP SIGNED MESSAGE-----" not in text:
        return data
    body = text.split("\n\n", 1)[1].split("-----BEGIN PGP SIGNATURE-----", 1)[0]
    return "\n".join(ln[2:] if ln.startswith("- ") else ln for ln in body.splitlines()).encode()


def _load_flat(spec: RepoSpec, fetcher: Fetcher) -> Repository:
    """A flat repository: `URL/Packages*`, or a local directory of .debs (scanned)."""
    base = spec.url if not spec.suite else join_url(spec.url, spec.suite.rstrip("/"))
    for name in INDEX_NAMES:
        raw = fetcher.read(f"{base}/{name}", optional=True)
        if raw is not None:
            stanzas = _read_index(raw, f"{base}/{name}", fetcher)
            pkgs = tuple(to_index_package(s, origin=base, repo=base, flat=True) for s in stanzas)
            log.warning("WARNING: flat repository %s is UNAUTHENTICATED (no Release)", base)
            return Repository(spec, pkgs, False)
    if "://" in base and not base.startswith("file://"):
        raise ArchiveError(f"{base}: no Packages index", hint="a flat repository needs Packages")
    folder = url_to_path(base)
    if not folder.is_dir():
        raise ArchiveError(f"{folder}: not a directory of .debs", hint="check the path")
    debs = sorted(p for p in folder.rglob("*.deb") if p.is_file())
    if not debs:
        raise ArchiveError(f"{folder}: no .deb files", hint="put the packages there")
    pkgs = []
    for p in debs:
        rel = p.relative_to(folder).as_posix()
        stanza = index.packages_stanza(p.read_bytes(), rel)
        pkgs.append(to_index_package(stanza, origin=str(folder), repo=str(folder), flat=True))
    log.info("    %s: %d local .debs (trusted: you gave them)", folder, len(pkgs))
    return Repository(spec, tuple(pkgs), True)


# -- the disc's own archive ----------------------------------------------------------------------


def read_disc_packages(
    read: Callable[[str], bytes | None], flavor: Flavor, *, udebs: bool = False
) -> tuple[IndexPackage, ...]:
    """The packages in the disc's binary indexes (main, restricted, ...; `udebs`: d-i's).

    `read(path)` returns a file of the disc ('/dists/...') or None when it is absent.
    """
    base = flavor.release_path.rsplit("/", 1)[0]
    out: list[IndexPackage] = []
    for comp in flavor.components:
        sub = f"{comp}/debian-installer" if udebs else comp
        for arch in flavor.architectures:
            for name in INDEX_NAMES:
                path = f"{base}/{sub}/binary-{arch}/{name}"
                data = read(path)
                if data is None:
                    continue
                for stanza in index.read_packages(data, path):
                    out.append(
                        to_index_package(
                            stanza,
                            origin=f"disc {flavor.codename}/{sub}",
                            repo="",
                            on_disc=True,
                            flat=False,
                        )
                    )
                break
    return tuple(out)


def local_packages(
    debs: Iterable[tuple[str, bytes]], *, origin: str = "extras"
) -> tuple[IndexPackage, ...]:
    """IndexPackages for .debs made by this tool (agent, metapackages): (filename, bytes) pairs."""
    out = []
    for filename, data in debs:
        stanza = index.packages_stanza(data, f"pool/extras/{filename}")
        out.append(to_index_package(stanza, origin=origin, repo="", flat=False))
    return tuple(out)
