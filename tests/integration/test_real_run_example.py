"""The real run's repositories (examples/lucid-cactus.sources): they parse, every one is signed,
and the build says what is wrong when a keyring is missing or the mirror cannot be reached."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from distro_builder.archive.sources import read_sources_list

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "lucid-cactus.sources"


def test_the_example_parses_and_names_only_signed_sources() -> None:
    specs = read_sources_list(EXAMPLE, arch="amd64")
    assert [(s.url, s.suite) for s in specs] == [
        ("http://old-releases.ubuntu.com/ubuntu", "lucid"),
        ("http://old-releases.ubuntu.com/ubuntu", "lucid-updates"),
        ("http://old-releases.ubuntu.com/ubuntu", "lucid-security"),
        ("http://ppa.launchpad.net/openstack-release/2011.2/ubuntu", "lucid"),
    ]
    assert all(s.keyring and s.keyring.startswith("examples/keyrings/") for s in specs)
    readme = (ROOT / "examples" / "keyrings" / "README.md").read_text()
    for s in specs:  # each keyring has its how-to
        assert Path(s.keyring or "").name in readme


def _build(cwd: Path, base: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distro_builder", "--data-dir", str(ROOT), "build", "--base",
         str(base), "-o", str(cwd / "out.iso"), "--sources", str(cwd / "lucid-cactus.sources")],
        capture_output=True, text=True, cwd=cwd, timeout=300,
        env={**os.environ, "no_proxy": "*"},
    )  # fmt: skip


def test_missing_keyring_then_unreachable_mirror(tmp_path: Path, demo_base: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path)
    proc = _build(tmp_path, demo_base)
    assert proc.returncode == 1
    assert "its keyring examples/keyrings/ubuntu-archive.gpg does not exist" in proc.stderr
    assert "hint: make it from the key" in proc.stderr and "Traceback" not in proc.stderr
    keyrings = tmp_path / "examples" / "keyrings"
    keyrings.mkdir(parents=True)
    for name in ("ubuntu-archive.gpg", "openstack-release-2011.2.gpg"):
        (keyrings / name).write_bytes(b"")
    proc = _build(tmp_path, demo_base)  # no network here but the package registries
    assert proc.returncode == 1
    assert "error: http://old-releases.ubuntu.com/ubuntu/dists/lucid/" in proc.stderr
    assert "hint:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.iso").exists()
