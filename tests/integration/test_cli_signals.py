"""SIGTERM and Ctrl-C (SIGINT) unwind like an error: no ISO, .part file, staging folder or
SHA256SUMS left, even while the written ISO is being verified (real signals, real CLI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# The CLI with one step slowed down (test-only), so the signal lands in it every time.
SLOW_STEP = """
import sys, time
import distro_builder.build as build
target = sys.argv.pop(1)
original = getattr(build, target)
def slow(*args, **kwargs):
    print("SLOW-STEP " + target, file=sys.stderr, flush=True)
    time.sleep(60)
    return original(*args, **kwargs)
setattr(build, target, slow)
from distro_builder.cli import main
main(prog_name="distro-builder")
"""


def _run_until(step: str, signum: int, tmp_path: Path, demo_base: Path) -> tuple[int, str]:
    out_dir, tmp = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_STEP, step, "build", "--base", str(demo_base),
         "-o", str(out_dir / "o.iso"), "--no-packages"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)},
        # a shell's background job starts with SIGINT ignored, and Python keeps it so
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("SLOW-STEP"):
            break
        assert time.monotonic() < deadline, "".join(seen)
    else:
        pytest.fail("the build ended before the slowed step:\n" + "".join(seen))
    # the staging folder and the unverified ISO exist now, beside the output
    assert any(p.name.startswith("distro-builder-") for p in out_dir.iterdir())
    proc.send_signal(signum)
    rest = proc.stderr.read()
    code = proc.wait(timeout=60)
    assert sorted(p.name for p in out_dir.iterdir()) == [], "left behind"
    assert list(tmp.iterdir()) == [], "left in TMPDIR"
    return code, "".join(seen) + rest


@pytest.mark.parametrize(
    ("signum", "code", "says"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")],
    ids=["SIGTERM", "SIGINT"],
)
def test_signal_during_verification_leaves_nothing(
    signum: int, code: int, says: str, tmp_path: Path, demo_base: Path
) -> None:
    got, stderr = _run_until("_verify_output", signum, tmp_path, demo_base)
    assert got == code, stderr
    assert says in stderr and "Traceback" not in stderr


def test_sigterm_while_staging_leaves_nothing(tmp_path: Path, demo_base: Path) -> None:
    got, stderr = _run_until("_stage_installer_files", signal.SIGTERM, tmp_path, demo_base)
    assert got == 143 and "Traceback" not in stderr, stderr
