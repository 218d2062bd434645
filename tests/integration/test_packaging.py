"""An installed copy works like the checkout: the wheel carries every file of every data folder.

pyproject.toml ships the data folders whole as package data (distro_builder/data/<folder>/...),
with no line per role folder: the wheel is built with the real build backend from a copy of the
source that has a fifth role folder (tests/data/fifth-role/image) nobody listed, installed with
pip into a fresh venv, and that venv's `distro-builder` (run outside the checkout) lists the
entries and builds a disc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
FIFTH = ROOT / "tests" / "data" / "fifth-role" / "image"


def test_the_data_folders_are_the_builds_inputs() -> None:
    """A renamed or new data folder is noticed here (package_lists/ was left listed once)."""
    from distro_builder.build import INPUT_FOLDERS

    assert all((ROOT / f).is_dir() for f in DATA_FOLDERS)
    assert set(DATA_FOLDERS) == {*INPUT_FOLDERS, "demo"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    missing = [f for f in DATA_FOLDERS if f'"{f}/**/*"' not in pyproject]
    assert missing == [], "add them to [tool.setuptools.package-data] in pyproject.toml"


def test_every_package_is_listed() -> None:
    """pyproject.toml lists the packages (distro_builder.data is mapped, not found): every
    folder of distro_builder/ with an __init__.py is there."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])  # fmt: skip
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "distro_builder").rglob("__init__.py")
    }
    assert listed == {*found, "distro_builder.data"}


def _data_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for folder in DATA_FOLDERS
        for p in (root / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout with a fifth role folder that no file lists."""
    src = tmp_path_factory.mktemp("wheel") / "src"
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", "*.iso")
    shutil.copytree(ROOT, src, ignore=ignore, symlinks=True)
    shutil.copytree(FIFTH, src / "roles" / "image")
    return src


@pytest.fixture(scope="module")
def venv(src: Path) -> Path:
    """A fresh venv with the wheel built from `src` installed by pip (dependencies from the
    package index, as a user's `pip install` gets them)."""
    try:
        import wheel  # noqa: F401  (setuptools' bdist_wheel needs it)
    except ImportError:
        if IN_CI:
            pytest.fail("the `wheel` package is missing (it is in the test extras)")
        pytest.skip("the `wheel` package is missing")
    tmp = src.parent
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run([*argv, "-w", str(tmp / "dist"), str(src)], capture=True)
    (whl,) = (tmp / "dist").glob("distro_builder-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)], capture=True)
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(whl)], capture=True)
    return venv


@pytest.fixture(scope="module")
def installed_share(venv: Path) -> Path:
    """The installed copy's data folder, as its find_data_dir() names it."""
    code = "from distro_builder.config import find_data_dir; print(find_data_dir())"
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                       text=True, cwd=venv, env=_env(), check=True)  # fmt: skip
    share = Path(r.stdout.strip())
    assert share.is_relative_to(venv), share
    return share


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DISTRO_BUILDER_DATA", "PYTHONPATH")}


def test_wheel_ships_every_data_file(installed_share: Path, src: Path) -> None:
    expected = _data_files(src)
    shipped = _data_files(installed_share)
    assert (
        "d-i/late.sh" in expected and "smart_installer/client/stackops-installer-client" in expected
    )
    assert "roles/image/role.yaml" in shipped  # the folder that no file lists
    assert sorted(expected - shipped) == [], "see [tool.setuptools.package-data]"
    assert sorted(shipped - expected) == []
    for rel in sorted(expected):
        assert (installed_share / rel).read_bytes() == (src / rel).read_bytes(), rel


def test_installed_data_builds_what_the_checkout_builds(installed_share: Path, src: Path) -> None:
    # The agent .deb and the installer files are reproducible: equal bytes, equal inputs.
    ours = build_agent_deb(src, version="0.1.0", mtime=0)
    theirs = build_agent_deb(installed_share, version="0.1.0", mtime=0)
    assert theirs == ours
    roles = load_roles(installed_share)
    assert initrd_files(installed_share, roles, SystemSettings()) == initrd_files(
        src, load_roles(src), SystemSettings()
    )


def test_the_installed_cli_lists_the_entries_and_builds(
    venv: Path, demo_base: Path, tmp_path: Path
) -> None:
    """`distro-builder entries` and `build --no-packages` of the installed copy, outside the
    checkout: the fifth role's folder has its entry, and the disc is built and verified."""
    exe = str(venv / "bin" / "distro-builder")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *args], capture_output=True, text=True, cwd=tmp_path,
                              env=_env(), timeout=600)  # fmt: skip

    entries = cli("entries")
    assert entries.returncode == 0, entries.stderr
    assert "compute" in entries.stdout and "image" in entries.stdout
    out = tmp_path / "stackops.iso"
    built = cli("build", "--base", str(demo_base), "-o", str(out), "--no-packages")
    assert built.returncode == 0, built.stderr
    assert out.stat().st_size > 0 and (out.parent / "SHA256SUMS").is_file()


def test_sdist_carries_every_data_file(src: Path, tmp_path: Path) -> None:
    """The sdist (what `pip install` builds a wheel from when there is none) has every file of
    every data folder, the unlisted role folder too."""
    import tarfile

    code = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=src, capture_output=True,
                       text=True, check=True)  # fmt: skip
    with tarfile.open(tmp_path / r.stdout.strip().splitlines()[-1]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    expected = _data_files(src)
    assert "roles/image/role.yaml" in expected
    assert sorted(expected - names) == []
