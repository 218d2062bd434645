"""Boot entries and everything the installer reads: preseeds, debconf templates, installer files.

- `boot_entries`: one entry per node role and per reference-architecture node (same roles: one
  entry), one per deployment node, and the "choose roles later" entry.
- `render_preseed`: the entry's /preseed/stackops-<entry>.seed (preseed/stackops.seed.j2).
- `initrd_files`: what is appended to install/initrd.gz: preseed.cfg (locale, keyboard, the
  early/late commands) and /stackops/ (early.sh, late.sh, the debconf templates and the question
  table rendered from roles/). One initrd serves every entry: the roles come from the kernel
  command line.

Nothing here starts a process; checking is seed/check.py's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from distro_builder import __version__
from distro_builder.errors import ConfigError
from distro_builder.model import (
    DEFAULT_INSTALLER_WAIT,
    EXPERT_SUFFIX,
    KERNEL_IMAGES,
    BootEntry,
    Deployment,
    InstallerSettings,
    NetworkInstall,
    RoleSet,
    SystemSettings,
)
from distro_builder.seed.render import render_template
from distro_builder.seed.tables import (
    debconf_type,
    question_views,
    render_question_table,
    validators,
)

INSTALLER_DIR = "stackops"  # in the initrd's root
# The answer that is also MySQL's own debconf question (mysql-server/root_password).
MYSQL_ROOT_KEY = "mysql_root_password"
EARLY_COMMAND = f"sh /{INSTALLER_DIR}/early.sh"
LATE_COMMAND = f"sh /{INSTALLER_DIR}/late.sh"
# Where a network install's late command leaves the node's registration for the first-boot agent
# (the client's state file in the installed system: smart_installer/client's STATE_DIR/node)
INSTALLED_NODE_FILE = "/target/var/lib/stackops/installer/node"
AGENT_PACKAGE = "stackops-agent"
# base-installer/kernel/override-image per architecture (lucid-and-nova.md §2.3)
MAX_INSTALLER_WAIT = 86400  # a day: longer, the admin forgot the node
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/=-]{8,200}")
_HOST_RE = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+")  # a name, IPv4, or IPv6 (in [])
_LINE_BREAK_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class RenderedSeed:
    """One entry's preseed and what a reader must know about it."""

    entry: BootEntry
    text: str
    unanswered: tuple[str, ...]  # every prompt the installer will still show (d-i's and ours)
    plaintext_secrets: tuple[str, ...]  # secret keys readable on the disc in this seed


def installer_settings(
    url: str, token: str | None, fingerprint: str | None = None, wait: int | None = None
) -> InstallerSettings:
    """`build --installer-url/-token/-fingerprint/-wait`, checked: ConfigError naming the
    option. The fingerprint is normalized to openssl's form (AB:CD:..., 32 bytes)."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not _HOST_RE.fullmatch(parts.hostname)
        or any(c.isspace() or not c.isprintable() or c in "'\"\\" for c in url)
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"--installer-url {url!r}: not an http(s) URL of the Smart Installer",
            hint="like http://10.0.0.2:8080 or https://installer.example.com "
            "(what `distro-builder serve` prints as 'listening on')",
        )
    if parts.username or parts.password:
        raise ConfigError(
            "--installer-url: no user or password in the URL (it would be on the disc)",
            hint="the nodes authenticate with the deployment's enrolment token",
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"--installer-url {url!r}: the port is not a number") from None
    if not token:
        raise ConfigError(
            "--installer-url needs --installer-token (the deployment's enrolment token)",
            hint="`distro-builder installer deployment create` prints it, the admin UI shows it; "
            "it can also come from the environment variable STACKOPS_INSTALLER_TOKEN",
        )
    if not _TOKEN_RE.fullmatch(token):
        raise ConfigError(
            "--installer-token: not an enrolment token (8-200 letters, digits or ._~+/=-)",
            hint="copy it from `distro-builder installer deployment show`",
        )
    fp = None
    if fingerprint:
        if parts.scheme != "https":
            raise ConfigError(
                "--installer-fingerprint is for an https --installer-url",
                hint="the service uses TLS when started with --tls-cert/--tls-key",
            )
        hexdigits = fingerprint.replace(":", "").upper()
        if not re.fullmatch(r"[0-9A-F]{64}", hexdigits):
            raise ConfigError(
                f"--installer-fingerprint {fingerprint!r}: not a SHA-256 fingerprint",
                hint="64 hex digits, with or without colons: what `distro-builder serve` prints "
                "as 'certificate SHA-256 fingerprint'",
            )
        fp = ":".join(hexdigits[i : i + 2] for i in range(0, 64, 2))
    if wait is None:
        wait = DEFAULT_INSTALLER_WAIT
    elif not 0 <= wait <= MAX_INSTALLER_WAIT:
        raise ConfigError(
            f"--installer-wait {wait}: not between 0 and {MAX_INSTALLER_WAIT} seconds",
            hint="0 registers the node and goes on at once unless its roles are already assigned",
        )
    return InstallerSettings(url.rstrip("/"), token, fp, wait)


def metapackage(role: str) -> str:
    return f"stackops-{role}"


def boot_entries(
    roleset: RoleSet, deployment: Deployment | None = None, architecture: str | None = None
) -> tuple[BootEntry, ...]:
    """Every StackOps boot entry, in menu order; ConfigError on a name used twice.

    Order: most roles first (all-in-one, the dual-node controller), then one entry per role in
    the contract's order, then the deployment's nodes, then "choose roles later". With a
    reference architecture (`architecture`, else the deployment's), only the entries whose roles
    are one of its node shapes: a dual-node disc offers no all-in-one and no single-role
    controller/network/volume (issue 21), as `serve --disc`'s iPXE menu does.
    """
    by_roles: dict[tuple[str, ...], BootEntry] = {}
    nodes = [node for arch in roleset.architectures for node in arch.nodes]
    for role in roleset.roles:
        node = next((n for n in nodes if n.roles == (role.name,)), None)
        name, label = (node.name, node.label) if node else (role.name, "")
        by_roles[(role.name,)] = BootEntry(
            name, label or f"Install StackOps {role.name} node", (role.name,)
        )
    for node in nodes:
        by_roles.setdefault(node.roles, BootEntry(node.name, node.label, node.roles))
    idx = {r.name: i for i, r in enumerate(roleset.roles)}
    entries = sorted(
        by_roles.values(),
        key=lambda e: (-len(e.roles), tuple(idx.get(r, len(idx)) for r in e.roles)),
    )
    arch_name = _architecture_of(roleset, deployment, architecture)
    if arch_name is not None:
        shapes = {frozenset(n.roles) for n in roleset.architecture(arch_name).nodes}
        entries = [e for e in entries if frozenset(e.roles) in shapes]
    if deployment is not None:
        for n in deployment.nodes:
            entries.append(
                BootEntry(
                    name=f"node-{n.name}".lower(),
                    label=f"Install StackOps node {n.name}",
                    roles=n.roles,
                    answers=n.answers,
                )
            )
    if roleset.first_boot_entry is not None:
        fb = roleset.first_boot_entry
        entries.append(BootEntry(fb.name, fb.label, ()))
    # Every label is unique, the expert-mode ones (NAME-expert) too: isolinux boots the first of
    # two equal labels, so node cn1's expert entry would hide node cn1-expert (issue 20 #16).
    deployed = {f"node-{n.name}".lower(): n.name for n in deployment.nodes} if deployment else {}
    made_by: dict[str, str] = {}
    for e in entries:
        what = f"deployment node {deployed[e.name]}" if e.name in deployed else f"entry {e.name}"
        for label, by in ((e.name, what), (e.name + EXPERT_SUFFIX, f"the expert-mode {what}")):
            if label in made_by:
                raise ConfigError(
                    f"boot label {label!r} is made twice: by {by} and by {made_by[label]}",
                    hint="rename one of them (a deployment node in deployment.yaml, a reference-"
                    "architecture node in roles/architectures.yaml)",
                )
            made_by[label] = by
    return tuple(entries)


def _architecture_of(
    roleset: RoleSet, deployment: Deployment | None, architecture: str | None
) -> str | None:
    """The reference architecture the menu is for: the one asked for, else the deployment's;
    ConfigError when it is unknown or the two differ."""
    names = [a.name for a in roleset.architectures]
    if architecture is not None and architecture not in names:
        raise ConfigError(
            f"unknown reference architecture {architecture!r}",
            hint="architectures: " + ", ".join(names),
        )
    from_file = deployment.architecture if deployment is not None else None
    if architecture is not None and from_file is not None and architecture != from_file:
        raise ConfigError(
            f"--architecture {architecture} contradicts the deployment file's {from_file}",
            hint="leave --architecture out: the deployment file's architecture makes the menu",
        )
    return architecture or from_file


def find_entry(entries: tuple[BootEntry, ...], name: str) -> BootEntry:
    """The entry called `name`; ConfigError listing the entries otherwise."""
    for e in entries:
        if e.name == name:
            return e
    raise ConfigError(
        f"no boot entry {name!r}", hint="entries: " + ", ".join(e.name for e in entries)
    )


def entry_answers(
    entry: BootEntry, roleset: RoleSet, deployment: Deployment | None
) -> tuple[dict[str, str], tuple[str, ...]]:
    """(answers baked into the entry's preseed, questions left for the installer to ask)."""
    questions = roleset.questions_for(entry.roles) if entry.roles else roleset.questions
    wanted = {q.key for q in questions}
    baked: dict[str, str] = {}
    if deployment is not None:
        for key, value in (*deployment.answers, *entry.answers):
            if key in wanted:
                baked[key] = value
        if entry.roles:  # zero-touch: the defaults are answers too, "" that of an optional one
            for q in questions:
                if q.key not in baked and q.default is not None:
                    baked[q.key] = q.default
                elif q.key not in baked and q.optional:
                    baked[q.key] = ""
    # A question with a fallback takes d-i's own answer (e.g. netcfg/get_hostname); one made on
    # the node (made_on_node) is not asked; a whole cloud's entry takes defaults as they are.
    whole = roleset.whole_cloud(entry.roles)
    unanswered = tuple(
        q.key
        for q in questions
        if q.key not in baked
        and not q.fallback
        and not roleset.made_here(q, entry.roles)
        and not (whole and (q.default is not None or q.optional))
    )
    return baked, (unanswered if entry.roles else ())


def made_on_node(entry: BootEntry, roleset: RoleSet) -> tuple[str, ...]:
    """The questions the node agent makes on this entry's node instead of asking."""
    return tuple(
        q.key for q in roleset.questions_for(entry.roles) if roleset.made_here(q, entry.roles)
    )


def entry_prompts(
    entry: BootEntry, roleset: RoleSet, deployment: Deployment | None
) -> tuple[str, ...]:
    """Every prompt the entry's installer shows: d-i's own left open, then ours."""
    system = deployment.system if deployment else SystemSettings()
    _, unanswered = entry_answers(entry, roleset, deployment)
    return _prompts(roleset, unanswered, system, _hostname(entry, deployment), deployment)


def _hostname(entry: BootEntry, deployment: Deployment | None) -> str | None:
    hostname = dict(entry.answers).get("hostname")
    if hostname is None and deployment is not None:
        hostname = entry.name if entry.roles else "stackops"
    return hostname


def render_preseed(
    data_dir: Path,
    entry: BootEntry,
    *,
    roleset: RoleSet,
    deployment: Deployment | None,
    codename: str,
    flavor_version: str,
    arch: str,
    allow_unauthenticated: bool,
    installer: InstallerSettings | None = None,
    network: NetworkInstall | None = None,
) -> RenderedSeed:
    """The preseed of `entry` (preseed/stackops.seed.j2). With `installer`, the Smart
    Installer's URL, token and fingerprint become stackops/installer_* answers; with
    `network`, the node installs from the service's mirror and reports the end of the install
    (its late command)."""
    system = deployment.system if deployment else SystemSettings()
    baked, unanswered = entry_answers(entry, roleset, deployment)
    answers = []
    for q in roleset.questions:
        if q.key in baked:
            answers.append(
                {
                    "key": q.key,
                    "value": baked[q.key],
                    "debconf_type": debconf_type(q),
                    "secret": q.secret,
                }
            )
    # The entry installs MySQL's server when one of its roles asks for MySQL's root password.
    # "Choose roles later" (no roles) installs every role's packages, mysql-server among them, so
    # its MySQL prompt must be preseeded too (issue 22 item 3).
    mysql = any(
        q.key == MYSQL_ROOT_KEY for q in roleset.questions_for(entry.roles or roleset.names)
    )
    mysql_password = baked.get(MYSQL_ROOT_KEY) if mysql else None
    # "Choose roles later" installs every role's packages (as StackOps preinstalled Nova on every
    # node): nothing installs packages after the installer.
    packages = [metapackage(r) for r in (entry.roles or roleset.names)]
    hostname = _hostname(entry, deployment)
    _require_one_line(
        entry,
        [(f"system.{k}", getattr(system, k)) for k in SystemSettings.__slots__]
        + [("hostname", hostname)]
        + [(a["key"], a["value"]) for a in answers],
    )
    text = render_template(
        data_dir / "preseed",
        "stackops.seed.j2",
        entry=entry,
        version=__version__,
        codename=codename,
        flavor_version=flavor_version,
        system=system,
        hostname=hostname,
        unattended=deployment is not None,
        domain="",
        allow_unauthenticated=allow_unauthenticated,
        kernel_image=KERNEL_IMAGES.get(arch, "linux-server"),
        packages=packages,
        mysql=mysql,
        mysql_root_password=mysql_password,
        deployment_file=Path(deployment.path).name if deployment else "",
        answers=answers,
        installer=installer,
        network=network,
        # an entry that may be a volume node keeps room for nova-volumes on its one disk
        volume_recipe=any(roleset.role(r).volume_space for r in (entry.roles or roleset.names)),
        # late.sh asks only what has no default (the rest: the agent's defaults and makings)
        ask_required=roleset.whole_cloud(entry.roles),
        late_command=LATE_COMMAND,
        installed_node_file=INSTALLED_NODE_FILE,
    )
    secrets = tuple(a["key"] for a in answers if a["secret"])
    if installer is not None:
        secrets += ("installer_token",)
    return RenderedSeed(entry, text, _prompts(roleset, unanswered, system, hostname, deployment),
                        secrets)  # fmt: skip


def _prompts(
    roleset: RoleSet,
    unanswered: tuple[str, ...],
    system: SystemSettings,
    hostname: str | None,
    deployment: Deployment | None,
) -> tuple[str, ...]:
    """Every prompt the admin will see: d-i's own questions this preseed leaves open (host name,
    domain, the login password twice), then ours, a confirmed password counting twice."""
    asks: list[str] = []
    if hostname is None:
        asks.append("netcfg/get_hostname")
    if deployment is None:
        asks.append("netcfg/get_domain")
    if system.password_crypted is None:
        asks += ["passwd/user-password", "passwd/user-password-again"]
    for key in unanswered:
        asks.append(key)
        if roleset.question(key).confirm:
            asks.append(f"{key}_again")
    return tuple(asks)


def _require_one_line(entry: BootEntry, values: list[tuple[str, object]]) -> None:
    """Every value is one `d-i key type value` line: a line break would add preseed lines.
    (The loaders refuse them first; this is the last check before the text is made.)"""
    for key, value in values:
        if isinstance(value, str) and _LINE_BREAK_RE.search(value):
            raise ConfigError(
                f"{entry.seed_path}: {key} contains a line break or a control character",
                hint="every value of a preseed is one line: fix it in the deployment file",
            )


def render_initrd_preseed(data_dir: Path, system: SystemSettings) -> str:
    """The initrd's preseed.cfg (preseed/initrd-preseed.cfg.j2)."""
    return render_template(
        data_dir / "preseed",
        "initrd-preseed.cfg.j2",
        version=__version__,
        system=system,
        early_command=EARLY_COMMAND,
        late_command=LATE_COMMAND,
    )


def render_debconf_templates(data_dir: Path, roleset: RoleSet) -> str:
    """debconf templates for every question (d-i/stackops.templates.j2)."""
    return render_template(
        data_dir / "d-i", "stackops.templates.j2", questions=question_views(roleset)
    )


def initrd_files(
    data_dir: Path, roleset: RoleSet, system: SystemSettings
) -> Mapping[str, bytes | tuple[bytes, int]]:
    """Path in the initrd -> content (or (content, mode)) appended to install/initrd.gz."""
    folder = data_dir / "d-i"
    scripts = {}
    for name in ("early.sh", "late.sh"):
        path = folder / name
        if not path.is_file():
            raise ConfigError(f"{path}: missing installer script", hint="check --data-dir")
        scripts[f"{INSTALLER_DIR}/{name}"] = (path.read_bytes(), 0o755)
    return {
        "preseed.cfg": render_initrd_preseed(data_dir, system).encode(),
        **scripts,
        f"{INSTALLER_DIR}/stackops.templates": render_debconf_templates(data_dir, roleset).encode(),
        f"{INSTALLER_DIR}/questions": render_question_table(data_dir, roleset).encode(),
        f"{INSTALLER_DIR}/validate.sh": validators(data_dir),
    }
