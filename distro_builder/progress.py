"""Progress lines for long transfers: bytes, rate and ETA on stderr.

On a terminal one line is rewritten in place (at most five times a second); otherwise (a log
file, CI) a line is logged every few seconds, so nothing is silent for long either way. The last
line says what was transferred, in how long, how fast. Nothing is written when logging is above
INFO (`--quiet`). It reads the fields of archive.fetch.Progress (any object with them will do):
this module imports nothing from the archive.
"""

from __future__ import annotations

import collections
import logging
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TextIO

log = logging.getLogger("distro_builder.progress")

_TTY_EVERY = 0.2  # seconds between rewrites of the terminal line
_WINDOW = 5.0  # seconds of history for the rate (and so the ETA)


class TransferState(Protocol):
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    received: int


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f}"


def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class TransferMeter:
    """A progress callback (`meter(state)`) and a context manager that ends the line."""

    def __init__(
        self,
        label: str = "Fetching",
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every
        self.clock = clock
        self.start = clock()
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._shown = -1e9
        self._last: TransferState | None = None
        self._drawn = False

    def __enter__(self) -> TransferMeter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(ok=kind is None)

    def rate(self) -> float | None:
        """Bytes per second over the last few seconds; None before there is enough to tell."""
        if len(self._samples) < 2:
            return None
        (t0, r0), (t1, r1) = self._samples[0], self._samples[-1]
        return (r1 - r0) / (t1 - t0) if t1 - t0 >= 0.5 else None

    def line(self, s: TransferState) -> str:
        text = (
            f"{self.label} {s.files_done}/{s.files_total} files, "
            f"{_mb(s.bytes_done)} of {_mb(s.bytes_total)} MB"
        )
        rate = self.rate()
        if rate:
            left = max(s.bytes_total - s.bytes_done, 0)
            text += f", {_mb(rate)} MB/s, ETA {_duration(left / rate)}"
        return text

    def __call__(self, s: TransferState) -> None:
        now = self.clock()
        self._last = s
        self._samples.append((now, s.received))
        while len(self._samples) > 2 and now - self._samples[0][0] > _WINDOW:
            self._samples.popleft()
        if not log.isEnabledFor(logging.INFO) or s.files_done == s.files_total:
            return
        if now - self._shown < (_TTY_EVERY if self.tty else self.every):
            return
        self._shown = now
        if self.tty:
            self.stream.write("\r    " + self.line(s) + "\x1b[K")
            self.stream.flush()
            self._drawn = True
        else:
            log.info("    %s", self.line(s))

    def close(self, *, ok: bool = True) -> None:
        """End the terminal line; say what was transferred (when the run finished)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
        s = self._last
        if not ok or s is None or not log.isEnabledFor(logging.INFO):
            return
        took = self.clock() - self.start
        if s.received:
            log.info(
                "    %d files, %s MB (%s MB new) in %.1fs, %s MB/s",
                s.files_total, _mb(s.bytes_total), _mb(s.received), took,
                _mb(s.received / took if took > 0 else 0),
            )  # fmt: skip
        else:
            log.info("    %d files, %s MB, all in the cache", s.files_total, _mb(s.bytes_total))
