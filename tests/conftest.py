"""Shared fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers import require_tool_or_skip

# The free space a `make test` run wants in /tmp before it starts: a passed test's tmp_path is
# removed as it ends, the session's roots, images and ISOs stay to the end (README: the peak).
MIN_FREE_GIB = float(os.environ.get("DISTRO_BUILDER_TEST_MIN_FREE_GIB", "6"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, saying why, when the disk cannot hold the run (not 200 errors later)."""
    if session.config.option.collectonly:
        return
    tmp = tempfile.gettempdir()
    free = shutil.disk_usage(tmp).free / 2**30
    if free < MIN_FREE_GIB:
        pytest.exit(
            f"error: {tmp} has {free:.1f} GiB free; a full run needs about {MIN_FREE_GIB:g} GiB\n"
            "hint: remove old /tmp/pytest-of-*/ directories, or set "
            "DISTRO_BUILDER_TEST_MIN_FREE_GIB for a run of a few files",
            returncode=1,
        )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_base(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The demo base ISO, built once per test session with the real tools."""
    require_tool_or_skip("genisoimage")
    from distro_builder.demo import build_demo_base

    out = tmp_path_factory.mktemp("demo") / "demo-base.iso"
    return build_demo_base(data_dir, out)


@pytest.fixture(scope="session")
def demo_replay_base(tmp_path_factory: pytest.TempPathFactory, demo_base: Path) -> Path:
    """The demo base written anew by xorriso the way many custom Ubuntu ISOs are made (`-indev
    A -outdev B -boot_image any replay`): the volume at block 32, its descriptors at 48-50 and a
    copy of them at 16-18, isolinux's boot-info table counting from the one at 48."""
    require_tool_or_skip("xorriso")
    out = tmp_path_factory.mktemp("replay") / "demo-replay.iso"
    subprocess.run(
        ["xorriso", "-indev", str(demo_base), "-outdev", str(out), "-boot_image", "any", "replay",
         "-changes_pending", "yes", "-commit"],
        capture_output=True, check=True,
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def agent_deb(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The node agent's .deb as the build makes it, once per session."""
    from distro_builder.agent import build_agent_deb

    name, data = build_agent_deb(data_dir, version="0.1.0", mtime=1302652800)
    path = tmp_path_factory.mktemp("agent") / name
    path.write_bytes(data)
    return path
