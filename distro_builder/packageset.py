"""The package step of a distro build: lists -> resolution -> fetch -> the disc's extras overlay.

`plan_packages()` answers "what does each role need, what does the disc have, what must be added"
(the `resolve` command); `stage_package_overlay()` is the one call the build pipeline makes: it
resolves, fetches into the cache and stages `pool/extras`, the indexes, the role metapackages,
the keyring packages and the new Release into an overlay directory for remaster().
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from distro_builder import __version__
from distro_builder.archive import fetch, publish, sign
from distro_builder.archive.controls import ControlCache
from distro_builder.archive.repository import Repository
from distro_builder.archive.resolve import Universe, plan_roles, resolve
from distro_builder.archive.sources import (
    describe,
    local_packages,
    parse_repo_arg,
    read_disc_packages,
    read_sources_list,
)
from distro_builder.config.packages import load_repositories_yaml, package_notes, role_packages
from distro_builder.config.roles import load_roles
from distro_builder.errors import ConfigError, DependencyError
from distro_builder.filedigest import Prehashed
from distro_builder.imagemodel import EntryKind, Flavor
from distro_builder.log import step
from distro_builder.media.iso import IsoImage
from distro_builder.model import KERNEL_IMAGES, IndexPackage, Plan, PublishResult, RepoSpec, RoleSet
from distro_builder.progress import TransferMeter

log = logging.getLogger(__name__)

MAINTAINER = "StackOps distro-builder <distro-builder@stackops.invalid>"
AGENT_PACKAGE = "stackops-agent"


@dataclass(frozen=True, slots=True)
class PackageInputs:
    """Everything a resolution reads, loaded once."""

    role_roots: Mapping[str, tuple[str, ...]]
    disc: tuple[IndexPackage, ...]
    repositories: tuple[Repository, ...]
    local: tuple[IndexPackage, ...]


def collect_specs(
    repos: Sequence[str] = (), sources: Sequence[Path] = (), *, arch: str = "amd64"
) -> tuple[RepoSpec, ...]:
    """--repo values and --sources files (sources.list lines, or YAML with `repositories:`)."""
    specs: list[RepoSpec] = [parse_repo_arg(r, arch=arch) for r in repos]
    for path in sources:
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            specs.extend(load_repositories_yaml(path))
        else:
            specs.extend(read_sources_list(path, arch=arch))
    return tuple(specs)


def image_reader(image: IsoImage) -> Callable[[str], bytes | None]:
    """read(path) -> the file at `path` on the image, or None."""

    def read(path: str) -> bytes | None:
        entry = image.lookup(path)
        return image.read(path) if entry is not None and entry.kind is EntryKind.file else None

    return read


def role_roots(
    data_dir: Path,
    roles: Sequence[str] | None,
    arch: str,
    extra: Sequence[str] = (),
    *,
    roleset: RoleSet | None = None,
) -> dict[str, tuple[str, ...]]:
    """Each role's package set (its includes' packages and its own), plus `extra` names (agent,
    keyring). `roles` None: every node role under roles/ (`roleset`: already loaded from it)."""
    roleset = roleset if roleset is not None else load_roles(data_dir)
    names = roleset.names if roles is None else roles
    return {r: tuple(dict.fromkeys([*role_packages(roleset, r, arch), *extra])) for r in names}


# linux-headers-<flavour>: the archive's meta package for the newest headers of a flavour
_HEADERS_META_RE = re.compile(r"linux-headers-([a-z][a-z0-9-]*)")
# linux-image-<version>-<abi>-<flavour>, e.g. linux-image-2.6.32-38-server
_IMAGE_RE = re.compile(r"linux-image-(\d[0-9.]*-\d+)-([a-z][a-z0-9-]*)")


def match_kernel_headers(
    roots: Mapping[str, Sequence[str]],
    disc: Sequence[IndexPackage],
    others: Sequence[Sequence[IndexPackage]],
    arch: str,
    kernel_meta: str | None = None,
) -> dict[str, tuple[str, ...]]:
    """`roots` with each linux-headers-<flavour> replaced by the headers of the kernel the
    installer installs from the disc (`kernel_meta`'s closure on the disc): DKMS modules
    (iscsitarget-dkms) build for the running kernel, and the archive's meta may point at an
    older kernel's headers than a point-release disc boots (issue 22 finding 9). Raises
    DependencyError when no source has them."""
    metas = {r for rs in roots.values() for r in rs if _HEADERS_META_RE.fullmatch(r)}
    if not metas:
        return {role: tuple(rs) for role, rs in roots.items()}
    kernel_meta = kernel_meta or KERNEL_IMAGES.get(arch, "linux-server")
    try:
        on_disc = resolve([kernel_meta], Universe([disc], arch)).packages
    except DependencyError as e:
        raise DependencyError(
            f"the disc's kernel ({kernel_meta}, what the installer installs) cannot be found "
            f"on the disc, so no kernel headers can be matched to it: {e}",
            hint="build from an Ubuntu server disc whose pool has its kernel",
        ) from e
    images = sorted(p.name for p in on_disc if _IMAGE_RE.fullmatch(p.name))
    universe = Universe([disc, *others], arch)
    swap: dict[str, str] = {}
    for meta in sorted(metas):
        flavour = _HEADERS_META_RE.fullmatch(meta)[1]  # type: ignore[index]
        kernels = [
            m[1] + "-" + m[2] for n in images if (m := _IMAGE_RE.fullmatch(n)) and m[2] == flavour
        ]
        if not kernels:
            raise DependencyError(
                f"{meta}: the disc's kernel ({kernel_meta}: {', '.join(images) or 'no image'}) "
                f"is not of the {flavour} flavour",
                hint=f"list the headers of the disc's kernel flavour instead of {meta}",
            )
        wanted = f"linux-headers-{kernels[-1]}"
        if not universe.packages(wanted):
            stale = [p.depends for p in universe.packages(meta)]
            raise DependencyError(
                f"{meta} must match the disc's kernel linux-image-{kernels[-1]}, and no "
                f"repository has {wanted}"
                + (f" ({meta} there depends on {stale[0]})" if stale else ""),
                hint=f"add a repository that has {wanted} (lucid-updates carries the headers "
                "of the kernels it ships), or build from a disc whose kernel has headers",
            )
        swap[meta] = wanted
    return {role: tuple(swap.get(r, r) for r in rs) for role, rs in roots.items()}


def _load_repositories(specs: Sequence[RepoSpec], fetcher: fetch.Fetcher) -> list[Repository]:
    repos = []
    for spec in specs:
        with step(f"Reading {describe(spec)}"):
            repo = Repository.read(spec, fetcher)
            log.info("    %d packages", len(repo.packages))
        repos.append(repo)
    return repos


def plan_from(
    flavor: Flavor,
    roots: Mapping[str, Sequence[str]],
    disc: Sequence[IndexPackage],
    repos: Sequence[Repository],
    local: Sequence[IndexPackage] = (),
    notes: Mapping[str, str] | None = None,
) -> Plan:
    arch = flavor.architectures[0] if flavor.architectures else "amd64"
    universe = Universe([disc, *[r.packages for r in repos], local], arch)
    with step(f"Resolving {', '.join(roots)} over the disc and {len(repos)} repositories"):
        return plan_roles(
            roots,
            universe,
            codename=flavor.codename,
            repositories=[describe(r.spec) for r in repos],
            unauthenticated=[describe(r.spec) for r in repos if not r.authenticated],
            notes=notes,
        )


def plan_packages(
    data_dir: Path,
    image: IsoImage,
    flavor: Flavor,
    *,
    roles: Sequence[str] | None = None,
    specs: Sequence[RepoSpec],
    fetcher: fetch.Fetcher,
    extra_debs: Sequence[tuple[str, bytes]] = (),
) -> Plan:
    """Resolve `roles` over the disc of `image` and the repositories `specs`."""
    arch = flavor.architectures[0] if flavor.architectures else "amd64"
    local = local_packages(extra_debs)
    roleset = load_roles(data_dir)
    roots = role_roots(data_dir, roles, arch, [p.name for p in local], roleset=roleset)
    disc = read_disc_packages(image_reader(image), flavor)
    repos = _load_repositories(specs, fetcher)
    roots = match_kernel_headers(roots, disc, [r.packages for r in repos], arch)
    return plan_from(flavor, roots, disc, repos, local, package_notes(roleset))


def agent_debs(
    data_dir: Path, *, mtime: int, roleset: RoleSet | None = None
) -> list[tuple[str, bytes]]:
    """The node agent package when distro_builder.agent is there (built by another module)."""
    try:
        from distro_builder.agent import build_agent_deb  # type: ignore[import-not-found]
    except ImportError:
        log.warning("distro_builder.agent is not available: no %s package", AGENT_PACKAGE)
        return []
    return [build_agent_deb(data_dir, version=__version__, mtime=mtime, roleset=roleset)]


def keyring_debs(
    image: IsoImage,
    flavor: Flavor,
    sign_key: str,
    *,
    gnupg_home: Path | None,
    mtime: int,
) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]], list[str]]:
    """(debs, udebs, names) carrying the signing key: stackops-keyring, and the base's
    ubuntu-keyring (+ -udeb) rebuilt with the key appended when the disc has them."""
    sign.signing_key(sign_key, homedir=gnupg_home)  # RSA check before anything is built
    key = sign.export_public_key(sign_key, homedir=gnupg_home)
    debs = [
        publish.build_keyring_package(key, version=__version__, mtime=mtime, maintainer=MAINTAINER)
    ]
    udebs: list[tuple[str, bytes]] = []
    names = [publish.KEYRING_PACKAGE]
    read = image_reader(image)
    for udeb, pkgs in (
        (False, read_disc_packages(read, flavor)),
        (True, read_disc_packages(read, flavor, udebs=True)),
    ):
        for p in pkgs:
            if p.name not in ("ubuntu-keyring", "ubuntu-keyring-udeb"):
                continue
            data = read("/" + p.filename) if p.filename else None
            if data is None:
                log.warning("%s is in the index but not at /%s", p.name, p.filename)
                continue
            filename, new, version = publish.rebuild_keyring(
                data, key, udeb=udeb, mtime=mtime, name=p.filename
            )
            (udebs if udeb else debs).append((filename, new))
            names.append(p.name)
            log.info("    rebuilt %s %s with the signing key", p.name, version)
    return debs, udebs, names


def stage_package_overlay(
    data_dir: Path,
    image: IsoImage,
    flavor: Flavor,
    overlay_dir: Path,
    *,
    roles: Sequence[str] | None = None,
    specs: Sequence[RepoSpec],
    fetcher: fetch.Fetcher,
    extra_debs: Sequence[tuple[str, bytes]] | None = None,
    sign_key: str | None = None,
    gnupg_home: Path | None = None,
    mtime: int,
    version: str = __version__,
    progress: fetch.ProgressCallback | None = None,
    roleset: RoleSet | None = None,
    placed: dict[str, Path] | None = None,
    prehashed: Prehashed | None = None,
) -> tuple[Plan, PublishResult]:
    """Resolve, fetch and stage the extras component into `overlay_dir` (the build's step).

    `extra_debs` default to the node agent package; `roleset` is roles/ of `data_dir` when the
    caller has loaded it already; `placed` takes the fetched .debs instead of `overlay_dir`
    and `prehashed` their digests (publish.stage_packages). Raises DependencyError, ArchiveError,
    ConfigError.
    """
    roleset = roleset if roleset is not None else load_roles(data_dir)
    if roles is not None and not roles:
        raise ConfigError("no roles to build", hint="name at least one role under roles/")
    arch = flavor.architectures[0] if flavor.architectures else "amd64"
    extras = list(
        agent_debs(data_dir, mtime=mtime, roleset=roleset) if extra_debs is None else extra_debs
    )
    k_debs: list[tuple[str, bytes]] = []
    k_udebs: list[tuple[str, bytes]] = []
    k_names: list[str] = []
    if sign_key:
        with step(f"Preparing keyring packages for key {sign_key}"):
            k_debs, k_udebs, k_names = keyring_debs(
                image, flavor, sign_key, gnupg_home=gnupg_home, mtime=mtime
            )
    own = extras + k_debs
    # control fields by SHA-256, kept in the package cache: the fetched packages and our own
    # (each of which is read up to three times below) are parsed once, in the first build
    controls = ControlCache(fetcher.cache_dir)
    own_pkgs = local_packages(own, controls=controls)
    extra_names = [p.name for p in own_pkgs if p.name != "ubuntu-keyring"]
    roots = role_roots(data_dir, roles, arch, extra_names, roleset=roleset)
    disc = read_disc_packages(image_reader(image), flavor)
    repos = _load_repositories(specs, fetcher)
    # the role metapackages depend on the headers of the disc's own kernel
    roots = match_kernel_headers(roots, disc, [r.packages for r in repos], arch)
    metas = [
        publish.build_metapackage(r, roots[r], version=version, mtime=mtime, maintainer=MAINTAINER)
        for r in roots
    ]
    local = local_packages(own + metas, controls=controls)
    plan = plan_from(flavor, roots, disc, repos, local, package_notes(roleset))
    wanted = [p for p in plan.to_add if p.repo]
    with step(f"Fetching {len(wanted)} packages into {fetcher.cache_dir}"):
        if progress is not None:
            fetched = fetcher.fetch_all(wanted, progress)
        else:
            with TransferMeter() as meter:
                fetched = fetcher.fetch_all(wanted, meter)
    with step(f"Staging the {publish.COMPONENT} component"):
        result = publish.stage_packages(
            image_reader(image),
            flavor,
            plan,
            overlay_dir,
            fetched=fetched,
            extra_debs=own + metas,
            extra_udebs=k_udebs,
            keyring_names=k_names,
            sign_key=sign_key,
            gnupg_home=gnupg_home,
            mtime=mtime,
            placed=placed,
            prehashed=prehashed,
            controls=controls,
        )
        controls.save()
        log.info(
            "    %d packages in pool/%s, Release %s",
            len(result.packages),
            publish.COMPONENT,
            "signed" if result.signed else "UNSIGNED (allow_unauthenticated)",
        )
    return plan, result
