"""The node agent package: `stackops-agent_<version>_all.deb` built from the `agent/` data folder.

Owns the mapping from the data folder to the installed paths; the agent itself (POSIX sh, run on
lucid nodes) lives in `agent/` as data, never in Python strings. The .deb format is
archive/debs.py's.

  agent/stackops-agent            -> /usr/sbin/stackops-agent (0755)
  smart_installer/client/stackops-installer-client
                                  -> /usr/sbin/stackops-installer-client (0755), the Smart
                                     Installer's node side (the agent runs it)
  agent/lib/*.sh, *.awk           -> /usr/share/stackops/lib/
  agent/questions, nova-2011.2-flags.txt, templates/**, upstart/*.conf
                                  -> /usr/share/stackops/...
  agent/systemd/*.service         -> /lib/systemd/system/
  agent/debian/control            -> the control fields (Version is given by the caller)
  agent/debian/{postinst,prerm,postrm} -> maintainer scripts
"""

from __future__ import annotations

from pathlib import Path

from distro_builder.archive.debs import FileContent, build_deb, deb_filename
from distro_builder.errors import ConfigError

PACKAGE = "stackops-agent"
SHARE = "/usr/share/stackops"
# Data files below agent/ that go to /usr/share/stackops/ unchanged (mode 0644).
SHARED_FILES = ("questions", "nova-2011.2-flags.txt")
SHARED_DIRS = ("lib", "templates", "upstart")
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
    """The fields of agent/debian/control (deb822: `Name: value`, continuation lines indented)."""
    fields: dict[str, str] = {}
    last = None
    for n, line in enumerate(_read(path).decode("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line[0] in " \t":
            if last is None:
                raise ConfigError(f"{path}:{n}: continuation line before any field")
            fields[last] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"{path}:{n}: not a 'Field: value' line", hint="see deb-control(5)")
        last = name.strip()
        fields[last] = value.strip()
    return fields


def agent_files(data_dir: Path) -> dict[str, FileContent]:
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
    }
    for name in SHARED_FILES:
        files[f"{SHARE}/{name}"] = _read(src / name)
    for sub in SHARED_DIRS:
        for path in sorted((src / sub).rglob("*")):
            if path.is_file():
                files[f"{SHARE}/{path.relative_to(src).as_posix()}"] = _read(path)
    for unit in sorted((src / "systemd").glob("*.service")):
        files[f"/lib/systemd/system/{unit.name}"] = _read(unit)
    return files


def build_agent_deb(data_dir: Path, *, version: str, mtime: int) -> tuple[str, bytes]:
    """Build `stackops-agent_<version>_all.deb` from `data_dir/agent`; return (file name, bytes).

    The same inputs always give the same bytes. Raises ConfigError when agent/ is incomplete and
    ArchiveError on an invalid version.
    """
    src = data_dir / "agent"
    files = agent_files(data_dir)
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
