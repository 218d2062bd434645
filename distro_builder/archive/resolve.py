"""Dependency closure of package lists over (the disc's archive ∪ repositories).

Follows what dpkg and apt do for an install with `--no-install-recommends`:

- Depends and Pre-Depends are followed (Pre-Depends first); Recommends/Suggests are not.
- An OR group is satisfied by a package already chosen if one can; otherwise by the first
  alternative that has a candidate (apt's order), not by the "cheapest" one.
- A relation on a real package takes the versions of that name that satisfy it; a relation on a
  name no real package satisfies takes a provider (Provides). A versioned relation is satisfied
  by a versioned Provides (`foo (= 1.0)`) only, as dpkg >= 1.17.11 says; lucid's dpkg has no
  versioned Provides at all, so this never loosens a lucid resolution.
- Versions compare with dpkg's algorithm (epochs, `~`): apt_pkg's when it imports (what
  python-debian calls then too), else python-debian's.
- Architecture: packages for the target arch or `all`; `pkg:any` needs `Multi-Arch: allowed`.
- Candidates: what the disc has first (it costs nothing), then the highest version, then the
  source order. One version per package name: when a later relation rules out the version
  chosen earlier, the resolution restarts with that constraint known (as apt's resolver would
  upgrade the pick); when no version satisfies every constraint, that is an error.

An unsatisfiable relation raises DependencyError with the chain that pulled it in. Conflicts and
Breaks are checked on the closure as dpkg would on unpacking it together: a relation on a chosen
package's name (a version in range), or an unversioned one on a name another chosen package
provides; a package never conflicts with itself (the Provides+Conflicts+Replaces idiom). A
conflict is reported with both chains, not resolved around (apt would try other alternatives;
the Nova lists have no OR group where that matters).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cmp_to_key

from debian.deb822 import PkgRelation

from distro_builder.archive.catalog import Catalog
from distro_builder.archive.index import parse_provides
from distro_builder.errors import DependencyError
from distro_builder.model import IndexPackage, Plan, RolePlan

log = logging.getLogger(__name__)

_OPS = {
    "<<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    ">>": lambda c: c > 0,
}
_MAX_RESTARTS = 100

try:  # apt's own comparison; python-debian calls it too when it imports, through two objects
    from apt_pkg import version_compare
except ImportError:  # pragma: no cover - depends on the host
    from debian.debian_support import version_compare


@dataclass(frozen=True, slots=True)
class Relation:
    """One alternative of a dependency: `name[:archqual] [(op version)]`."""

    name: str
    op: str | None = None
    version: str | None = None
    archqual: str | None = None

    def __str__(self) -> str:
        q = f":{self.archqual}" if self.archqual else ""
        v = f" ({self.op} {self.version})" if self.op else ""
        return f"{self.name}{q}{v}"


Group = tuple[Relation, ...]


def version_satisfies(have: str, op: str | None, want: str | None) -> bool:
    """dpkg's `have op want` (op in <<, <=, =, >=, >>; None: any version)."""
    if op is None or want is None:
        return True
    if op not in _OPS:
        raise ValueError(f"unknown relation operator {op!r}")
    return bool(_OPS[op](version_compare(have, want)))


def parse_relations(text: str) -> tuple[Group, ...]:
    """A Depends-style field as OR groups of Relations (python-debian's parser)."""
    if not text.strip():
        return ()
    groups = []
    for alternatives in PkgRelation.parse_relations(text):
        group = []
        for rel in alternatives:
            ver = rel.get("version")
            group.append(
                Relation(
                    name=rel["name"],
                    op=ver[0] if ver else None,
                    version=ver[1] if ver else None,
                    archqual=rel.get("archqual"),
                )
            )
        groups.append(tuple(group))
    return tuple(groups)


def group_text(group: Group) -> str:
    return " | ".join(str(r) for r in group)


class Universe:
    """Every package the resolver may choose from, looked up by name and by what they provide.

    `sources` are given in preference order: the disc first, then the repositories. A source is
    a Catalog (archive/catalog.py) or any iterable of IndexPackages. Lookups are made on first
    use and kept: a resolution touches a few thousand of an index's 63,000 packages.
    """

    def __init__(self, sources: Iterable[Iterable[IndexPackage]], arch: str) -> None:
        self.arch = arch
        self.catalogs = tuple(s if isinstance(s, Catalog) else Catalog.of(s) for s in sources)
        # the order of the packages of one name: source order, then index order
        self.rank: dict[int, int] = {}
        self._named: dict[str, tuple[list[IndexPackage], list[IndexPackage]]] = {}
        self._provided: dict[str, list[tuple[IndexPackage, str | None]]] = {}
        self._deps: dict[int, tuple[Group, ...]] = {}
        self._order = cmp_to_key(self._compare)

    def _lookup(self, name: str) -> tuple[list[IndexPackage], list[IndexPackage]]:
        """(packages called `name` for this architecture or all, those for others)."""
        hit = self._named.get(name)
        if hit is None:
            hit = ([], [])
            for catalog in self.catalogs:
                for pkg in catalog.named(name):
                    self.rank[id(pkg)] = len(self.rank)
                    hit[0 if pkg.arch in (self.arch, "all") else 1].append(pkg)
            self._named[name] = hit
        return hit

    def packages(self, name: str) -> list[IndexPackage]:
        """The packages called `name` this architecture can install, in source order."""
        return self._lookup(name)[0]

    def providers(self, name: str) -> list[tuple[IndexPackage, str | None]]:
        """(package, version provided or None) of this architecture's providers of `name`."""
        hit = self._provided.get(name)
        if hit is None:
            hit = []
            for catalog in self.catalogs:
                for pkg, version in catalog.providing(name):
                    self._lookup(pkg.name)  # ranks it
                    if pkg.arch in (self.arch, "all"):
                        hit.append((pkg, version))
            self._provided[name] = hit
        return hit

    def names(self) -> set[str]:
        """Every name a relation could be satisfied by (package names and provided names)."""
        return set().union(*(c.names() for c in self.catalogs))

    def _compare(self, a: IndexPackage, b: IndexPackage) -> int:
        if a.on_disc != b.on_disc:
            return -1 if a.on_disc else 1
        by_version = version_compare(b.version, a.version)  # highest first
        if by_version:
            return by_version
        return self.rank[id(a)] - self.rank[id(b)]

    def dependencies(self, pkg: IndexPackage) -> tuple[Group, ...]:
        """Pre-Depends then Depends of `pkg`, parsed once."""
        key = id(pkg)
        if key not in self._deps:
            self._deps[key] = parse_relations(pkg.pre_depends) + parse_relations(pkg.depends)
        return self._deps[key]

    def real_candidates(self, rel: Relation) -> list[IndexPackage]:
        """Packages named rel.name that satisfy it, best first."""
        out = [
            p
            for p in self.packages(rel.name)
            if version_satisfies(p.version, rel.op, rel.version)
            and (rel.archqual != "any" or p.multi_arch == "allowed" or p.arch == "all")
        ]
        return sorted(out, key=self._order)

    def provider_candidates(self, rel: Relation) -> list[IndexPackage]:
        """Packages providing rel.name in a way that satisfies rel, best first."""
        out = []
        for pkg, provided in self.providers(rel.name):
            if rel.op is None or (
                provided is not None and version_satisfies(provided, rel.op, rel.version)
            ):
                out.append(pkg)
        return sorted(
            {id(p): p for p in out}.values(),
            key=lambda p: (not p.on_disc, p.name, self._order(p)),
        )

    def why_not(self, rel: Relation) -> str:
        """Why nothing satisfies `rel`, in the words a user needs."""
        have = self.packages(rel.name)
        if have:
            seen = sorted(
                {(p.version, p.origin) for p in have},
                key=cmp_to_key(lambda a, b: version_compare(b[0], a[0])),
            )
            listed = ", ".join(f"{v} in {o}" for v, o in seen[:4])
            return f"no candidate; {listed}"
        providers = self.providers(rel.name)
        if providers:
            names = ", ".join(sorted({p.name for p, _ in providers})[:4])
            return f"no candidate; provided by {names} without a suitable version"
        other = self._lookup(rel.name)[1]
        if other:
            arches = ", ".join(sorted({p.arch for p in other}))
            return f"no candidate; only for {arches}, not {self.arch}"
        return "not on the disc nor in any repository"


class _Restart(Exception):
    def __init__(self, name: str, rel: Relation, chain: tuple[str, ...]) -> None:
        self.name, self.rel, self.chain = name, rel, chain


@dataclass(frozen=True, slots=True)
class Resolution:
    """The closure of some roots: chosen packages and the chain that pulled each in."""

    packages: tuple[IndexPackage, ...]  # sorted by name
    chains: Mapping[str, tuple[str, ...]]


def resolve(
    roots: Sequence[str], universe: Universe, notes: Mapping[str, str] | None = None
) -> Resolution:
    """The closure of `roots` (package names, or relations such as `libvirt-bin (>= 0.8.1)`).
    Raises DependencyError with the chain; when a root no candidate meets has a note in
    `notes` ({root: why it is needed}), the error's hint says why and what to do."""
    constraints: dict[str, list[tuple[Relation, tuple[str, ...]]]] = defaultdict(list)
    groups = _root_groups(roots)
    for _ in range(_MAX_RESTARTS):
        try:
            return _closure(groups, universe, constraints, notes or {})
        except _Restart as r:
            constraints[r.name].append((r.rel, r.chain))
            log.debug("resolve: restart with %s (from %s)", r.rel, " -> ".join(r.chain))
    raise DependencyError(
        f"dependency resolution did not settle after {_MAX_RESTARTS} restarts",
        hint="the package graph has conflicting version constraints",
    )


# a root: one relation `name[:archqual] [(op version)]` (a role's package list entry)
_ROOT_RE = re.compile(
    r"^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?(?:\s*\((<<|<=|=|>=|>>)\s*([^()\s]+)\s*\))?$"
)


def _root_groups(roots: Sequence[str]) -> list[Group]:
    """Each root as a one-relation group; DependencyError on a root that is not one relation."""
    out: list[Group] = []
    for root in dict.fromkeys(roots):
        m = _ROOT_RE.match(root.strip())
        if m is None:
            raise DependencyError(
                f"{root!r} is not one package relation",
                hint="a package list entry is `name` or `name (op version)`",
            )
        out.append((Relation(name=m[1], archqual=m[2], op=m[3], version=m[4]),))
    return out


def _closure(
    roots: Sequence[Group],
    u: Universe,
    constraints: Mapping[str, list[tuple[Relation, tuple[str, ...]]]],
    notes: Mapping[str, str],
) -> Resolution:
    selected: dict[str, IndexPackage] = {}
    provided: dict[str, list[tuple[IndexPackage, str | None]]] = defaultdict(list)
    chains: dict[str, tuple[str, ...]] = {}
    queue: deque[tuple[Group, tuple[str, ...]]] = deque((group, ()) for group in roots)

    def allowed(pkg: IndexPackage) -> bool:
        return all(
            version_satisfies(pkg.version, rel.op, rel.version)
            for rel, _ in constraints.get(pkg.name, ())
        )

    def satisfied(rel: Relation) -> bool:
        have = selected.get(rel.name)
        if have is not None and version_satisfies(have.version, rel.op, rel.version):
            return True
        return any(
            rel.op is None or (ver is not None and version_satisfies(ver, rel.op, rel.version))
            for _, ver in provided.get(rel.name, ())
        )

    while queue:
        group, chain = queue.popleft()
        if any(satisfied(rel) for rel in group):
            continue
        choice: IndexPackage | None = None
        blocked: tuple[str, Relation] | None = None
        for rel in group:
            real = [p for p in u.real_candidates(rel) if allowed(p)]
            if real:
                have = selected.get(rel.name)
                if have is not None:  # another version was chosen: pick again, knowing this
                    blocked = blocked or (rel.name, rel)
                    continue
                choice = real[0]
                break
            prov = [
                p for p in u.provider_candidates(rel) if allowed(p) and selected.get(p.name, p) is p
            ]
            if prov:
                choice = prov[0]
                break
        if choice is None:
            if blocked is not None:
                raise _Restart(blocked[0], blocked[1], chain)
            note = notes.get(group_text(group)) if not chain else None
            raise DependencyError(
                _explain(group, chain, u, constraints),
                hint=(
                    f"{group_text(group)} is required: {note.rstrip('.')}. Add a repository "
                    "that has it (--repo URL SUITE COMPONENT or --sources FILE)"
                    if note
                    else None
                ),
            )
        selected[choice.name] = choice
        here = (*chain, choice.name)
        chains[choice.name] = here
        for name, version in parse_provides(choice.provides) if choice.provides else ():
            provided[name].append((choice, version))
        for dep in u.dependencies(choice):
            queue.append((dep, here))
    _check_conflicts(selected, provided, chains)
    return Resolution(tuple(sorted(selected.values(), key=lambda p: p.name)), chains)


def _check_conflicts(
    selected: Mapping[str, IndexPackage],
    provided: Mapping[str, list[tuple[IndexPackage, str | None]]],
    chains: Mapping[str, tuple[str, ...]],
) -> None:
    """DependencyError naming both chains when a chosen package Conflicts/Breaks another."""
    for pkg in sorted(selected.values(), key=lambda p: p.name):
        for field, text in (("conflicts with", pkg.conflicts), ("breaks", pkg.breaks)):
            for group in parse_relations(text) if text else ():
                for rel in group:
                    hit = _conflict_target(pkg, rel, selected, provided)
                    if hit is None:
                        continue
                    how = f"{hit.name} {hit.version}"
                    if hit.name != rel.name:
                        how += f" (provides {rel.name})"
                    raise DependencyError(
                        f"{' -> '.join(chains[pkg.name])} {field} {rel}; {how} is pulled in by "
                        f"{' -> '.join(chains[hit.name])}",
                        hint="the two cannot be installed together: drop one from the package "
                        "lists or add a repository with versions that fit",
                    )


def _conflict_target(
    pkg: IndexPackage,
    rel: Relation,
    selected: Mapping[str, IndexPackage],
    provided: Mapping[str, list[tuple[IndexPackage, str | None]]],
) -> IndexPackage | None:
    other = selected.get(rel.name)
    if other is not None and other is not pkg:
        if version_satisfies(other.version, rel.op, rel.version):
            return other
    for provider, version in provided.get(rel.name, ()):
        if provider is pkg:
            continue
        if rel.op is None or (
            version is not None and version_satisfies(version, rel.op, rel.version)
        ):
            return provider
    return None


def _explain(
    group: Group,
    chain: tuple[str, ...],
    u: Universe,
    constraints: Mapping[str, list[tuple[Relation, tuple[str, ...]]]],
) -> str:
    path = " -> ".join((*chain, group_text(group)))
    reasons = []
    for rel in group:
        why = u.why_not(rel)
        limits = constraints.get(rel.name)
        if limits and u.real_candidates(rel):
            others = "; ".join(f"{r} (from {' -> '.join(c) or 'the list'})" for r, c in limits)
            why = f"no version also satisfies {others}"
        reasons.append(why if len(group) == 1 else f"{rel.name}: {why}")
    return f"{path}: {'; '.join(reasons) if len(group) == 1 else ' / '.join(reasons)}"


def plan_roles(
    role_roots: Mapping[str, Sequence[str]],
    universe: Universe,
    *,
    codename: str,
    repositories: Sequence[str] = (),
    unauthenticated: Sequence[str] = (),
    notes: Mapping[str, str] | None = None,
) -> Plan:
    """Resolve every role; the plan's to_add is the union of what the roles need from outside.
    `notes`: why a versioned root is needed (resolve())."""
    roles = []
    union: dict[str, IndexPackage] = {}
    for role, roots in role_roots.items():
        res = resolve(roots, universe, notes)
        on_disc = tuple(p for p in res.packages if p.on_disc)
        to_add = tuple(p for p in res.packages if not p.on_disc)
        for p in to_add:
            union.setdefault(p.key, p)
        roles.append(RolePlan(role, tuple(roots), res.packages, on_disc, to_add))
    return Plan(
        arch=universe.arch,
        codename=codename,
        roles=tuple(roles),
        to_add=tuple(sorted(union.values(), key=lambda p: p.key)),
        repositories=tuple(repositories),
        unauthenticated=tuple(unauthenticated),
    )
