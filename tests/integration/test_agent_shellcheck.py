"""shellcheck on every shell file of the agent, at the dialect it runs under: the agent, its
libraries, the roles' steps, the shared validators and maintainer scripts are /bin/sh (dash on
lucid; no bashisms), as is the test recorder. Also checks that no shell file of agent/, roles/ or
questions/ is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from distro_builder.run import run
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SH_FILES = [
    "agent/stackops-agent",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "agent/lib").glob("*.sh")),
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "roles").glob("*/*.sh")),
    "questions/validate.sh",
    "agent/debian/postinst",
    "agent/debian/prerm",
    "agent/debian/postrm",
    "tests/integration/agent_recorder.sh",
]


def test_every_shell_file_is_listed() -> None:
    found = set()
    for p in [
        *(ROOT / "agent").rglob("*"),
        *(ROOT / "roles").rglob("*"),
        *(ROOT / "questions").rglob("*"),
    ]:
        if p.is_file():
            head = p.read_bytes()[:64]
            if head.startswith(b"#!/bin/sh") or head.startswith(b"# shellcheck shell=sh"):
                found.add(p.relative_to(ROOT).as_posix())
            assert not head.startswith(b"#!/bin/bash"), f"{p}: the agent is POSIX sh"
    assert found == {f for f in SH_FILES if f.startswith(("agent/", "roles/", "questions/"))}


@pytest.mark.parametrize("path", SH_FILES)
def test_shellcheck_posix_sh(path: str) -> None:
    require_tool_or_skip("shellcheck")
    proc = run(["shellcheck", "-s", "sh", "-S", "style", path], cwd=ROOT, check=False, capture=True)
    assert proc.returncode == 0, proc.stdout


def test_shellcheck_catches_a_bashism(tmp_path: Path) -> None:
    """The check has teeth: a bash array in an sh file is an error."""
    require_tool_or_skip("shellcheck")
    bad = tmp_path / "bad.sh"
    bad.write_text('#!/bin/sh\nlist=(a b)\necho "${list[0]}"\n')
    proc = run(["shellcheck", "-s", "sh", str(bad)], check=False, capture=True)
    assert proc.returncode != 0
