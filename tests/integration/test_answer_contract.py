"""The answer contract: one corpus (tests/data/answer-validation.tsv), three implementations.

Every row runs through the Python rules (config/questions.py, used for deployment files and the
Smart Installer) and through questions/validate.sh under busybox ash (the installer) and dash
(the node agent; bash 4.1 on lucid runs the same POSIX code). All three must give the row's
verdict, so they agree with each other and are right.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from distro_builder.config.questions import QUESTION_TYPES, why_invalid
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "answer-validation.tsv"
VALIDATE = ROOT / "questions" / "validate.sh"
SHELLS = {"busybox ash": ["busybox", "ash"], "dash": ["dash"]}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}


def _unescape(text: str) -> str:
    if text == "<empty>":
        return ""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _rows() -> list[tuple[str, str, str, str, str, str, str, str]]:
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        assert len(fields) == 8, line
        qtype, lo, hi, choices, optional, value, verdict, why = fields
        rows.append((qtype, lo, hi, choices, optional, _unescape(value), verdict, why))
    return rows


ROWS = _rows()


def _c(text: str) -> str:
    return "" if text == "-" else text


def test_the_corpus_is_big_enough_and_covers_every_type() -> None:
    assert len(ROWS) >= 60
    assert {r[0] for r in ROWS} == set(QUESTION_TYPES)
    for qtype in QUESTION_TYPES:  # each type has rows of both verdicts
        assert {r[6] for r in ROWS if r[0] == qtype} == {"ok", "bad"}, qtype


def _python(row: tuple[str, ...]) -> str:
    qtype, lo, hi, choices, optional, value = row[:6]
    why = why_invalid(
        qtype,
        value,
        minimum=int(lo) if _c(lo) else None,
        maximum=int(hi) if _c(hi) else None,
        choices=tuple(_c(choices).split(",")) if _c(choices) else (),
        optional=_c(optional) == "yes",
    )
    return "ok" if why is None else "bad"


def _shell(argv: list[str], row: tuple[str, ...]) -> str:
    qtype, lo, hi, choices, optional, value = row[:6]
    script = f'. "{VALIDATE}"; so_why_invalid "$T" "$V" "$LO" "$HI" "$CH" "$OPT"'
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "T": qtype, "V": value, "LO": _c(lo), "HI": _c(hi), "CH": _c(choices),
        "OPT": _c(optional),
    }  # fmt: skip
    proc = subprocess.run([*argv, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return "ok" if proc.stdout == "" else "bad"


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_all_three_implementations_give_every_verdict(shell: str) -> None:
    argv = SHELLS[shell]
    require_tool_or_skip(argv[0])
    wrong = []
    for row in ROWS:
        verdict, why = row[6], row[7]
        got = {"python": _python(row), shell: _shell(argv, row)}
        if set(got.values()) != {verdict}:
            wrong.append(f"{row[0]} {row[5]!r}: want {verdict} ({why}), got {got}")
    assert not wrong, "\n".join(wrong)


def test_a_broken_validator_is_noticed(tmp_path: Path) -> None:
    """The corpus catches a validator that lets host bits through (the node's old cidr rule)."""
    require_tool_or_skip("dash")
    broken = tmp_path / "validate.sh"
    broken.write_text(VALIDATE.read_text().replace("-ne 0 ]; then", "-lt 0 ]; then", 1))
    assert broken.read_text() != VALIDATE.read_text()
    row = next(r for r in ROWS if r[5] == "192.168.100.1/24" and r[0] == "cidr" and _c(r[4]) == "")
    script = f'. "{broken}"; so_why_invalid cidr "$V"'
    proc = subprocess.run(
        ["dash", "-c", script], env={"V": row[5], "PATH": os.environ["PATH"]},
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.stdout == "" and row[6] == "bad"  # the broken one says ok: the corpus disagrees
