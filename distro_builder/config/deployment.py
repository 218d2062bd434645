"""deployment.yaml -> Deployment: a deployment's global answers, once, checked before slow work.

The file holds the answers every node shares (controller address, passwords, networks), an
optional reference architecture with its nodes and their own values (hostname, interfaces), and
the installed system's settings (locale, keyboard, time zone, the login user). Every value is
checked against the question that asks it (roles/), then the cross-field rules ("dual-node needs
exactly one controller", "compute needs controller_address"); errors name file, line and key.
The login password is turned into a SHA-512 crypt hash here (seed/crypt via run is not needed:
the caller passes a hasher) so no plaintext login password reaches the disc.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from distro_builder.config import compose_yaml, load_yaml
from distro_builder.config.questions import validate_value
from distro_builder.errors import ConfigError
from distro_builder.model import Architecture, Deployment, DeploymentNode, RoleSet, SystemSettings

Lines = dict[tuple[Any, ...], int]
Hasher = Callable[[str, str], str]  # (password, salt source) -> crypt hash

_TOP_KEYS = {"architecture", "answers", "nodes", "system"}
_NODE_KEYS = {"name", "roles", "answers"}
_SYSTEM_KEYS = {
    "locale", "keyboard", "timezone", "username", "fullname", "password", "password_crypted",
}  # fmt: skip
# The system settings go into preseeds (one `d-i key type value` line each), the kernel command
# line and the initrd's preseed.cfg: each has a pattern for its place, and none may hold a line
# break or another control character (a newline in fullname was a second preseed line).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SYSTEM_PATTERNS = {
    "locale": (
        re.compile(r"[A-Za-z]{1,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]{1,16})?(@[A-Za-z]{1,16})?"),
        "a locale like en_US or de_DE.UTF-8",
    ),
    "keyboard": (
        re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}"),
        "a keyboard layout code like us or de",
    ),
}
# crypt(3) MD5, SHA-256, SHA-512: $id$[rounds=N$]salt$hash, salt and hash in crypt's alphabet
_CRYPT_RE = re.compile(
    r"\$(1|5|6)\$(rounds=[1-9][0-9]{3,8}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,86}"
)
_FULLNAME_MAX = 128
# Time zones are tzdata names (Area/Location, Etc/GMT+5, UTC): a path under /usr/share/zoneinfo,
# so each part starts with a letter (no "..", no absolute path).
_TIMEZONE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,31}(/[A-Za-z][A-Za-z0-9_+-]{0,31}){0,2}")
# The login user is a new account: Debian's NAME_REGEX, and none of the system's own accounts
# (lucid's base passwd, and the ones the roles' packages create).
_USERNAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
RESERVED_USERS = frozenset(
    "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats"
    " nobody libuuid syslog messagebus sshd landscape admin ntp statd postfix dnsmasq mysql"
    " rabbitmq nova glance libvirt-qemu libvirt-dnsmasq iscsid tgt".split()
)


def per_node_keys(roleset: RoleSet) -> tuple[str, ...]:
    """The answers that differ from node to node (`per_node: true`); they are not global."""
    return tuple(q.key for q in roleset.questions if q.per_node)


def _load_with_lines(path: Path) -> tuple[Any, Lines]:
    """The YAML document and the 1-based line of every mapping key / list item, by key path."""
    data = load_yaml(path)  # syntax errors with their line
    node = compose_yaml(path)  # bounded: the walk below follows aliases
    lines: Lines = {}

    def walk(n: Any, at: tuple[Any, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = (*at, k.value)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                lines[(*at, i)] = v.start_mark.line + 1
                walk(v, (*at, i))

    if node is not None:
        walk(node, ())
    return data, lines


class _Ctx:
    def __init__(self, path: Path, lines: Lines) -> None:
        self.path, self.lines = path, lines

    def where(self, at: tuple[Any, ...]) -> str:
        probe = at
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in at)
        key = key.replace(".[", "[")
        return f"{self.path}:{line}: {key}" if line else f"{self.path}: {key or 'top level'}"

    def error(self, at: tuple[Any, ...], message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{self.where(at)}: {message}", hint=hint)


def _mapping(ctx: _Ctx, at: tuple[Any, ...], data: Any, allowed: set[str]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ctx.error(at, "must be a mapping")
    for key in data:
        if str(key) not in allowed:
            raise ctx.error(
                (*at, key), "unknown key", hint="allowed: " + ", ".join(sorted(allowed))
            )
    return {str(k): v for k, v in data.items()}


def _scalar(ctx: _Ctx, at: tuple[Any, ...], value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ctx.error(at, "must be a single value (quote it if it looks like a list or map)")
    return str(value)


def _answers(
    ctx: _Ctx, at: tuple[Any, ...], data: Any, roleset: RoleSet, allowed: tuple[str, ...]
) -> dict[str, str]:
    raw = _mapping(ctx, at, data, set(allowed) | {q.key for q in roleset.questions})
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key not in allowed:
            per_node = per_node_keys(roleset)
            raise ctx.error(
                (*at, key),
                "is not a value for this place",
                hint="per-node values (" + ", ".join(per_node) + ") go under nodes[].answers"
                if key in per_node
                else "it is the same for every node: put it under answers",
            )
        text = _scalar(ctx, (*at, key), value)
        q = roleset.question(key)
        why = validate_value(q, text)
        if why:
            shown = "(secret)" if q.secret else repr(text)
            raise ctx.error((*at, key), f"{shown} is not valid: {why}")
        out[key] = text
    return out


def _roles(ctx: _Ctx, at: tuple[Any, ...], value: Any, roleset: RoleSet) -> tuple[str, ...]:
    names = ", ".join(roleset.names)
    if isinstance(value, str):
        value = [r.strip() for r in value.split(",") if r.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value):
        raise ctx.error(at, "must be a list of roles", hint="roles: " + names)
    for r in value:
        if r not in roleset.names:
            raise ctx.error(at, f"unknown role {r!r}", hint="roles: " + names)
    if len(set(value)) != len(value):
        raise ctx.error(at, "names a role twice")
    return roleset.ordered(value)


Shape = tuple[tuple[str, ...], tuple[Any, ...]]  # a node's roles and where they are written


def _check_architecture(ctx: _Ctx, arch: Architecture, nodes: list[Shape]) -> None:
    """The nodes fit the reference architecture (roles/architectures.yaml): every node has one
    of its shapes, each shape as many times as it allows; errors name the node's line."""
    shapes = {n.roles: n for n in arch.nodes}
    allowed = " | ".join("+".join(n.roles) for n in arch.nodes)
    for roles, at in nodes:
        if roles not in shapes:
            raise ctx.error(
                at,
                f"{arch.name} nodes are {allowed}, not {'+'.join(roles)}",
                hint=f"roles/architectures.yaml: {arch.name}",
            )
    for shape in arch.nodes:
        found = [at for roles, at in nodes if roles == shape.roles]
        what = "+".join(shape.roles)
        if shape.max_count is not None and len(found) > shape.max_count:
            raise ctx.error(
                found[shape.max_count],
                f"{arch.name} has at most {shape.max_count} {what} node(s) (found {len(found)})",
            )
        if len(found) < shape.min_count:
            raise ctx.error(
                ("architecture",),
                f"{arch.name} needs at least {shape.min_count} {what} node(s) (found {len(found)})",
                hint=f"add a node with roles: [{', '.join(shape.roles)}]",
            )


def _check_role_counts(ctx: _Ctx, roleset: RoleSet, nodes: list[Shape]) -> None:
    """No role on more nodes than its `max_per_deployment`."""
    for role in roleset.roles:
        if role.max_per_deployment is None:
            continue
        found = [at for roles, at in nodes if role.name in roles]
        if len(found) > role.max_per_deployment:
            raise ctx.error(
                found[role.max_per_deployment],
                f"a deployment has at most {role.max_per_deployment} {role.name} node(s) "
                f"(found {len(found)})",
                hint=f"roles/{role.name}/role.yaml: max_per_deployment",
            )


def _check_needed_answers(
    ctx: _Ctx, roleset: RoleSet, answers: dict[str, str], shapes: list[Shape]
) -> None:
    """A question that a node's own roles answer (skip_with: the controller's own address)
    must be in the deployment for every node without such a role: it cannot find it itself.
    An optional one (the controller's network_address) may stay empty."""
    for roles, at in shapes:
        for q in roleset.questions_for(roles):
            if q.skip_with and not q.optional and q.key not in answers:
                raise ctx.error(
                    at,
                    f"{'+'.join(roles)} needs {q.key} (the node has no "
                    f"{' or '.join(q.skip_with)} role)",
                    hint=f"add answers: {{{q.key}: ...}} ({q.prompt})",
                )


def load_deployment(path: Path, roleset: RoleSet, hash_password: Hasher) -> Deployment:
    """Read and check a deployment file; ConfigError naming file, line and key."""
    path = Path(path)
    data, lines = _load_with_lines(path)
    ctx = _Ctx(path, lines)
    top = _mapping(ctx, (), data, _TOP_KEYS)
    if not top:
        raise ctx.error((), "the deployment file is empty", hint="see README.md, Deployment")
    arch = None
    if top.get("architecture") is not None:
        arch = _scalar(ctx, ("architecture",), top["architecture"])
        if arch not in [a.name for a in roleset.architectures]:
            raise ctx.error(
                ("architecture",),
                f"unknown reference architecture {arch!r}",
                hint="architectures: " + ", ".join(a.name for a in roleset.architectures),
            )
    per_node = per_node_keys(roleset)
    global_keys = tuple(q.key for q in roleset.questions if q.key not in per_node)
    answers = _answers(ctx, ("answers",), top.get("answers"), roleset, global_keys)

    nodes: list[DeploymentNode] = []
    raw_nodes = top.get("nodes")
    if raw_nodes is not None and not isinstance(raw_nodes, list):
        raise ctx.error(("nodes",), "must be a list of nodes")
    seen_names: dict[str, tuple[Any, ...]] = {}
    for i, nd in enumerate(raw_nodes or []):
        at = ("nodes", i)
        nf = _mapping(ctx, at, nd, _NODE_KEYS)
        if "name" not in nf:
            raise ctx.error(at, "missing key name (the node's host name)")
        name = _scalar(ctx, (*at, "name"), nf["name"])
        why = validate_value(roleset.question("hostname"), name)
        if why:
            raise ctx.error((*at, "name"), f"{name!r} is not a host name: {why}")
        if name in seen_names:
            raise ctx.error((*at, "name"), f"node {name!r} is named twice")
        seen_names[name] = at
        if "roles" not in nf:
            raise ctx.error(at, "missing key roles")
        roles = _roles(ctx, (*at, "roles"), nf["roles"], roleset)
        node_answers = _answers(ctx, (*at, "answers"), nf.get("answers"), roleset, per_node)
        node_answers.setdefault("hostname", name)
        if node_answers["hostname"] != name:
            raise ctx.error((*at, "answers", "hostname"), "differs from the node's name")
        nodes.append(
            DeploymentNode(
                name=name,
                roles=roles,
                answers=tuple(node_answers.items()),
                line=lines.get(at, 0),
            )
        )

    # Cross-field rules.
    node_roles = [(n.roles, ("nodes", i, "roles")) for i, n in enumerate(nodes)]
    _check_role_counts(ctx, roleset, node_roles)
    if arch is not None and nodes:
        _check_architecture(ctx, roleset.architecture(arch), node_roles)
    shape = node_roles
    if arch is not None and not nodes:
        shape = [(n.roles, ("architecture",)) for n in roleset.architecture(arch).nodes]
    _check_needed_answers(ctx, roleset, answers, shape)
    if answers.get("fixed_range") and answers.get("floating_range"):
        fixed = ipaddress.IPv4Network(answers["fixed_range"])
        floating = ipaddress.IPv4Network(answers["floating_range"])
        if fixed.overlaps(floating):
            raise ctx.error(
                ("answers", "floating_range"),
                f"overlaps fixed_range {fixed}",
                hint="instances' private and public addresses must not overlap",
            )
    if answers.get("controller_address") and answers.get("floating_range"):
        floating = ipaddress.IPv4Network(answers["floating_range"])
        if ipaddress.IPv4Address(answers["controller_address"]) in floating:
            raise ctx.error(
                ("answers", "floating_range"),
                f"{floating} contains controller_address {answers['controller_address']}",
                hint="floating addresses are handed to instances: give a range the "
                "controller's address is not in",
            )
    if "network_size" in answers and "fixed_range" in answers:
        size = int(answers["network_size"])
        if size > ipaddress.IPv4Network(answers["fixed_range"]).num_addresses:
            raise ctx.error(
                ("answers", "network_size"),
                f"{size} is larger than fixed_range {answers['fixed_range']}",
            )

    system = _system(ctx, top.get("system"), hash_password)
    secrets = sorted(k for k in answers if roleset.question(k).secret)
    return Deployment(
        path=str(path),
        architecture=arch,
        answers=tuple(answers.items()),
        nodes=tuple(nodes),
        system=system,
        plaintext_on_disc=tuple(secrets),
    )


def _system(ctx: _Ctx, data: Any, hash_password: Hasher) -> SystemSettings:
    raw = _mapping(ctx, ("system",), data, _SYSTEM_KEYS)
    values = {k: _scalar(ctx, ("system", k), v) for k, v in raw.items()}
    for key, value in values.items():
        if _CONTROL_RE.search(value) and key != "password":
            raise ctx.error(
                ("system", key),
                "contains a line break or another control character",
                hint="it goes into the preseed and the boot menu one line per value: "
                "write it on one line",
            )
    if "password" in values and "password_crypted" in values:
        raise ctx.error(("system", "password"), "give password or password_crypted, not both")
    crypted = values.pop("password_crypted", None)
    if crypted is not None and not _CRYPT_RE.fullmatch(crypted):
        raise ctx.error(
            ("system", "password_crypted"),
            "is not a crypt(3) hash ($6$salt$hash)",
            hint="make one with: openssl passwd -6",
        )
    plain = values.pop("password", None)
    username = values.get("username", "stackops")
    if plain is not None:
        if len(plain) < 8:
            raise ctx.error(("system", "password"), "is shorter than 8 characters")
        crypted = hash_password(plain, username)
    for key in ("locale", "keyboard", "timezone", "username"):
        if key in values and (not values[key] or any(c.isspace() for c in values[key])):
            raise ctx.error(("system", key), "must be one word")
    for key, (pattern, what) in _SYSTEM_PATTERNS.items():
        if key in values and not pattern.fullmatch(values[key]):
            raise ctx.error(("system", key), f"{values[key]!r} is not {what}")
    if "timezone" in values and not _TIMEZONE_RE.fullmatch(values["timezone"]):
        raise ctx.error(
            ("system", "timezone"),
            f"{values['timezone']!r} is not a time zone name",
            hint="an Area/Location name of tzdata, like Europe/Madrid, America/New_York or UTC",
        )
    if "username" in values:
        name = values["username"]
        if not _USERNAME_RE.fullmatch(name):
            raise ctx.error(
                ("system", "username"),
                f"{name!r} is not a user name (a lower-case letter, then up to 31 lower-case "
                "letters, digits, '_' or '-')",
            )
        if name in RESERVED_USERS:
            raise ctx.error(
                ("system", "username"),
                f"{name!r} is a system account",
                hint="the login user is a new, unprivileged account with sudo: pick another "
                "name, like ops",
            )
    if "fullname" in values:
        fullname = values["fullname"]
        if not fullname.strip() or len(fullname) > _FULLNAME_MAX or ":" in fullname:
            raise ctx.error(
                ("system", "fullname"),
                f"must be 1-{_FULLNAME_MAX} characters without ':' (it goes into /etc/passwd)",
            )
    return SystemSettings(password_crypted=crypted, **values)
