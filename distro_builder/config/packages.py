"""Roles' `packages:` lists, demo/ppa.yaml and repository files -> model records.

A role's `packages:` (roles/<role>/role.yaml) uses diskimage-builder's package-installs syntax: an
item is a bare package name or `{name: {arch: [amd64]}}` / `{name: {not-arch: [i386]}}` (a comma
string is accepted too). An item may also carry a version relation and why it is needed,
`{libvirt-bin: {version: ">= 0.8.1", why: "..."}}`: the resolver then takes only a version that
meets it (refusing with `why` as the hint when none does), and the role's metapackage Depends on
`libvirt-bin (>= 0.8.1)`. A role's package set is the packages of the roles it includes (shared
ones first) plus its own, filtered by architecture, first mention wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from distro_builder.config import Fields, load_yaml
from distro_builder.errors import ConfigError
from distro_builder.model import (
    DemoRepo,
    DemoRepoPackage,
    DemoRepos,
    PackageListEntry,
    RepoSpec,
    RoleSet,
)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_ARCH_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# `op version`: dpkg's five relation operators (Debian Policy 7.1; the obsolete `<` and `>` are
# refused, as lintian does), a version as Policy 5.6.12 spells it: [epoch:]upstream[-revision]
_RELATION_RE = re.compile(r"^\s*(<<|<=|=|>=|>>|<|>)\s*([^<>=\s]\S*)\s*$")
_VERSION_RE = re.compile(r"^(?:\d+:)?[0-9][A-Za-z0-9.+~:-]*$")
_ENTRY_KEYS = ("arch", "not-arch", "version", "why")


def _arches(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [a.strip() for a in value.split(",") if a.strip()]
    elif isinstance(value, list) and all(isinstance(a, str) for a in value):
        items = list(value)
    else:
        raise ConfigError(f"{path}: {where} must be a list of architectures, e.g. [amd64]")
    for a in items:
        if not _ARCH_RE.match(a):
            raise ConfigError(f"{path}: {where}: {a!r} is not a Debian architecture name")
    return tuple(items)


def _entry(path: Path, i: int, item: Any) -> PackageListEntry:
    where = f"packages[{i}]"
    if isinstance(item, str):
        name, opts = item, {}
    elif isinstance(item, Mapping) and len(item) == 1:
        name, opts = next(iter(item.items()))
        if opts is None:
            opts = {}
        if not isinstance(name, str) or not isinstance(opts, Mapping):
            raise ConfigError(f"{path}: {where} must be `name` or `name: {{arch: [...]}}`")
        unknown = sorted(set(opts) - set(_ENTRY_KEYS))
        if unknown:
            raise ConfigError(
                f"{path}: unknown key {where}.{name}.{unknown[0]}",
                hint=f"allowed keys: {', '.join(_ENTRY_KEYS)}",
            )
    else:
        raise ConfigError(
            f"{path}: {where} must be a package name or a one-key mapping",
            hint="e.g. `- kvm: {arch: [amd64, i386]}`",
        )
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"{path}: {where}: {name!r} is not a Debian package name",
            hint="lower case letters, digits, '+', '-', '.' (Debian Policy 5.6.7)",
        )
    op, version = (
        parse_version_relation(path, f"{where}.{name}.version", opts["version"])
        if "version" in opts
        else (None, None)
    )
    why = opts.get("why", "")
    if not isinstance(why, str):
        raise ConfigError(f"{path}: {where}.{name}.why must be a text")
    if why and op is None:
        raise ConfigError(
            f"{path}: {where}.{name}.why without a version",
            hint='why says why a version is needed: add `version: ">= X"` or drop why',
        )
    return PackageListEntry(
        name=name,
        op=op,
        version=version,
        why=" ".join(why.split()),
        arch=_arches(path, f"{where}.{name}.arch", opts["arch"]) if "arch" in opts else (),
        not_arch=(
            _arches(path, f"{where}.{name}.not-arch", opts["not-arch"])
            if "not-arch" in opts
            else ()
        ),
    )


def parse_version_relation(path: Path, where: str, value: Any) -> tuple[str, str]:
    """`">= 0.8.1"` -> (">=", "0.8.1"); ConfigError naming `where` on anything else."""
    example = 'e.g. version: ">= 0.8.1" (operators <<, <=, =, >=, >>)'
    m = _RELATION_RE.match(value) if isinstance(value, str) else None
    if m is None:
        raise ConfigError(
            f"{path}: {where} must be an operator and a version, not {value!r}", hint=example
        )
    op, version = m[1], m[2]
    if op in ("<", ">"):
        raise ConfigError(
            f"{path}: {where}: {op!r} is obsolete and ambiguous (Debian Policy 7.1)",
            hint=f"write {op}{op} or {op}= ({example})",
        )
    if not _VERSION_RE.match(version) or version.endswith(("-", ":")):
        raise ConfigError(
            f"{path}: {where}: {version!r} is not a Debian version",
            hint="[epoch:]upstream[-revision], upstream starting with a digit (Policy 5.6.12)",
        )
    return op, version


def parse_packages(path: Path, raw: Any) -> tuple[PackageListEntry, ...]:
    """A `packages:` list of `path`; ConfigError naming the item on anything malformed."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: packages must be a non-empty list")
    entries = [_entry(path, i, item) for i, item in enumerate(raw)]
    seen: set[str] = set()
    for e in entries:
        if e.name in seen:
            raise ConfigError(f"{path}: package {e.name} is listed twice", hint="list it once")
        seen.add(e.name)
    return tuple(entries)


def role_packages(roleset: RoleSet, role: str, arch: str) -> tuple[str, ...]:
    """A node role's package set on `arch`: its includes' packages, then its own, each as a
    relation (`name` or `name (op version)`)."""
    if role not in roleset.names:
        raise ConfigError(f"unknown role {role!r}", hint=f"roles: {', '.join(roleset.names)}")
    r = roleset.role(role)
    out: dict[str, None] = {}
    seen: set[str] = set()
    for name in (*r.includes, role):
        for e in roleset.role(name).packages:
            if e.applies(arch) and e.name not in seen:
                seen.add(e.name)
                out.setdefault(e.relation, None)
    return tuple(out)


def package_notes(roleset: RoleSet) -> dict[str, str]:
    """{relation: why} of every versioned entry of every role that says why."""
    return {
        e.relation: e.why
        for r in (*roleset.roles, *roleset.shared)
        for e in r.packages
        if e.op is not None and e.why
    }


# -- demo repositories --------------------------------------------------------------------------

_PKG_KEYS = {
    "version",
    "arch",
    "section",
    "priority",
    "component",
    "source",
    "depends",
    "pre_depends",
    "provides",
    "recommends",
}
_REPO_KEYS = {
    "description",
    "origin",
    "label",
    "suite",
    "codename",
    "version",
    "arch",
    "components",
    "packages",
}


def load_demo_repos(data_dir: Path) -> DemoRepos:
    """Read demo/ppa.yaml."""
    path = Path(data_dir) / "demo" / "ppa.yaml"
    top = Fields(path, "", load_yaml(path), {"maintainer", "epoch", "repositories"})
    repos_raw = top.data.get("repositories")
    if not isinstance(repos_raw, Mapping) or not repos_raw:
        raise ConfigError(f"{path}: repositories must be a mapping of name to repository")
    repos = []
    for rname, raw in repos_raw.items():
        rf = Fields(path, f"repositories.{rname}", raw, _REPO_KEYS)
        arch = rf.str("arch")
        components = rf.str_list("components")
        pkgs_raw = rf.data.get("packages")
        if not isinstance(pkgs_raw, Mapping) or not pkgs_raw:
            raise ConfigError(f"{path}: repositories.{rname}.packages must be a mapping")
        pkgs = []
        for name, praw in pkgs_raw.items():
            where = f"repositories.{rname}.packages.{name}"
            pf = Fields(path, where, praw, _PKG_KEYS)
            if pf.str("arch") not in ("all", arch):
                raise ConfigError(f"{path}: {where}.arch must be 'all' or '{arch}'")
            comp = pf.str("component", components[0] if components else "main")
            if comp not in components:
                raise ConfigError(f"{path}: {where}.component {comp!r} is not in components")
            pkgs.append(
                DemoRepoPackage(
                    name=str(name),
                    version=pf.str("version"),
                    arch=pf.str("arch"),
                    section=pf.str("section"),
                    priority=pf.str("priority"),
                    component=comp,
                    source=pf.opt_str("source"),
                    depends=pf.opt_str("depends"),
                    pre_depends=pf.opt_str("pre_depends"),
                    provides=pf.opt_str("provides"),
                    recommends=pf.opt_str("recommends"),
                )
            )
        repos.append(
            DemoRepo(
                name=str(rname),
                description=rf.str("description"),
                origin=rf.str("origin"),
                label=rf.str("label"),
                suite=rf.str("suite"),
                codename=rf.str("codename"),
                version=rf.str("version"),
                arch=arch,
                components=components,
                packages=tuple(pkgs),
            )
        )
    return DemoRepos(top.str("maintainer"), top.int("epoch"), tuple(repos))


# -- repository files -----------------------------------------------------------------------------


def load_repositories_yaml(path: Path) -> tuple[RepoSpec, ...]:
    """A YAML repository file: `repositories:` a list of {url, suite, components, arch, keyring,
    trusted, mirrors} (`mirrors`: more URLs of the same repository, asked when `url` fails).

    A relative keyring path is taken relative to the file.
    """
    top = Fields(path, "", load_yaml(path), {"repositories"})
    raw = top.data.get("repositories")
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ConfigError(f"{path}: repositories must be a non-empty list")
    out = []
    for i, item in enumerate(raw):
        f = Fields(
            path,
            f"repositories[{i}]",
            item,
            {"url", "suite", "components", "arch", "keyring", "trusted", "mirrors"},
        )
        keyring = f.opt_str("keyring")
        if keyring is not None and not Path(keyring).is_absolute():
            keyring = str((path.parent / keyring).resolve())
        components = f.str_list("components") if "components" in f.data else ()
        out.append(
            RepoSpec(
                url=f.str("url"),
                suite=f.str("suite", ""),
                components=components,
                arch=f.str("arch", "amd64"),
                keyring=keyring,
                trusted=f.bool("trusted"),
                mirrors=f.str_list("mirrors") if "mirrors" in f.data else (),
            )
        )
    return tuple(out)
