"""demo/disc.yaml loading: the real file loads; bad files get errors naming file, key and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distro_builder.config import find_data_dir
from distro_builder.config.demo import load_demo_disc
from distro_builder.errors import ConfigError


def test_real_demo_disc_loads(data_dir: Path) -> None:
    disc = load_demo_disc(data_dir)
    assert disc.volume_id == "Ubuntu-Server 10.04.4 LTS amd64"
    assert disc.codename == "lucid" and disc.components == ("main", "restricted")
    names = {p.name for p in disc.packages}
    assert {"openssh-server", "mysql-server-5.1", "libvirt-bin", "netcfg"} <= names
    assert any(p.udeb for p in disc.packages) and any(p.task for p in disc.packages)


@pytest.fixture
def data_copy(tmp_path: Path, data_dir: Path) -> Path:
    shutil.copytree(data_dir / "demo", tmp_path / "demo")
    return tmp_path


def _edit(root: Path, old: str, new: str) -> None:
    p = root / "demo" / "disc.yaml"
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new, 1))


def test_unknown_key_is_named(data_copy: Path) -> None:
    _edit(data_copy, "  tzdata: {version:", "  tzdata: {colour: red, version:")
    with pytest.raises(ConfigError, match=r"disc.yaml: unknown key packages.tzdata.colour"):
        load_demo_disc(data_copy)


def test_yaml_syntax_error_names_the_line(data_copy: Path) -> None:
    _edit(data_copy, "maintainer: Ubuntu", "maintainer: [Ubuntu")
    with pytest.raises(ConfigError, match=r"disc.yaml:\d+: invalid YAML"):
        load_demo_disc(data_copy)


def test_component_must_be_listed(data_copy: Path) -> None:
    _edit(data_copy, "component: restricted", "component: multiverse")
    with pytest.raises(ConfigError, match="not in identity.components"):
        load_demo_disc(data_copy)


def test_volume_id_limit(data_copy: Path) -> None:
    _edit(data_copy, "volume_id: Ubuntu-Server 10.04.4 LTS amd64", "volume_id: " + "x" * 33)
    with pytest.raises(ConfigError, match="32 characters"):
        load_demo_disc(data_copy)


def test_find_data_dir(tmp_path: Path, data_dir: Path) -> None:
    assert find_data_dir(data_dir) == data_dir
    with pytest.raises(ConfigError, match="no data folder") as e:
        find_data_dir(tmp_path)
    assert e.value.hint and "--data-dir" in e.value.hint
