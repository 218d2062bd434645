"""Linters as tests: ruff check and ruff format over the code, tests and benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import require_tool_or_skip

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["distro_builder", "tests", "benchmarks"]


def _ruff() -> str:
    venv_ruff = Path(sys.executable).parent / "ruff"
    if venv_ruff.exists():
        return str(venv_ruff)
    require_tool_or_skip("ruff")
    return shutil.which("ruff") or "ruff"


def test_ruff_check() -> None:
    proc = subprocess.run([_ruff(), "check", *TARGETS], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format() -> None:
    proc = subprocess.run(
        [_ruff(), "format", "--check", *TARGETS], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
