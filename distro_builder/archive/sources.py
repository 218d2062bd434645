"""Package sources: apt source lines -> RepoSpec; the disc's indexes, local .debs -> IndexPackage.

A source is written as apt writes it (`deb [arch=amd64 signed-by=KEYRING] URL SUITE COMPONENT...`,
`trusted=yes` to say "unsigned on purpose"), or as a bare local directory of .debs. URLs may be
`file://`, a plain path or `http(s)://`. Reading what a RepoSpec names (Release, signature,
checked indexes) is archive/repository.py's job.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Iterable
from pathlib import Path

from distro_builder.archive import index
from distro_builder.archive.catalog import read_catalog, to_index_package
from distro_builder.archive.controls import ControlCache
from distro_builder.archive.repository import INDEX_NAMES
from distro_builder.errors import ConfigError
from distro_builder.imagemodel import Flavor
from distro_builder.model import IndexPackage, RepoSpec

log = logging.getLogger(__name__)


def describe(spec: RepoSpec) -> str:
    """The apt source line of `spec`."""
    opts = [f"arch={spec.arch}"]
    if spec.keyring:
        opts.append(f"signed-by={spec.keyring}")
    if spec.trusted:
        opts.append("trusted=yes")
    opts += [f"mirror={m}" for m in spec.mirrors]
    tail = " ".join(spec.components)
    return f"deb [{' '.join(opts)}] {spec.url} {spec.suite or './'}" + (f" {tail}" if tail else "")


def parse_source_line(line: str, *, arch: str = "amd64", where: str = "") -> RepoSpec:
    """`deb [options] URL SUITE [COMPONENT...]` (the leading `deb` may be left out).

    Options: arch=, signed-by= (a keyring file), trusted=yes, mirror=URL (repeatable: another
    URL of the same repository, asked when the first fails; apt's one-line format has no such
    option, its deb822 `URIs:` field takes several).
    """
    ctx = f" ({where})" if where else ""
    text = line.strip()
    options: dict[str, str] = {}
    mirrors: list[str] = []
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
            if key == "mirror":
                mirrors.append(_check_url(value, line, ctx).rstrip("/"))
                continue
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
            hint="supported: arch=, signed-by=, trusted=yes, mirror=URL",
        )
    if not words:
        raise ConfigError(f"empty source line{ctx}", hint="deb [options] URL SUITE COMPONENT...")
    url = _check_url(words[0], line, ctx)
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
        mirrors=tuple(mirrors),
    )


def _check_url(url: str, line: str, ctx: str) -> str:
    if "://" not in url and not url.startswith("/"):
        raise ConfigError(
            f"{url!r} is not a URL{ctx}",
            hint="give file:///path, /absolute/path or http(s)://host/path",
        )
    if "://" in url and not url.startswith(("file://", "http://", "https://")):
        raise ConfigError(
            f"unsupported URL scheme in {url!r}{ctx}", hint="use file://, http:// or https://"
        )
    return url


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
                catalog = read_catalog(
                    data, path, origin=f"disc {flavor.codename}/{sub}", repo="", flat=False,
                    on_disc=True,
                )  # fmt: skip
                out.extend(catalog)
                break
    return tuple(out)


def local_packages(
    debs: Iterable[tuple[str, bytes]],
    *,
    origin: str = "extras",
    controls: ControlCache | None = None,
) -> tuple[IndexPackage, ...]:
    """IndexPackages for .debs made by this tool (agent, metapackages): (filename, bytes) pairs.
    `controls`: their control fields kept by SHA-256 (archive/controls.py)."""
    out = []
    for filename, data in debs:
        stanza = index.packages_stanza(data, f"pool/extras/{filename}", controls=controls)
        out.append(to_index_package(stanza, origin=origin, repo="", flat=False))
    return tuple(out)
