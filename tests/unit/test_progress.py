"""The download progress line (progress.py) and steps that do not nest their times (log.py)."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pytest

from distro_builder.log import step
from distro_builder.progress import TransferMeter


@dataclass
class _State:
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    received: int


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="distro_builder")


def test_without_a_terminal_a_line_every_few_seconds_with_rate_and_eta(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, out = _Clock(), io.StringIO()
    meter = TransferMeter(stream=out, tty=False, every=5.0, clock=clock)
    with meter:
        for i in range(41):  # 10 s at 4 reports a second, 1 MB/s of 20 MB
            meter(_State(i // 4, 20, i * 250_000, 20_000_000, i * 250_000))
            clock.now += 0.25
    lines = [r.getMessage() for r in caplog.records]
    assert out.getvalue() == ""  # no carriage returns into a log file
    assert len(lines) == 4, lines  # at 0 s, 5 s, 10 s, and the summary
    assert "Fetching 5/20 files, 5.0 of 20.0 MB, 1.0 MB/s, ETA 15s" in lines[1]
    assert "20 files, 20.0 MB (10.0 MB new)" in lines[-1]


def test_on_a_terminal_one_line_is_rewritten_and_cleared(caplog: pytest.LogCaptureFixture) -> None:
    clock, out = _Clock(), io.StringIO()
    with TransferMeter(stream=out, tty=True, clock=clock) as meter:
        for i in range(10):
            meter(_State(i, 10, i * 1000, 10_000, i * 1000))
            clock.now += 0.3
    text = out.getvalue()
    assert text.count("\r    Fetching") == 10 and text.endswith("\r\x1b[K")
    assert "\n" not in text
    assert [r.getMessage() for r in caplog.records] == [
        "    10 files, 0.0 MB (0.0 MB new) in 3.0s, 0.0 MB/s"
    ]


def test_a_nested_step_has_no_time_of_its_own(caplog: pytest.LogCaptureFixture) -> None:
    with step("Writing the ISO"):
        with step("Verifying the written ISO"):
            pass
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:2] == ["==> Writing the ISO", "    Verifying the written ISO"]
    assert len([ln for ln in lines if "done in" in ln]) == 1
