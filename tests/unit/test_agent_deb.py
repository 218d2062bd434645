"""build_agent_deb: the agent's .deb from the agent/ data folder (read back with tarfile)."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from distro_builder.agent import build_agent_deb
from distro_builder.errors import ArchiveError, ConfigError


def _members(deb: bytes) -> dict[str, bytes]:
    assert deb.startswith(b"!<arch>\n")
    out, pos = {}, 8
    while pos < len(deb):
        header = deb[pos : pos + 60]
        name = header[:16].decode().strip()
        size = int(header[48:58].decode().strip())
        out[name] = deb[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    return out


def _tar(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(data: bytes, name: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read().decode()


def test_name_control_and_reproducible(data_dir: Path) -> None:
    name, deb = build_agent_deb(data_dir, version="0.1.0", mtime=1302652800)
    assert name == "stackops-agent_0.1.0_all.deb"
    assert build_agent_deb(data_dir, version="0.1.0", mtime=1302652800)[1] == deb
    assert build_agent_deb(data_dir, version="0.1.0", mtime=1302652801)[1] != deb
    ctrl = _members(deb)["control.tar.gz"]
    control = _read(ctrl, "./control")
    assert "Package: stackops-agent\n" in control
    assert "Version: 0.1.0\n" in control and "Architecture: all\n" in control
    assert "Recommends: whiptail, openssl\n" in control
    # the Smart Installer client runs GNU wget (lucid main)
    assert "Depends: mawk | awk, sed, grep, coreutils, wget\n" in control
    members = _tar(ctrl)
    for script in ("./postinst", "./prerm", "./postrm"):
        assert members[script].mode == 0o755
    assert "./conffiles" not in members  # the job file is placed by postinst, not a conffile


def test_files_and_modes(data_dir: Path) -> None:
    _, deb = build_agent_deb(data_dir, version="0.1.0", mtime=0)
    data = _tar(_members(deb)["data.tar.gz"])
    assert data["./usr/sbin/stackops-agent"].mode == 0o755
    assert data["./usr/sbin/stackops-installer-client"].mode == 0o755
    assert data["./usr/sbin/stackops-check"].mode == 0o755  # the cloud's health check
    client = (data_dir / "smart_installer/client/stackops-installer-client").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(_members(deb)["data.tar.gz"]), mode="r:gz") as tar:
        f = tar.extractfile("./usr/sbin/stackops-installer-client")
        assert f is not None and f.read() == client
    assert data["./usr/share/stackops/lib/installer.sh"].mode == 0o644
    for lib in ("common", "answers", "service", "render", "steps"):
        assert data[f"./usr/share/stackops/lib/{lib}.sh"].mode == 0o644
    # every role folder but its role.yaml (read at build time, not on the node)
    for role in sorted(p.name for p in (data_dir / "roles").iterdir() if p.is_dir()):
        for f in sorted((data_dir / "roles" / role).iterdir()):
            shipped = f"./usr/share/stackops/roles/{role}/{f.name}"
            assert (shipped in data) == (f.name != "role.yaml"), shipped
    for path in (
        "./usr/share/stackops/roles/controller/glance.conf",
        "./usr/share/stackops/lib/validate.sh",
        "./usr/share/stackops/roles.table",
        "./usr/share/stackops/upstart/stackops-agent.conf",
        "./usr/share/stackops/nova-2011.2-flags.txt",
        "./usr/share/stackops/questions",
        "./lib/systemd/system/stackops-agent.service",
        "./var/lib/stackops",
    ):
        assert path in data, path
    assert all(m.uid == 0 and m.gid == 0 for m in data.values())
    assert not any(n.startswith("./etc/init/") for n in data), "postinst places the job"


def test_upstart_job_is_lucid_syntax(data_dir: Path) -> None:
    job = (data_dir / "agent/upstart/stackops-agent.conf").read_text()
    # (an indented line continues a parenthesised start on)
    stanzas = {ln.split()[0] for ln in job.splitlines() if ln.strip() and ln[0] not in "# "}
    # upstart 0.6.5 stanzas only: no `manual`, no `console log`, no `setuid`, no `kill signal`
    assert stanzas <= {"description", "author", "start", "stop", "task", "console", "exec"}
    assert "console output" in job and "\ntask\n" in job


def test_missing_agent_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no agent here"):
        build_agent_deb(tmp_path, version="0.1.0", mtime=0)


def test_incomplete_agent_folder_names_the_file(tmp_path: Path, data_dir: Path) -> None:
    shutil.copytree(data_dir / "agent", tmp_path / "agent")
    with pytest.raises(ConfigError, match="stackops-installer-client: cannot read"):
        build_agent_deb(tmp_path, version="0.1.0", mtime=0)
    shutil.copytree(data_dir / "smart_installer/client", tmp_path / "smart_installer/client")
    with pytest.raises(ConfigError, match="no roles folder"):
        build_agent_deb(tmp_path, version="0.1.0", mtime=0)
    shutil.copytree(data_dir / "roles", tmp_path / "roles")
    with pytest.raises(ConfigError, match="validate.sh: cannot read the shell validators"):
        build_agent_deb(tmp_path, version="0.1.0", mtime=0)


def test_unknown_nova_flag_stops_the_build(tmp_path: Path, data_dir: Path) -> None:
    for folder in ("agent", "roles", "questions", "smart_installer"):
        shutil.copytree(data_dir / folder, tmp_path / folder)
    conf = tmp_path / "roles" / "volume" / "nova.conf"
    conf.write_text(conf.read_text() + "--volume_grup=nova-volumes\n")
    n = len(conf.read_text().splitlines())
    with pytest.raises(ConfigError, match=rf"volume/nova.conf:{n}: --volume_grup is not a Nova"):
        build_agent_deb(tmp_path, version="0.1.0", mtime=0)


def test_bad_version(data_dir: Path) -> None:
    with pytest.raises(ArchiveError, match="Invalid version"):
        build_agent_deb(data_dir, version="latest", mtime=0)


@pytest.mark.parametrize("script", ["agent/stackops-check", "roles/controller/novarc.py"])
def test_stackops_check_is_python_2_6(data_dir: Path, script: str) -> None:
    """stackops-check and the controller's novarc.py run on lucid's /usr/bin/python (2.6): none
    of 2.7's additions."""
    import ast
    import re

    src = (data_dir / script).read_text()
    assert src.startswith("#!/usr/bin/python\n")
    tree = ast.parse(src)  # written to parse as Python 3 too (print_function, `except X as e`)
    kinds = {type(n).__name__ for n in ast.walk(tree)}
    assert not kinds & {"DictComp", "SetComp", "Set"}, "2.7 syntax"
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"argparse", "importlib", "collections"}, imported
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not attrs & {"check_output", "total_seconds", "viewkeys"}, "2.7 library calls"
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            assert len(node.items) == 1, "2.6 has one context manager per with"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            # str.format fields need their index on 2.6: '{0}', never '{}' or '{:..}'
            assert not re.search(r"\{[:!}]", node.value), node.value
    assert "from __future__ import print_function" in src
