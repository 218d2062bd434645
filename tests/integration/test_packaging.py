"""An installed copy works like the checkout: the wheel carries every file of every data folder.

setup.cfg lists the data files by glob, one line per folder; a new folder or file type that is not
listed would work from the checkout (and in every other test) and be missing once installed. The
wheel is built from a copy of the source with the real build backend, no network.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from distro_builder.agent import build_agent_deb
from distro_builder.config.roles import load_roles
from distro_builder.model import SystemSettings
from distro_builder.run import run
from distro_builder.seed.preseed import initrd_files
from tests.helpers import IN_CI

ROOT = Path(__file__).resolve().parents[2]
# Every top-level folder whose content the tool reads at run time (config.find_data_dir()).
DATA_FOLDERS = (
    "demo",
    "questions",
    "roles",
    "preseed",
    "bootmenu",
    "d-i",
    "agent",
    "smart_installer",
)
SHARE = "share/distro-builder/"


def test_the_data_folders_are_the_builds_inputs() -> None:
    """A renamed or new data folder is noticed here (package_lists/ was left listed once)."""
    from distro_builder.build import INPUT_FOLDERS

    assert all((ROOT / f).is_dir() for f in DATA_FOLDERS)
    assert set(DATA_FOLDERS) == {*INPUT_FOLDERS, "demo"}


def _data_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for folder in DATA_FOLDERS
        for p in (root / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def installed_share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import wheel  # noqa: F401  (setuptools' bdist_wheel needs it)
    except ImportError:
        if IN_CI:
            pytest.fail("the `wheel` package is missing (it is in the test extras)")
        pytest.skip("the `wheel` package is missing")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", "*.iso")
    shutil.copytree(ROOT, src, ignore=ignore, symlinks=True)
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run([*argv, "-w", str(tmp / "dist"), str(src)], capture=True)
    (whl,) = (tmp / "dist").glob("distro_builder-*.whl")
    share = tmp / "share"
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if ".data/data/" + SHARE in name:
                rel = name.split(SHARE, 1)[1]
                target = share / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
    return share


def test_wheel_ships_every_data_file(installed_share: Path) -> None:
    expected = _data_files(ROOT)
    shipped = _data_files(installed_share)
    assert (
        "d-i/late.sh" in expected and "smart_installer/client/stackops-installer-client" in expected
    )
    assert sorted(expected - shipped) == [], "add them to [options.data_files] in setup.cfg"
    assert sorted(shipped - expected) == []
    for rel in sorted(expected):
        assert (installed_share / rel).read_bytes() == (ROOT / rel).read_bytes(), rel


def test_installed_data_builds_what_the_checkout_builds(installed_share: Path) -> None:
    # The agent .deb and the installer files are reproducible: equal bytes, equal inputs.
    ours = build_agent_deb(ROOT, version="0.1.0", mtime=0)
    theirs = build_agent_deb(installed_share, version="0.1.0", mtime=0)
    assert theirs == ours
    roles = load_roles(installed_share)
    assert initrd_files(installed_share, roles, SystemSettings()) == initrd_files(
        ROOT, load_roles(ROOT), SystemSettings()
    )
