"""A deployment's disc offers only its reference architecture's entries (issue 21): a dual-node
disc has no all-in-one (once the default) and no single-role controller, network or volume
entry, in its isolinux menu and in the build manifest smoke checks the menu against. Read from
the built ISO (pycdlib), the demo base, no packages (about 10 s per build).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distro_builder.media.iso import IsoImage
from distro_builder.media.layout import read_boot_menu
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

DUAL = """\
architecture: dual-node
answers:
  controller_address: 10.0.0.1
  nova_db_password: n0va-secret
  rabbit_password: r4bbit-secret
"""
STACKOPS_DUAL = {"cloud-controller", "compute", "first-boot"}


def _build(demo_base: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distro_builder", "build", "--base", str(demo_base), "-o",
         str(out), "--no-packages", *args],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1300000000"},
    )  # fmt: skip


def _stackops_menu(iso: Path) -> tuple[str | None, set[str], list[str]]:
    """The menu's default, the StackOps entries (expert variants folded in), the manifest's."""
    with IsoImage(iso) as image:
        menu = read_boot_menu(image)
        manifest = json.loads(image.read_text("/.disk/stackops-build.json") or "{}")
    labels = {
        e.label.removesuffix("-expert")
        for e in menu.entries
        if "stackops/roles=" in (e.append or "")
    }
    return menu.default, labels, [e["name"] for e in manifest["entries"]]


@pytest.mark.parametrize("how", ["deployment file", "--architecture"])
def test_dual_node_disc_offers_only_dual_node_entries(
    demo_base: Path, tmp_path: Path, how: str
) -> None:
    require_tool_or_skip("debconf-set-selections", "xorriso")
    out = tmp_path / "dual.iso"
    if how == "deployment file":
        dep = tmp_path / "deployment.yaml"
        dep.write_text(DUAL)
        proc = _build(demo_base, out, "--deployment", str(dep))
    else:  # a Smart Installer disc: the deployment's architecture, its answers from the service
        proc = _build(demo_base, out, "--architecture", "dual-node",
                      "--installer-url", "http://10.0.0.2:8080",
                      "--installer-token", "t" * 43)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    default, labels, manifest = _stackops_menu(out)
    assert labels == STACKOPS_DUAL, labels
    assert set(manifest) == STACKOPS_DUAL, manifest
    assert default == "cloud-controller"  # all-in-one is no longer the default


def test_a_disc_without_an_architecture_offers_every_entry(demo_base: Path, tmp_path: Path) -> None:
    require_tool_or_skip("debconf-set-selections", "xorriso")
    out = tmp_path / "all.iso"
    proc = _build(demo_base, out)
    assert proc.returncode == 0, proc.stderr
    default, labels, _ = _stackops_menu(out)
    assert {"all-in-one", "cloud-controller", "controller", "network", "volume"} <= labels
    assert default == "all-in-one"


def test_architecture_refusals(demo_base: Path, tmp_path: Path) -> None:
    dep = tmp_path / "deployment.yaml"
    dep.write_text(DUAL)
    out = tmp_path / "x.iso"
    bad = _build(demo_base, out, "--architecture", "quad-node")
    assert bad.returncode == 1 and "unknown reference architecture 'quad-node'" in bad.stderr
    assert "hint: architectures: single-node, dual-node, multi-node" in bad.stderr
    clash = _build(demo_base, out, "--architecture", "single-node", "--deployment", str(dep))
    assert clash.returncode == 1
    assert "--architecture single-node contradicts the deployment file's dual-node" in clash.stderr
    gone = _build(demo_base, out, "--deployment", str(dep), "--default-entry", "all-in-one")
    assert gone.returncode == 1 and "all-in-one" in gone.stderr, gone.stderr
    assert not out.exists()
