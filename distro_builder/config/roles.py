"""roles/ -> RoleSet: each role is a folder, the reference architectures one file.

A role is `roles/<name>/`: `role.yaml` (description, order, includes, packages, services, steps,
questions) beside everything else it owns: `steps.sh` (its first-boot steps, POSIX sh, one
function `so_step_<step>` per entry of `steps`), `nova.conf` (its Cactus flags) and the templates
its steps render. A role with `abstract: true` (roles/base) is shared: node roles include it,
nobody installs it alone. `includes` pulls in other roles' questions, packages and steps (a
breadth-first walk, diskimage-builder style); an unknown role or an include cycle is an error
naming the file and the key. A question defined in two roles must be defined the same way.
`roles/architectures.yaml` states the reference architectures once: their nodes, each node's
roles and how many such nodes a deployment has. No role name is written in code: the roles are
the folders.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

from distro_builder.config import Fields, load_yaml
from distro_builder.config.packages import parse_packages
from distro_builder.config.questions import QUESTION_TYPES, validate_value
from distro_builder.errors import ConfigError
from distro_builder.model import Architecture, ArchitectureNode, Question, Role, RoleSet

# Answers-file keys that are not questions: the Smart Installer's (build --installer-url), read
# by the node agent's client. Never asked of the admin. `roles` is the boot entry's.
INSTALLER_KEYS = ("installer_url", "installer_token", "installer_fingerprint", "installer_wait")
RESERVED_KEYS = ("roles", *INSTALLER_KEYS)
ROLE_FILE = "role.yaml"
STEPS_FILE = "steps.sh"
ARCH_FILE = "architectures.yaml"

_ROLE_KEYS = {
    "description", "abstract", "order", "includes", "packages", "services", "steps", "final_steps",
    "questions", "max_per_deployment", "volume_space",
}  # fmt: skip
_QUESTION_KEYS = {
    "type", "prompt", "description", "default", "choices", "min", "max", "confirm",
    "skip_with", "fallback", "optional", "per_node", "made_on_node",
}  # fmt: skip
_MADE_ON_NODE = {"generate": "password", "find": "interface"}
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9+._-]*$")
_DEBCONF_NAME_RE = re.compile(r"^[a-z0-9-]+/[A-Za-z0-9_./-]+$")
# A question's prompt and every value of the questions table: no field separator, no line break.
_TABLE_TEXT_RE = re.compile(r"^[^|\x00-\x1f\x7f]*$")


def answer_keys(roleset: RoleSet) -> tuple[str, ...]:
    """Every key the answers file (/etc/stackops/answers) may hold."""
    return (RESERVED_KEYS[0], *(q.key for q in roleset.questions), *INSTALLER_KEYS)


def _question(path: Path, key: str, data: Any) -> Question:
    where = f"questions.{key}"
    f = Fields(path, where, data, _QUESTION_KEYS)
    if not _KEY_RE.fullmatch(key) or key in RESERVED_KEYS:
        raise ConfigError(
            f"{path}: {where}: {key!r} cannot be a question key",
            hint="lowercase letters, digits and '_'; not " + ", ".join(RESERVED_KEYS),
        )
    qtype = f.str("type")
    if qtype not in QUESTION_TYPES:
        raise ConfigError(
            f"{path}: {where}.type: unknown type {qtype!r}",
            hint="types: " + ", ".join(QUESTION_TYPES),
        )
    raw_default = data.get("default")
    default = None if raw_default is None else f.str("default")
    choices = f.str_list("choices") if "choices" in data else ()
    if qtype == "choice" and not choices:
        raise ConfigError(f"{path}: {where}: a choice question needs `choices`")
    if choices and qtype != "choice":
        raise ConfigError(f"{path}: {where}.choices: only a choice question has choices")
    if any(not re.fullmatch(r"[A-Za-z0-9_.-]+", c) for c in choices):
        raise ConfigError(f"{path}: {where}.choices: letters, digits, '.', '_', '-' only")
    minimum = f.int("min") if "min" in data else None
    maximum = f.int("max") if "max" in data else None
    if maximum is not None and qtype != "int":
        raise ConfigError(f"{path}: {where}: max is for int questions only")
    if minimum is not None and qtype not in ("int", "password"):
        raise ConfigError(
            f"{path}: {where}: min is for int questions (the least value) and passwords (the "
            "fewest characters) only"
        )
    fallback = f.opt_str("fallback")
    if fallback is not None and not _DEBCONF_NAME_RE.fullmatch(fallback):
        raise ConfigError(
            f"{path}: {where}.fallback: {fallback!r} is not a debconf question name",
            hint="like netcfg/get_hostname",
        )
    q = Question(
        key=key,
        type=qtype,
        prompt=f.str("prompt"),
        description=" ".join(f.str("description").split()),
        default=default,
        choices=choices,
        minimum=minimum,
        maximum=maximum,
        confirm=f.bool("confirm"),
        skip_with=f.str_list("skip_with") if "skip_with" in data else (),
        fallback=fallback,
        optional=f.bool("optional"),
        per_node=f.bool("per_node"),
        defined_in=str(path),
        made_on_node=f.opt_str("made_on_node") or "",
    )
    if q.made_on_node and _MADE_ON_NODE.get(q.made_on_node) != qtype:
        raise ConfigError(
            f"{path}: {where}.made_on_node: {q.made_on_node!r} is not for a {qtype} question",
            hint="generate (a password) or find (an interface)",
        )
    if not _TABLE_TEXT_RE.fullmatch(q.prompt):
        raise ConfigError(f"{path}: {where}.prompt: no '|' and no line break in a prompt")
    if q.confirm and qtype != "password":
        raise ConfigError(f"{path}: {where}.confirm: only passwords are confirmed")
    if default is not None:
        why = validate_value(q, default)
        if why or not _TABLE_TEXT_RE.fullmatch(default):
            raise ConfigError(f"{path}: {where}.default: {default!r} is not valid: {why or '|'}")
        if qtype == "password":
            raise ConfigError(f"{path}: {where}.default: a password has no default")
    return q


def _same(a: Question, b: Question) -> bool:
    return replace(a, defined_in="") == replace(b, defined_in="")


def _names(path: Path, f: Fields, key: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    names = f.str_list(key) if key in f.data else ()
    for n in names:
        if not pattern.fullmatch(n):
            raise ConfigError(f"{path}: {key}: {n!r} is not a valid name")
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: {key}: names an entry twice")
    return names


def _load_role(folder: Path) -> tuple[Role, list[Question]]:
    name = folder.name
    path = folder / ROLE_FILE
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{folder}: role names are lowercase letters, digits and '-'",
            hint="rename the folder",
        )
    data = load_yaml(path)
    f = Fields(path, "", data, _ROLE_KEYS)
    questions: list[Question] = []
    raw_q = data.get("questions") or {}
    if not isinstance(raw_q, dict):
        raise ConfigError(f"{path}: questions must be a mapping of answers key -> question")
    for key, qdata in raw_q.items():
        questions.append(_question(path, str(key), qdata))
    abstract = f.bool("abstract")
    steps = _names(path, f, "steps", _NAME_RE)
    final_steps = _names(path, f, "final_steps", _NAME_RE)
    _check_steps(folder, steps + final_steps)
    packages = parse_packages(path, data["packages"]) if "packages" in data else ()
    if not abstract and "order" not in data:
        raise ConfigError(f"{path}: missing key order", hint="e.g. order: 50 (lowest first)")
    raw_max = data.get("max_per_deployment")
    role = Role(
        name=name,
        description=f.str("description"),
        order=f.int("order") if "order" in data else 0,
        packages=packages,
        services=_names(path, f, "services", _SERVICE_RE),
        steps=steps,
        final_steps=final_steps,
        questions=tuple(q.key for q in questions),
        includes=_names(path, f, "includes", _NAME_RE),
        abstract=abstract,
        max_per_deployment=None if raw_max is None else f.int("max_per_deployment"),
        path=str(folder),
        volume_space=f.bool("volume_space"),
    )
    if not _TABLE_TEXT_RE.fullmatch(role.description):
        raise ConfigError(f"{path}: description: no '|' and no line break")
    if not abstract and not role.packages:
        raise ConfigError(f"{path}: missing key packages", hint="the packages the role installs")
    return role, questions


def _check_steps(folder: Path, steps: tuple[str, ...]) -> None:
    """Every step of role.yaml has its function in steps.sh (found before any node runs)."""
    if not steps:
        return
    script = folder / STEPS_FILE
    try:
        text = script.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"{script}: cannot read the role's steps: {e.strerror}",
            hint=f"{folder / ROLE_FILE} names steps; each is a function so_step_<name> here",
        ) from e
    for step in steps:
        func = "so_step_" + step.replace("-", "_")
        if not re.search(rf"^{func}\(\)", text, re.M):
            raise ConfigError(
                f"{script}: no function {func}() for step {step!r}",
                hint=f"{folder / ROLE_FILE} lists it under steps",
            )


def _expand(name: str, raw: dict[str, Role]) -> list[str]:
    """`name` and everything it includes, breadth first; errors on unknown roles and cycles."""
    order: list[str] = []
    queue: deque[tuple[str, tuple[str, ...]]] = deque([(name, (name,))])
    while queue:
        current, chain = queue.popleft()
        if current in order:
            continue
        order.append(current)
        role = raw[current]
        for inc in role.includes:
            if inc not in raw:
                raise ConfigError(
                    f"{role.path}/{ROLE_FILE}: includes: unknown role {inc!r}",
                    hint="roles: " + ", ".join(sorted(raw)),
                )
            if inc in chain:
                raise ConfigError(
                    f"{role.path}/{ROLE_FILE}: includes: include cycle "
                    f"{' -> '.join((*chain, inc))}",
                    hint="remove one of the includes",
                )
            queue.append((inc, (*chain, inc)))
    return order


def _count(nf: Fields, key: str, default: int | None) -> int | None:
    if key not in nf.data:
        return default
    if nf.data[key] is None:
        return None
    n = nf.int(key)
    if n < 0:
        raise ConfigError(f"{nf.path}: {nf.where}.{key}: must be 0 or more")
    return n


def _load_architectures(
    path: Path, roles: dict[str, Role], order: dict[str, int]
) -> tuple[tuple[Architecture, ...], ArchitectureNode | None]:
    top = Fields(path, "", load_yaml(path), {"architectures", "first_boot"})
    raw = top.data.get("architectures")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: missing key architectures (a mapping of name -> nodes)")
    node_roles = [n for n, r in roles.items() if not r.abstract]
    archs: list[Architecture] = []
    for name, data in raw.items():
        where = f"architectures.{name}"
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ConfigError(f"{path}: {where}: architecture names are lowercase words")
        f = Fields(path, where, data, {"description", "nodes"})
        nodes_raw = data.get("nodes")
        if not isinstance(nodes_raw, list) or not nodes_raw:
            raise ConfigError(f"{path}: {where}.nodes must be a non-empty list")
        nodes = []
        for i, nd in enumerate(nodes_raw):
            nf = Fields(path, f"{where}.nodes[{i}]", nd, {"name", "label", "roles", "min", "max"})
            shape = nf.str_list("roles")
            for r in shape:
                if r not in node_roles:
                    raise ConfigError(
                        f"{path}: {where}.nodes[{i}].roles: unknown role {r!r}",
                        hint="node roles: " + ", ".join(node_roles),
                    )
            if len(set(shape)) != len(shape) or not shape:
                raise ConfigError(
                    f"{path}: {where}.nodes[{i}].roles: must name each role once, at least one"
                )
            low, high = _count(nf, "min", 1), _count(nf, "max", 1)
            if low is None or (high is not None and high < low):
                raise ConfigError(f"{path}: {where}.nodes[{i}]: needs 0 <= min <= max")
            nodes.append(
                ArchitectureNode(
                    name=_entry_name(path, f"{where}.nodes[{i}].name", nf.str("name")),
                    label=nf.str("label"),
                    roles=tuple(sorted(shape, key=lambda r: (order[r], r))),
                    min_count=low,
                    max_count=high,
                )
            )
        archs.append(Architecture(name=name, description=f.str("description"), nodes=tuple(nodes)))
    first_boot = None
    if top.data.get("first_boot") is not None:
        fb = top.sub("first_boot", {"name", "label"})
        first_boot = ArchitectureNode(
            name=_entry_name(path, "first_boot.name", fb.str("name")),
            label=fb.str("label"),
            roles=(),
        )
    return tuple(archs), first_boot


def _entry_name(path: Path, where: str, name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{path}: {where}: {name!r} is not an entry name (lowercase letters, digits, '-')"
        )
    return name


def load_roles(data_dir: Path) -> RoleSet:
    """Read and check roles/; ConfigError naming file and key on any problem."""
    folder = data_dir / "roles"
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no roles folder", hint="check --data-dir")
    raw: dict[str, Role] = {}
    defined: dict[str, Question] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not (sub / ROLE_FILE).is_file():
            raise ConfigError(
                f"{sub}: a role folder without {ROLE_FILE}",
                hint="every folder under roles/ is a role: add its role.yaml or remove it",
            )
        role, questions = _load_role(sub)
        raw[role.name] = role
        for q in questions:
            prev = defined.get(q.key)
            if prev is not None and not _same(prev, q):
                raise ConfigError(
                    f"{q.defined_in}: questions.{q.key}: defined differently in {prev.defined_in}",
                    hint="a question shared by roles must be defined the same way (or put it "
                    "in a role both include)",
                )
            defined.setdefault(q.key, q)
    if not any(not r.abstract for r in raw.values()):
        raise ConfigError(f"{folder}: no node role", hint="add roles/<role>/role.yaml")
    ordered_names = sorted(raw, key=lambda n: (raw[n].abstract is False, raw[n].order, n))
    order = {n: i for i, n in enumerate(ordered_names)}
    resolved: dict[str, Role] = {}
    for name in ordered_names:
        closure = _expand(name, raw)
        keys: list[str] = []
        for inc in reversed(closure):  # included roles' questions first
            for k in raw[inc].questions:
                if k not in keys:
                    keys.append(k)
        includes = tuple(sorted(closure[1:], key=lambda n: order[n]))
        resolved[name] = replace(raw[name], questions=tuple(keys), includes=includes)
    node_names = [n for n in ordered_names if not raw[n].abstract]
    for q in defined.values():
        for r in q.skip_with:
            if r not in node_names:
                raise ConfigError(
                    f"{q.defined_in}: questions.{q.key}.skip_with: unknown role {r!r}",
                    hint="node roles: " + ", ".join(node_names),
                )
    # Asking order: the order of first definition, following the role order.
    asking: list[str] = []
    for name in node_names:
        for k in resolved[name].questions:
            if k not in asking:
                asking.append(k)
    archs, first_boot = _load_architectures(folder / ARCH_FILE, resolved, order)
    return RoleSet(
        roles=tuple(resolved[n] for n in node_names),
        questions=tuple(defined[k] for k in asking),
        architectures=archs,
        first_boot_entry=first_boot,
        shared=tuple(resolved[n] for n in ordered_names if raw[n].abstract),
    )
