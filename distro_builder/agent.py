"""The node agent package: `stackops-agent_<version>_all.deb` built from the `agent/` data folder.

Owns the mapping from the data folder to the installed paths; the agent itself (POSIX sh, run on
lucid nodes) lives in `agent/` as data, never in Python strings. The .deb format is
archive/debs.py's.

  agent/stackops-agent            -> /usr/sbin/stackops-agent (0755)
  agent/stackops-check            -> /usr/sbin/stackops-check (0755), the cloud's health check
                                     (Python 2.6; the controller's last step, and the admin's)
  instance_image.build_instance_image()
                                  -> /usr/share/stackops/instance.img, the 1 MiB disk its
                                     instance and console checks boot (made here, not stored)
  smart_installer/client/stackops-installer-client
                                  -> /usr/sbin/stackops-installer-client (0755), the Smart
                                     Installer's node side (the agent runs it)
  agent/lib/*.sh, *.awk           -> /usr/share/stackops/lib/
  questions/validate.sh           -> /usr/share/stackops/lib/validate.sh (shared with d-i)
  roles/<role>/* but role.yaml    -> /usr/share/stackops/roles/<role>/ (steps.sh, nova.conf, ...)
  the questions and roles tables  -> /usr/share/stackops/{questions,roles.table}, rendered from
                                     roles/ (seed/tables.py)
  agent/nova-2011.2-flags.txt, upstart/*.conf
                                  -> /usr/share/stackops/...
  agent/systemd/*.service         -> /lib/systemd/system/
  agent/debian/control            -> the control fields (Version is given by the caller)
  agent/debian/{postinst,prerm,postrm} -> maintainer scripts
"""

from __future__ import annotations

import re
from pathlib import Path

from distro_builder.archive import deb822
from distro_builder.archive.debs import FileContent, build_deb, deb_filename
from distro_builder.config.roles import ROLE_FILE, load_roles
from distro_builder.errors import ArchiveError, ConfigError
from distro_builder.instance_image import build_instance_image
from distro_builder.model import RoleSet
from distro_builder.seed.tables import (
    render_architectures_table,
    render_question_table,
    render_roles_table,
    validators,
)

PACKAGE = "stackops-agent"
SHARE = "/usr/share/stackops"
# Data files below agent/ that go to /usr/share/stackops/ unchanged (mode 0644).
FLAGS_FILE = "nova-2011.2-flags.txt"
SHARED_FILES = (FLAGS_FILE,)
SHARED_DIRS = ("lib", "upstart")
INSTANCE_IMAGE = f"{SHARE}/instance.img"  # agent/stackops-check's IMAGE
NOVA_CONF = "nova.conf"  # a role's Cactus flags (roles/<role>/nova.conf)
_FLAG_LINE_RE = re.compile(r"--([a-z_0-9]+)(=.*)?")
MAINTAINER_SCRIPTS = ("postinst", "prerm", "postrm")
CLIENT = ("smart_installer", "client", "stackops-installer-client")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot read the agent's file: {e.strerror}",
            hint="the agent/ data folder is incomplete; use a full checkout or install",
        ) from e


def _parse_control(path: Path) -> dict[str, str]:
    """The fields of agent/debian/control (one deb822 stanza; archive/deb822.py reads it)."""
    try:
        stanzas = deb822.parse(_read(path), str(path))
    except ArchiveError as e:
        raise ConfigError(str(e), hint=e.hint) from e
    if len(stanzas) != 1:
        raise ConfigError(
            f"{path}: {len(stanzas)} stanzas, one expected", hint="see deb-control(5)"
        )
    return stanzas[0]


def check_nova_flags(roleset: RoleSet, data_dir: Path) -> None:
    """Every line of every role's nova.conf is `--flag[=value]` with a flag Nova 2011.2 defines
    (gflags ignores unknown flags silently, so a typo would only show as a broken node)."""
    known = {
        line.split()[0]
        for line in _read(data_dir / "agent" / FLAGS_FILE).decode().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for role in (*roleset.shared, *roleset.roles):
        path = Path(role.path) / NOVA_CONF
        if not path.is_file():
            continue
        for n, line in enumerate(_read(path).decode("utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            m = _FLAG_LINE_RE.fullmatch(line)
            if m is None:
                raise ConfigError(f"{path}:{n}: not a --flag=value line", hint="see its header")
            if m.group(1) not in known:
                raise ConfigError(
                    f"{path}:{n}: --{m.group(1)} is not a Nova 2011.2 flag",
                    hint=f"the flags Cactus defines are in agent/{FLAGS_FILE}",
                )


def agent_files(data_dir: Path, roleset: RoleSet | None = None) -> dict[str, FileContent]:
    """The agent package's files: installed path -> content or (content, mode)."""
    src = data_dir / "agent"
    if not (src / "stackops-agent").is_file():
        raise ConfigError(
            f"{src}: no agent here (agent/stackops-agent is missing)",
            hint="pass the distro-builder data folder with --data-dir",
        )
    files: dict[str, FileContent] = {
        "/usr/sbin/stackops-agent": (_read(src / "stackops-agent"), 0o755),
        "/usr/sbin/stackops-installer-client": (_read(data_dir.joinpath(*CLIENT)), 0o755),
        "/usr/sbin/stackops-check": (_read(src / "stackops-check"), 0o755),
        INSTANCE_IMAGE: build_instance_image(),
    }
    for name in SHARED_FILES:
        files[f"{SHARE}/{name}"] = _read(src / name)
    for sub in SHARED_DIRS:
        for path in sorted((src / sub).rglob("*")):
            if _shipped(path):
                files[f"{SHARE}/{path.relative_to(src).as_posix()}"] = _read(path)
    roleset = roleset if roleset is not None else load_roles(data_dir)
    check_nova_flags(roleset, data_dir)
    files[f"{SHARE}/lib/validate.sh"] = validators(data_dir)
    files[f"{SHARE}/questions"] = render_question_table(data_dir, roleset).encode()
    files[f"{SHARE}/roles.table"] = render_roles_table(data_dir, roleset).encode()
    files[f"{SHARE}/architectures.table"] = render_architectures_table(data_dir, roleset).encode()
    for role in (*roleset.shared, *roleset.roles):
        folder = Path(role.path)
        for path in sorted(folder.rglob("*")):
            if _shipped(path) and path.name != ROLE_FILE:
                files[f"{SHARE}/roles/{role.name}/{path.relative_to(folder).as_posix()}"] = _read(
                    path
                )
    for unit in sorted((src / "systemd").glob("*.service")):
        files[f"/lib/systemd/system/{unit.name}"] = _read(unit)
    return files


def _shipped(path: Path) -> bool:
    """A file of the data folders that goes on the node: not Python's byte-code, which pip
    writes beside a role's Python file (roles/controller/novarc.py) in an installed copy."""
    return path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"


def build_agent_deb(
    data_dir: Path, *, version: str, mtime: int, roleset: RoleSet | None = None
) -> tuple[str, bytes]:
    """Build `stackops-agent_<version>_all.deb` from `data_dir/agent`; return (file name, bytes).

    The same inputs always give the same bytes. Raises ConfigError when agent/ is incomplete and
    ArchiveError on an invalid version.
    """
    src = data_dir / "agent"
    files = agent_files(data_dir, roleset)
    control = _parse_control(src / "debian" / "control")
    if control.get("Package") != PACKAGE:
        raise ConfigError(
            f"{src / 'debian' / 'control'}: Package must be {PACKAGE}",
            hint="the agent package's name is part of the contract with the role packages",
        )
    control["Version"] = version
    control["Architecture"] = "all"
    scripts = {
        name: _read(src / "debian" / name).decode("utf-8")
        for name in MAINTAINER_SCRIPTS
        if (src / "debian" / name).is_file()
    }
    data = build_deb(
        control,
        files,
        directories=["/var/lib/stackops", "/var/log/stackops"],
        maintainer_scripts=scripts,
        mtime=mtime,
    )
    return deb_filename(PACKAGE, version, "all"), data
