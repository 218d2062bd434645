"""`distro-builder build --installer-url`: the CLI as a process on the demo base (menus and
preseeds only): every entry's preseed on the ISO carries the Smart Installer's settings, the
build says the token is on the disc, never prints the token, and keeps it out of the manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distro_builder.media.iso import IsoImage
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

TOKEN = "s3cret-Enrolment_Token"
FP = ":".join(["0F"] * 32)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distro_builder", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600,
    )  # fmt: skip


def test_build_bakes_the_installer_into_every_entry(demo_base: Path, tmp_path: Path) -> None:
    require_tool_or_skip("debconf-set-selections")
    out = tmp_path / "stackops.iso"
    proc = _cli(
        "build", "--base", str(demo_base), "-o", str(out), "--no-packages",
        "--installer-url", "https://10.0.0.2:8443/", "--installer-fingerprint", FP.lower(),
        "--installer-wait", "900",
        env={"STACKOPS_INSTALLER_TOKEN": TOKEN},  # the token from the environment
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    assert "enrolment token for https://10.0.0.2:8443 is on the disc" in proc.stderr
    assert "WARNING: plaintext secrets on the disc: installer_token" in proc.stdout

    manifest = json.loads(out.with_name(out.name + ".build.json").read_text())
    assert manifest["options"]["installer_url"] == "https://10.0.0.2:8443"
    assert manifest["options"]["installer_fingerprint"] == FP
    assert manifest["options"]["installer_wait"] == 900
    assert TOKEN not in json.dumps(manifest)
    with IsoImage(out) as image:
        for entry in manifest["entries"]:
            lines = image.read_text(entry["preseed"]).splitlines()
            assert "d-i stackops/installer_url string https://10.0.0.2:8443" in lines
            assert f"d-i stackops/installer_token password {TOKEN}" in lines
            assert f"d-i stackops/installer_fingerprint string {FP}" in lines
            assert "d-i stackops/installer_wait string 900" in lines
            assert "installer_token" in entry["plaintext_secrets"]


def test_bad_installer_options_stop_the_build(demo_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "stackops.iso"
    base = ("build", "--base", str(demo_base), "-o", str(out), "--no-packages")
    proc = _cli(*base, "--installer-url", "http://10.0.0.2:8080")
    assert proc.returncode == 1
    assert "error: --installer-url needs --installer-token" in proc.stderr
    assert "hint:" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli(*base, "--installer-url", "http://h", "--installer-token", TOKEN,
                "--installer-fingerprint", FP)  # fmt: skip
    assert proc.returncode == 1 and "is for an https --installer-url" in proc.stderr
    assert TOKEN not in proc.stderr
    proc = _cli(*base, "--installer-wait", "60")
    assert proc.returncode == 1 and "--installer-wait needs --installer-url" in proc.stderr
    proc = _cli(*base, "--installer-url", "http://h", "--installer-token", TOKEN,
                "--installer-wait", "-5")  # fmt: skip
    assert proc.returncode == 1 and "not between 0 and 86400 seconds" in proc.stderr
    assert not out.exists()
