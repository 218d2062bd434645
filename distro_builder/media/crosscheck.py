"""Read a written image with readers other than pycdlib: xorriso (libisofs) and isoinfo.

The engine's own read-back (media/iso.py) opens the output with pycdlib, the library that wrote
it; pycdlib reads back what it wrote even where it wrote something no one else reads (a
multi-extent flag carried over from the base, a symlink target split over SL entries that
still "continue": issue 20). So the output is also read the way the machines that use it read
it: the Rock Ridge tree in full by xorriso (libisofs, which also burns and remasters), and by
isoinfo (genisoimage's reader). Nothing here writes.

Costs, measured on this machine: 0.01 s for the demo base's 200 entries, 0.11 s (xorriso) for
an image of 20,000 files; isoinfo under 0.01 s.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from distro_builder.errors import ToolError
from distro_builder.run import find_tool, run

log = logging.getLogger(__name__)

TIMEOUT = 120.0  # seconds; a reader that hangs on an image is a finding, not a wait


def _tail(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    bad = [ln for ln in lines if any(w in ln for w in ("SORRY", "FAILURE", "FATAL", "rror"))]
    return "; ".join((bad or lines)[-3:])[:400]


def read_problems(path: Path) -> list[str]:
    """What xorriso and isoinfo say is wrong with the image at `path` (each reader that is
    installed; none: a warning in the log, no problem)."""
    problems = []
    found = False
    if find_tool("xorriso"):
        found = True
        argv = ["xorriso", "-abort_on", "FAILURE", "-return_with", "SORRY", "32",
                "-indev", path, "-find", "/"]  # fmt: skip
        problem = _run(argv)
        if problem:
            problems.append(f"xorriso: {problem}")
    if find_tool("isoinfo"):
        found = True
        problem = _run(["isoinfo", "-R", "-f", "-i", path])
        if problem:
            problems.append(f"isoinfo: {problem}")
    if not found:
        log.warning(
            "neither xorriso nor isoinfo is installed: %s was read back with pycdlib only", path
        )
    return problems


def _run(argv: list[str | Path]) -> str | None:
    try:
        proc = run(argv, check=False, timeout=TIMEOUT, binary=True)  # stdout: /dev/null
    except ToolError as e:  # it vanished, or the timeout
        return str(e)
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        return f"crashed ({signal.Signals(-proc.returncode).name}) reading it"
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
    return f"exit {proc.returncode}: {_tail(err)}"
