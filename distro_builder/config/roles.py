"""roles/*.yaml + roles/architectures.yaml -> RoleSet; value validation for answers.

A role file holds a description, package lists, services, config fragments and the questions the
role needs answered (type, default, validation). `includes` pulls in other roles' questions (a
breadth-first walk, diskimage-builder style); an unknown role or an include cycle is an error
naming the file and the key. A question defined in two files must be defined the same way.
The reference architectures name node roles only. Question keys are the keys of the answers
file (/etc/stackops/answers).
"""

from __future__ import annotations

import ipaddress
import re
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

from distro_builder.config import Fields, load_yaml
from distro_builder.errors import ConfigError
from distro_builder.model import Architecture, ArchitectureNode, Question, Role, RoleSet

# The shared contract: the node roles and the order the menu and the answers use.
NODE_ROLES = ("controller", "network", "volume", "compute")
ARCHITECTURES = ("single-node", "dual-node", "multi-node")
QUESTION_TYPES = (
    "ipv4", "cidr", "int", "string", "password", "interface", "device", "choice", "hostname",
)  # fmt: skip
# Answers-file keys (the shared contract); `roles` is the entry's, not a question.
ANSWER_KEYS = (
    "roles", "hostname", "controller_address", "mysql_root_password", "nova_db_password",
    "rabbit_password", "admin_user", "admin_password", "project", "public_interface",
    "flat_interface", "fixed_range", "network_size", "floating_range", "volume_device",
    "libvirt_type", "installer_url", "installer_token", "installer_fingerprint", "installer_wait",
)  # fmt: skip
# Answers-file keys that are not questions: the Smart Installer's (build --installer-url), read
# by the node agent's client. Never asked of the admin.
INSTALLER_KEYS = ("installer_url", "installer_token", "installer_fingerprint", "installer_wait")

_ROLE_KEYS = {
    "description", "abstract", "includes", "package_lists", "services", "questions", "config",
}  # fmt: skip
_QUESTION_KEYS = {
    "type", "prompt", "description", "default", "choices", "min", "max", "confirm",
    "skip_with", "fallback",
}  # fmt: skip
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
_INTERFACE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_DEVICE_RE = re.compile(r"^/dev/[A-Za-z0-9_/.-]+$")
_DEBCONF_NAME_RE = re.compile(r"^[a-z0-9-]+/[A-Za-z0-9_./-]+$")
ARCH_FILE = "architectures.yaml"


def validate_value(q: Question, value: str) -> str | None:
    """Why `value` is not a valid answer to `q`, or None when it is."""
    t = q.type
    if value == "":
        return "it is empty"
    if any(c in value for c in "\n\r\0"):
        return "it contains a line break"
    if t == "ipv4":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return "it is not an IPv4 address (like 10.0.0.1)"
    elif t == "cidr":
        try:
            ipaddress.IPv4Network(value, strict=True)
        except ValueError:
            return "it is not an IPv4 network in CIDR form (like 192.168.100.0/24)"
        if "/" not in value:
            return "it has no /prefix (like 192.168.100.0/24)"
    elif t == "int":
        if not re.fullmatch(r"[0-9]+", value):
            return "it is not a whole number"
        n = int(value)
        if q.minimum is not None and n < q.minimum:
            return f"it is below {q.minimum}"
        if q.maximum is not None and n > q.maximum:
            return f"it is above {q.maximum}"
    elif t == "interface":
        if not _INTERFACE_RE.fullmatch(value):
            return "it is not a network interface name (like eth1)"
    elif t == "device":
        if not _DEVICE_RE.fullmatch(value):
            return "it is not a device path (like /dev/sdb)"
    elif t == "choice":
        if value not in q.choices:
            return f"it is not one of {', '.join(q.choices)}"
    elif t == "hostname":
        if not _HOSTNAME_RE.fullmatch(value):
            return "it is not a host name (letters, digits and '-', at most 63)"
    return None


def _question(path: Path, key: str, data: Any) -> Question:
    where = f"questions.{key}"
    f = Fields(path, where, data, _QUESTION_KEYS)
    askable = [k for k in ANSWER_KEYS if k != "roles" and k not in INSTALLER_KEYS]
    if key not in askable:
        raise ConfigError(
            f"{path}: {where}: unknown answers key {key!r}",
            hint="question keys are answers-file keys: " + ", ".join(askable),
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
    minimum = f.int("min") if "min" in data else None
    maximum = f.int("max") if "max" in data else None
    if (minimum is not None or maximum is not None) and qtype != "int":
        raise ConfigError(f"{path}: {where}: min/max are for int questions only")
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
        defined_in=str(path),
    )
    if q.confirm and qtype != "password":
        raise ConfigError(f"{path}: {where}.confirm: only passwords are confirmed")
    if default is not None:
        why = validate_value(q, default)
        if why:
            raise ConfigError(f"{path}: {where}.default: {default!r} is not valid: {why}")
    for r in q.skip_with:
        if r not in NODE_ROLES:
            raise ConfigError(
                f"{path}: {where}.skip_with: unknown role {r!r}",
                hint="roles: " + ", ".join(NODE_ROLES),
            )
    return q


def _same(a: Question, b: Question) -> bool:
    return replace(a, defined_in="") == replace(b, defined_in="")


def _load_role(path: Path) -> tuple[Role, list[Question]]:
    name = path.stem
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{path}: role names are lowercase letters, digits and '-'",
            hint="rename the file",
        )
    data = load_yaml(path)
    f = Fields(path, "", data, _ROLE_KEYS)
    questions: list[Question] = []
    raw_q = data.get("questions") or {}
    if not isinstance(raw_q, dict):
        raise ConfigError(f"{path}: questions must be a mapping of answers key -> question")
    for key, qdata in raw_q.items():
        questions.append(_question(path, str(key), qdata))
    raw_cfg = data.get("config") or {}
    if not isinstance(raw_cfg, dict) or not all(
        isinstance(v, str | int | bool) for v in raw_cfg.values()
    ):
        raise ConfigError(f"{path}: config must be a mapping of nova flag -> value")
    abstract = f.bool("abstract")
    role = Role(
        name=name,
        description=f.str("description"),
        package_lists=f.str_list("package_lists") if "package_lists" in data else (),
        services=f.str_list("services") if "services" in data else (),
        questions=tuple(q.key for q in questions),
        config=tuple((str(k), str(v)) for k, v in raw_cfg.items()),
        includes=f.str_list("includes") if "includes" in data else (),
        abstract=abstract,
        path=str(path),
    )
    if not abstract and not role.package_lists:
        raise ConfigError(f"{path}: missing key package_lists", hint="e.g. [common, <role>]")
    return role, questions


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
                    f"{role.path}: includes: unknown role {inc!r}",
                    hint="roles: " + ", ".join(sorted(raw)),
                )
            if inc in chain:
                raise ConfigError(
                    f"{role.path}: includes: include cycle {' -> '.join((*chain, inc))}",
                    hint="remove one of the includes",
                )
            queue.append((inc, (*chain, inc)))
    return order


def _load_architectures(path: Path, roles: dict[str, Role]) -> tuple[
    tuple[Architecture, ...], ArchitectureNode | None
]:  # fmt: skip
    top = Fields(path, "", load_yaml(path), {"architectures", "first_boot"})
    raw = top.data.get("architectures")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: missing key architectures (a mapping of name -> nodes)")
    archs: list[Architecture] = []
    for name, data in raw.items():
        where = f"architectures.{name}"
        if name not in ARCHITECTURES:
            raise ConfigError(
                f"{path}: {where}: unknown reference architecture {name!r}",
                hint="architectures: " + ", ".join(ARCHITECTURES),
            )
        f = Fields(path, where, data, {"description", "nodes"})
        nodes_raw = data.get("nodes")
        if not isinstance(nodes_raw, list) or not nodes_raw:
            raise ConfigError(f"{path}: {where}.nodes must be a non-empty list")
        nodes = []
        for i, nd in enumerate(nodes_raw):
            nf = Fields(path, f"{where}.nodes[{i}]", nd, {"name", "label", "roles"})
            node_roles = nf.str_list("roles")
            for r in node_roles:
                if r not in roles or roles[r].abstract:
                    raise ConfigError(
                        f"{path}: {where}.nodes[{i}].roles: unknown role {r!r}",
                        hint="node roles: "
                        + ", ".join(n for n, x in roles.items() if not x.abstract),
                    )
            if len(set(node_roles)) != len(node_roles) or not node_roles:
                raise ConfigError(
                    f"{path}: {where}.nodes[{i}].roles: must name each role once, at least one"
                )
            nodes.append(
                ArchitectureNode(
                    name=_entry_name(path, f"{where}.nodes[{i}].name", nf.str("name")),
                    label=nf.str("label"),
                    roles=_canonical(node_roles),
                )
            )
        archs.append(Architecture(name=name, description=f.str("description"), nodes=tuple(nodes)))
    missing = [a for a in ARCHITECTURES if a not in raw]
    if missing:
        raise ConfigError(f"{path}: architectures: missing {', '.join(missing)}")
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


def _canonical(roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    order = {r: i for i, r in enumerate(NODE_ROLES)}
    return tuple(sorted(roles, key=lambda r: (order.get(r, len(order)), r)))


def canonical_roles(roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Roles in the contract's order (controller, network, volume, compute)."""
    return _canonical(roles)


def load_roles(data_dir: Path) -> RoleSet:
    """Read and check roles/; ConfigError naming file and key on any problem."""
    folder = data_dir / "roles"
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no roles folder", hint="check --data-dir")
    raw: dict[str, Role] = {}
    defined: dict[str, Question] = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name == ARCH_FILE:
            continue
        role, questions = _load_role(path)
        raw[role.name] = role
        for q in questions:
            prev = defined.get(q.key)
            if prev is not None and not _same(prev, q):
                raise ConfigError(
                    f"{path}: questions.{q.key}: defined differently in {prev.defined_in}",
                    hint="a question shared by roles must be defined the same way (or put it "
                    "in a role both include)",
                )
            defined.setdefault(q.key, q)
    missing = [r for r in NODE_ROLES if r not in raw or raw[r].abstract]
    if missing:
        raise ConfigError(
            f"{folder}: missing node role(s): {', '.join(missing)}",
            hint="roles/<role>.yaml for controller, network, volume and compute",
        )
    resolved: dict[str, Role] = {}
    for name, role in raw.items():
        closure = _expand(name, raw)
        keys: list[str] = []
        for inc in reversed(closure):  # included roles' questions first
            for k in raw[inc].questions:
                if k not in keys:
                    keys.append(k)
        resolved[name] = replace(role, questions=tuple(keys))
    for q in defined.values():
        for r in q.skip_with:
            if r not in resolved:
                raise ConfigError(f"{q.defined_in}: questions.{q.key}.skip_with: unknown role")
    # Asking order: the order of first definition, following the canonical role order.
    asking: list[str] = []
    for name in (*NODE_ROLES, *sorted(resolved)):
        for k in resolved[name].questions:
            if k not in asking:
                asking.append(k)
    archs, first_boot = _load_architectures(folder / ARCH_FILE, resolved)
    node_roles = tuple(
        resolved[n] for n in _canonical([n for n in resolved if not raw[n].abstract])
    )
    return RoleSet(
        roles=node_roles,
        questions=tuple(defined[k] for k in asking),
        architectures=archs,
        first_boot_entry=first_boot,
    )
