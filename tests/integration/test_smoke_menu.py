"""`distro-builder smoke`, stage 1 without QEMU: the QA disc's menu against its build manifest.

The disc is what `make iso BUILD_ARGS=--serial-console` makes (demo base, demo repositories,
`build --serial-console`, through the CLI); the broken one is that disc remastered by the real
`remaster` CLI with an isolinux/text.cfg that lost the compute entry (issue 11). Smoke runs with
an empty PATH: a run that tried to boot would stop at the missing qemu-system-x86_64, so these
tests also prove that no VM was needed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from distro_builder.media.iso import IsoImage
from distro_builder.qa.menucheck import BUILD_MANIFEST
from distro_builder.qa.smoke import plan_smoke
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENTRIES = ["all-in-one", "cloud-controller", "controller", "network", "volume", "compute",
           "first-boot"]  # fmt: skip


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distro_builder", *args],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def qa_disc(tmp_path_factory: pytest.TempPathFactory, demo_base: Path) -> Path:
    """The QA disc of `make iso BUILD_ARGS=--serial-console`, built through the CLI."""
    require_tool_or_skip("debconf-set-selections")
    work = tmp_path_factory.mktemp("qa-disc")
    _ok(_cli("demo-repo", "-o", str(work / "demo-repo")))
    out = work / "stackops-amd64.iso"
    _ok(_cli(
        "build", "--base", str(demo_base), "-o", str(out),
        "--sources", str(work / "demo-repo" / "sources.list"), "--cache", str(work / "cache"),
        "--serial-console",
    ))  # fmt: skip
    return out


def _remaster(base: Path, out: Path, *, text_cfg: str | None = None, remove: str = "") -> Path:
    args = ["remaster", str(base), "-o", str(out)]
    if text_cfg is not None:
        overlay = out.with_suffix(".overlay")
        (overlay / "isolinux").mkdir(parents=True)
        (overlay / "isolinux" / "text.cfg").write_text(text_cfg)
        args += ["--add", str(overlay)]
    if remove:
        args += ["--remove", remove]
    _ok(_cli(*args))
    return out


def _without_entry(text_cfg: str, label: str) -> str:
    """text.cfg without the `label` block (up to the next label or comment line)."""
    out = re.sub(rf"(?ms)^label {re.escape(label)}\n.*?(?=^label |^#)", "", text_cfg)
    assert out != text_cfg
    return out


def _smoke(iso: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # no qemu-system-x86_64 on PATH: stage 1 must decide from the disc's files alone
    return _cli(
        "smoke", str(iso), *args, "--log-dir", str(tmp_path / "logs"), env={"PATH": str(tmp_path)}
    )


def test_qa_disc_menu_matches_its_manifest(qa_disc: Path) -> None:
    plan = plan_smoke(qa_disc, all_entries=True)
    check = plan.menu_check
    assert check.ok, check.problems
    assert check.manifest == BUILD_MANIFEST and check.warning is None
    top = [x.label for x in check.expected if not x.advanced]
    assert top == ENTRIES and [e.label for e in plan.chosen] == ENTRIES
    assert [x.label for x in check.expected if x.advanced] == [f"{e}-expert" for e in ENTRIES]


@pytest.fixture(scope="module")
def no_compute(qa_disc: Path) -> Path:
    with IsoImage(qa_disc) as image:
        text_cfg = image.read_text("/isolinux/text.cfg") or ""
    out = qa_disc.with_name("no-compute.iso")
    return _remaster(qa_disc, out, text_cfg=_without_entry(text_cfg, "compute"))


def test_disc_that_lost_the_compute_entry_fails_stage_menu(
    no_compute: Path, tmp_path: Path
) -> None:
    junit = tmp_path / "smoke.xml"
    proc = _smoke(no_compute, tmp_path, "--all-entries", "--json", "--junit", str(junit))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["passed"] is False and report["accel"] == "none"
    # every entry, the lost one too, fails stage 1 naming compute; nothing after it ran
    assert [e["label"] for e in report["entries"]] == ENTRIES
    for e in report["entries"]:
        status = [(s["name"], s["status"]) for s in e["stages"]]
        assert status == [
            ("menu", "fail"), ("boot", "skipped"), ("preseed", "skipped"),
            ("install", "skipped"), ("firstboot", "skipped"),
        ]  # fmt: skip
        menu = e["stages"][0]["message"]
        assert menu.startswith("Stage 'menu': missing compute (the boot menu against the build")
        assert (
            "missing: 'compute' ('Install StackOps compute node', roles compute, the top-level "
            "menu) is not in the menu"
        ) in menu
        assert "compute-expert" not in menu  # adtext.cfg still has it: not reported
        assert e["stages"][1]["message"] == "stage 'menu' failed"
        assert e["logs"] == []
    n = len(ENTRIES)
    assert report["stage_counts"] == {
        "total": 5 * n, "ran": n, "passed": 0, "failed": n, "skipped": 4 * n,
    }  # fmt: skip
    root = ET.parse(junit).getroot()
    assert root.get("failures") == str(n) and root.get("skipped") == str(4 * n)
    (suite,) = [s for s in root.findall("testsuite") if s.get("name") == "smoke.compute"]
    cases = suite.findall("testcase")
    failure = cases[0].find("failure")
    assert failure is not None and "missing compute" in (failure.get("message") or "")
    assert all(c.find("skipped") is not None for c in cases[1:])
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").iterdir())


def test_terminal_report_of_the_disc_that_lost_compute(no_compute: Path, tmp_path: Path) -> None:
    proc = _smoke(no_compute, tmp_path, "--entry", "compute")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = [ln.split()[:3] for ln in proc.stdout.splitlines() if ln.startswith("compute ")]
    assert rows == [
        ["compute", "menu", "FAIL"], ["compute", "boot", "skipped"],
        ["compute", "preseed", "skipped"], ["compute", "install", "skipped"],
        ["compute", "firstboot", "skipped"],
    ]  # fmt: skip
    assert "FAILED compute / stage menu:" in proc.stdout
    assert "console logs: none (no VM started)" in proc.stdout
    assert "smoke FAILED in" in proc.stdout
    assert proc.stdout.rstrip().endswith("1 of 5 stages ran, 0 passed, 1 failed, 4 skipped")
    assert "Traceback" not in proc.stderr


def test_disc_without_a_manifest_says_it_cannot_know(qa_disc: Path, tmp_path: Path) -> None:
    iso = _remaster(qa_disc, tmp_path / "no-manifest.iso", remove=BUILD_MANIFEST)
    check = plan_smoke(iso, all_entries=True).menu_check
    assert check.ok and check.manifest is None
    assert check.warning is not None
    assert "cannot know which entries to expect" in check.warning
    assert "checks only the 14 StackOps entries this menu lists" in check.warning
