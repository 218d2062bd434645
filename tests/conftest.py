"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import require_tool_or_skip


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
def agent_deb(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The node agent's .deb as the build makes it, once per session."""
    from distro_builder.agent import build_agent_deb

    name, data = build_agent_deb(data_dir, version="0.1.0", mtime=1302652800)
    path = tmp_path_factory.mktemp("agent") / name
    path.write_bytes(data)
    return path
