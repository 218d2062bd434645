"""The serial console of a QEMU guest: spawn, log, clean, match, stage timing, and kill.

Owns pexpect, the one allowed exception to "only run.py starts processes". It turns the raw serial
stream (ANSI colours, cursor positioning, DEC line drawing, SeaBIOS sercon output) into plain text
that patterns are matched against, keeps the raw stream in a log file, and makes sure QEMU never
outlives a SerialConsole. It knows nothing about QEMU's command line (that is qa/qemu.py) and
never prints: failures are SmokeTestError naming what was awaited, the last lines and the log.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn

import pexpect

from distro_builder.errors import DistroBuilderError, SmokeTestError
from distro_builder.run import require_tool

log = logging.getLogger(__name__)

TIMEOUT_MULTIPLIER_ENV = "DISTRO_BUILDER_TIMEOUT_MULTIPLIER"
DEFAULT_TIMEOUT = 60.0  # seconds (before scaling) when neither expect() nor a stage gives one
TAIL_LINES = 40

# Keys as a VT100 terminal sends them on the serial line (syslinux menus and debconf read these).
KEYS: Mapping[str, str] = {
    "enter": "\r",
    "down": "\x1b[B",
    "up": "\x1b[A",
    "right": "\x1b[C",
    "left": "\x1b[D",
    "tab": "\t",
    "esc": "\x1b",
    "space": " ",
    "backspace": "\x7f",
}

# Console text that means the VM is dead even though QEMU keeps running: fail at once, not at
# the timeout. KVM emulation failures leave QEMU paused forever (seen with nested KVM/kvm_pvm).
FATAL_PATTERNS: Sequence[tuple[str, str]] = (
    ("KVM internal error", "KVM cannot run this guest here; use TCG (--accel tcg)"),
)

_SEARCH_OVERLAP = 4096  # chars re-searched before new text, so a match may span read chunks
_MAX_TEXT = 1 << 20  # cleaned text kept in memory before old text is dropped
_KEEP_TEXT = 1 << 18  # ... and how much of it is kept then (tail() needs the end)

Pattern = str | re.Pattern[str]


def timeout_multiplier() -> float:
    """Return DISTRO_BUILDER_TIMEOUT_MULTIPLIER (default 1).

    Raises: DistroBuilderError if it is not a positive number.
    """
    raw = os.environ.get(TIMEOUT_MULTIPLIER_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise DistroBuilderError(
            f"{TIMEOUT_MULTIPLIER_ENV}={raw!r} is not a positive number",
            hint=f"set it to e.g. {TIMEOUT_MULTIPLIER_ENV}=3 for slow (TCG) runs, or unset it",
        )
    return value


def scale_timeout(seconds: float) -> float:
    """Scale a timeout by DISTRO_BUILDER_TIMEOUT_MULTIPLIER."""
    return seconds * timeout_multiplier()


# --- ANSI cleaning -------------------------------------------------------------------------------

_CSI = re.compile(r"\x1b\[([0-?]*)([ -/]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_ESC_OTHER = re.compile(r"\x1b([ -/]*)([0-~])")
# A string that could still grow into one of the above (held back until more data arrives).
_PARTIAL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[ -/]*)")
# DEC Special Graphics (ESC ( 0 / SO with ESC ) 0), as syslinux menu.c32 draws its frame.
_DEC_GRAPHICS = dict(zip("jklmnqtuvwx`a", "┘┐┌└┼─├┤┴┬│◆▒", strict=True))
_PLAIN = re.compile(r"[^\x00-\x1f\x7f]+")


def line_pattern(prefix: str) -> re.Pattern[str]:
    """A regex for the rest of a complete line after the literal `prefix` (group 1, trimmed)."""
    return re.compile(re.escape(prefix) + r"[ \t]*([^\n]*?)[ \t]*\r?\n")


class AnsiCleaner:
    """Incremental terminal-stream cleaner: feed() raw chunks, get plain text back.

    Drops colours and other escape sequences, maps line drawing to box characters, turns cursor
    moves to another row (menus drawn with ESC[row;colH) into newlines, keeps words that SeaBIOS
    sercon splits with redundant cursor moves ("In ESC[02;32H ESC[02;33H staller") together, and
    holds back a sequence cut off at the end of a chunk until the next one completes it.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._g0_graphics = False
        self._g1_graphics = False
        self._shifted = False  # SO selected G1
        self._row: int | None = None  # cursor row after the last positioning, None if unknown
        self._col = 0  # cursor column on that row
        self._row_end = 0  # furthest column written on that row
        self._last = "\n"  # last character emitted

    def feed(self, data: str) -> str:
        """Clean `data` (plus anything held back) and return the text that is complete."""
        text = self._pending + data
        self._pending = ""
        out: list[str] = []
        i = 0
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == "\x1b":
                consumed = self._escape(text, i, out)
                if consumed == 0:  # incomplete: wait for more data
                    self._pending = text[i:]
                    break
                i += consumed
                continue
            m = _PLAIN.match(text, i)
            if m:
                self._emit_text(m.group(), out)
                i = m.end()
                continue
            self._control(ch, out)
            i += 1
        return "".join(out)

    def flush(self) -> str:
        """End of stream: discard a held-back, unfinished escape sequence."""
        self._pending = ""  # only ever an unfinished escape sequence: no text in it
        return ""

    def _escape(self, text: str, i: int, out: list[str]) -> int:
        """Handle an escape sequence at text[i]; return its length, or 0 if incomplete."""
        m = _CSI.match(text, i)
        if m:
            self._csi(m.group(1), m.group(3), out)
            return m.end() - i
        m = _OSC.match(text, i)
        if m:
            return m.end() - i
        if i + 1 < len(text) and text[i + 1] not in "[]":
            m = _ESC_OTHER.match(text, i)
            if m:
                self._esc(m.group(1), m.group(2), out)
                return m.end() - i
        partial = _PARTIAL.match(text, i)
        if partial and partial.end() == len(text) and len(text) - i < 256:
            return 0
        return 1  # a lone or malformed ESC: drop it

    def _csi(self, params: str, final: str, out: list[str]) -> None:
        if final in "Hf":
            parts = params.split(";")
            row = int(parts[0]) if parts[0].isdigit() else 1
            col = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 1
            if self._row is None and self._last != "\n" and col > 1:
                # Mid-line with the row unknown (the stream started there): assume this row.
                self._row, self._col, self._row_end = row, col, col
            elif row != self._row:
                self._newline(out)
                self._row, self._col, self._row_end = row, col, col
            else:
                # SeaBIOS sercon emits redundant moves (to col N, then N+1 where the cursor
                # already was): only a jump past the furthest written cell is a real gap.
                if col > self._row_end + 1 and self._last not in " \n":
                    out.append(" ")  # keep words on both sides of the gap apart
                    self._last = " "
                self._col = col
        elif final == "J" and params in ("2", "3"):
            self._newline(out)
            self._row = None

    def _esc(self, intermediate: str, final: str, out: list[str]) -> None:
        if intermediate == "(":
            self._g0_graphics = final == "0"
        elif intermediate == ")":
            self._g1_graphics = final == "0"
        elif intermediate == "" and final == "c":  # RIS, full reset (SeaBIOS sercon)
            self._g0_graphics = self._g1_graphics = self._shifted = False
            self._newline(out)
            self._row = None

    def _control(self, ch: str, out: list[str]) -> None:
        if ch == "\n":
            self._newline(out, force=True)
            self._row = None
        elif ch == "\t":
            self._emit_text(" ", out)
        elif ch == "\x0e":
            self._shifted = True
        elif ch == "\x0f":
            self._shifted = False
        # everything else (\r, NUL, BEL, BS, ...) is dropped

    def _emit_text(self, s: str, out: list[str]) -> None:
        if self._g1_graphics if self._shifted else self._g0_graphics:
            s = "".join(_DEC_GRAPHICS.get(c, c) for c in s)
        out.append(s)
        self._last = s[-1]
        self._col += len(s)
        self._row_end = max(self._row_end, self._col)

    def _newline(self, out: list[str], *, force: bool = False) -> None:
        if force or self._last != "\n":
            out.append("\n")
            self._last = "\n"
        self._col = self._row_end = 1


def strip_ansi(text: str) -> str:
    """Return `text` (a complete terminal stream) as plain text."""
    cleaner = AnsiCleaner()
    return cleaner.feed(text) + cleaner.flush()


# --- stages --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageResult:
    """One stage of a console session; times are wall seconds."""

    name: str
    passed: bool
    started_at: float  # since QEMU start
    finished_at: float  # since QEMU start
    seconds: float  # since stage start
    error: str | None = None


class Stage:
    """`with console.stage(name, timeout=...)`: a deadline for the expects inside, and a result."""

    def __init__(self, console: SerialConsole, name: str, timeout: float | None) -> None:
        self.console = console
        self.name = name
        self.timeout = None if timeout is None else scale_timeout(timeout)
        self.started = 0.0
        self.deadline: float | None = None
        self._outer: Stage | None = None

    def __enter__(self) -> Stage:
        self.started = time.monotonic()
        if self.timeout is not None:
            self.deadline = self.started + self.timeout
        self._outer = self.console._stage
        self.console._stage = self
        log.debug("stage %s: started at %.1f s", self.name, self.console.elapsed())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.console._stage = self._outer
        now = time.monotonic()
        result = StageResult(
            name=self.name,
            passed=exc is None,
            started_at=self.started - self.console.started,
            finished_at=now - self.console.started,
            seconds=now - self.started,
            error=None if exc is None else (str(exc).splitlines() or [type(exc).__name__])[0],
        )
        self.console.results.append(result)
        log.debug("stage %s: %s after %.1f s", self.name, result.passed, result.seconds)
        if self.console.on_stage is not None:
            self.console.on_stage(result)


# --- the console ---------------------------------------------------------------------------------


class SerialConsole:
    """A running QEMU whose serial line is on stdio; use as a context manager so QEMU dies."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        fatal_patterns: Sequence[tuple[str, str]] = FATAL_PATTERNS,
        on_stage: Callable[[StageResult], None] | None = None,
    ) -> None:
        """Start argv (QEMU with -nographic) and log its raw console to log_path. `on_stage` is
        called with each stage's result as the stage ends (progress for a person watching).

        Raises: ToolError if argv[0] is not installed.
        """
        if not argv:
            raise ValueError("empty argv")
        program = argv[0] if "/" in argv[0] else require_tool(argv[0], reason="boot an ISO in QEMU")
        self.argv = [program, *argv[1:]]
        self.log_path = Path(log_path)
        self.results: list[StageResult] = []
        self.on_stage = on_stage
        self.match: re.Match[str] | None = None
        self.before = ""
        self._fatal = tuple(fatal_patterns)
        self._stage: Stage | None = None
        self._cleaner = AnsiCleaner()
        self._text = ""  # cleaned text from absolute offset _offset on
        self._offset = 0
        self._cursor = 0  # absolute: expect() searches from here
        self._scanned = 0  # absolute: text before this was already searched without a match
        self._fatal_scanned = 0
        self._eof = False
        self._closed = False
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._logfile: IO[str] = open(self.log_path, "w", encoding="utf-8", errors="replace")
        log.debug("+ %s", " ".join(self.argv))
        self.started = time.monotonic()
        try:
            self._child = pexpect.spawn(
                self.argv[0],
                self.argv[1:],
                encoding="utf-8",
                codec_errors="replace",
                timeout=None,
                echo=False,
                env=None if env is None else {**os.environ, **env},
                dimensions=(24, 80),
            )
        except pexpect.ExceptionPexpect as e:
            self._logfile.close()
            self._closed = True
            raise SmokeTestError(f"Could not start {self.argv[0]}: {e}") from e
        self._child.logfile_read = self._logfile
        self._child.delaybeforesend = None

    # -- lifecycle

    @property
    def pid(self) -> int:
        return int(self._child.pid)

    def elapsed(self) -> float:
        """Seconds since QEMU was started."""
        return time.monotonic() - self.started

    def __enter__(self) -> SerialConsole:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Kill QEMU (if still running), reap it and close the log. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._child.isalive():
                # SIGHUP/SIGINT first (QEMU exits cleanly on them), SIGKILL if it does not.
                self._child.terminate(force=True)
        finally:
            try:
                self._child.close(force=True)
            except pexpect.ExceptionPexpect:  # pragma: no cover - only if SIGKILL failed
                log.warning("QEMU (pid %s) did not die", self._child.pid)
            self._logfile.close()
            status, signal = self._child.exitstatus, self._child.signalstatus
            log.debug("QEMU exited: status %s, signal %s", status, signal)

    def stage(self, name: str, *, timeout: float | None = None) -> Stage:
        """A stage whose timeout (scaled) bounds every expect() inside it."""
        return Stage(self, name, timeout)

    # -- input

    def send(self, text: str, *, char_delay: float = 0.0) -> None:
        """Type text on the serial line, optionally one character every `char_delay` seconds.

        Bootloaders reading the serial line through SeaBIOS (sercon mode) get it via the BIOS
        keyboard buffer, which holds 15 keys and drops the rest: type slowly there (0.05 s).
        """
        self._require_running()
        log.debug("send %r", text)
        if char_delay <= 0:
            self._child.send(text)
            return
        for ch in text:
            self._child.send(ch)
            self.drain(char_delay)

    def send_key(self, name: str, times: int = 1, *, delay: float = 0.1) -> None:
        """Press a named key (see KEYS) `times` times, `delay` seconds apart."""
        try:
            seq = KEYS[name]
        except KeyError:
            raise ValueError(f"unknown key {name!r}; known: {', '.join(KEYS)}") from None
        for i in range(times):
            if i:
                self.drain(delay)
            self.send(seq)

    # -- output

    def expect(
        self,
        patterns: Pattern | Sequence[Pattern],
        timeout: float | None = None,
        *,
        what: str | None = None,
    ) -> int:
        """Wait for the first of `patterns` in the cleaned console text; return its index.

        A str is matched literally, a compiled re.Pattern as a regex. Matching continues after the
        previous match. `timeout` is scaled by DISTRO_BUILDER_TIMEOUT_MULTIPLIER and capped by the
        current stage's deadline. Sets `match` and `before`.

        Raises: SmokeTestError on timeout, QEMU exit or a fatal console message.
        """
        pats = [patterns] if isinstance(patterns, str | re.Pattern) else list(patterns)
        if not pats:
            raise ValueError("no patterns")
        regexes = [p if isinstance(p, re.Pattern) else re.compile(re.escape(p)) for p in pats]
        desc = what or " or ".join(repr(p if isinstance(p, str) else p.pattern) for p in pats)
        start = time.monotonic()
        deadline = self._deadline(timeout, start)
        try:
            while True:
                found = self._search(regexes)
                if found is not None:
                    return found
                self._check_fatal(desc, start)
                if self._eof:
                    reason = self._exit_reason()
                    hint = "the guest powered off, rebooted or crashed; read the full log"
                    self._fail(f"QEMU exited ({reason}) while waiting for {desc}", start, hint=hint)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    waited = time.monotonic() - start
                    hint = (
                        f"if the guest is just slow (TCG), set {TIMEOUT_MULTIPLIER_ENV}=3;"
                        " otherwise read the full log"
                    )
                    self._fail(
                        f"Timed out after {waited:.1f} s waiting for {desc}", start, hint=hint
                    )
                self._read(min(remaining, 0.5))
        except KeyboardInterrupt:
            self.close()
            raise

    def expect_line(self, prefix: str, timeout: float | None = None) -> str:
        """Wait for a whole console line containing `prefix`; return the rest of that line.

        Serial output arrives in pieces, so a pattern that stops at "whatever came so far" can
        match half a line; this waits for the line's end. Raises like `expect`.
        """
        self.expect(line_pattern(prefix), timeout, what=f"a line with {prefix!r}")
        assert self.match is not None
        return self.match.group(1)

    def drain(self, seconds: float) -> None:
        """Keep reading the console for `seconds` (not scaled), so the guest never blocks on it.

        Raises: SmokeTestError if QEMU exits or prints a fatal message meanwhile.
        """
        start = time.monotonic()
        end = start + seconds
        try:
            while (remaining := end - time.monotonic()) > 0:
                self._read(min(remaining, 0.5))
                self._check_fatal(f"{seconds:g} s of console output", start)
                if self._eof:
                    reason = self._exit_reason()
                    self._fail(f"QEMU exited ({reason}) during {seconds:g} s of output", start)
        except KeyboardInterrupt:
            self.close()
            raise

    def text(self) -> str:
        """The cleaned console text still held in memory (the end of it, for long sessions)."""
        return self._text

    def tail(self, n: int = TAIL_LINES) -> list[str]:
        """The last n non-blank lines of cleaned console text."""
        lines = [line.rstrip() for line in self._text.splitlines()]
        return [line for line in lines if line.strip()][-n:]

    # -- internals

    def _deadline(self, timeout: float | None, start: float) -> float:
        stage_deadline = self._stage.deadline if self._stage else None
        if timeout is None:
            if stage_deadline is not None:
                return stage_deadline
            timeout = DEFAULT_TIMEOUT
        deadline = start + scale_timeout(timeout)
        return deadline if stage_deadline is None else min(deadline, stage_deadline)

    def _search(self, regexes: Sequence[re.Pattern[str]]) -> int | None:
        begin = max(self._cursor, self._scanned - _SEARCH_OVERLAP)
        best: tuple[int, int, re.Match[str]] | None = None
        for index, regex in enumerate(regexes):
            m = regex.search(self._text, begin - self._offset)
            if m and (best is None or m.start() < best[2].start()):
                best = (index, m.start(), m)
        self._scanned = self._offset + len(self._text)
        if best is None:
            return None
        index, _, m = best
        self.before = self._text[self._cursor - self._offset : m.start()]
        self.match = m
        self._cursor = self._scanned = self._offset + m.end()
        return index

    def _check_fatal(self, desc: str, start: float) -> None:
        begin = max(0, self._fatal_scanned - _SEARCH_OVERLAP - self._offset)
        for needle, hint in self._fatal:
            if self._text.find(needle, begin) >= 0:
                self._fail(f"{needle!r} on the console while waiting for {desc}", start, hint=hint)
        self._fatal_scanned = self._offset + len(self._text)

    def _read(self, timeout: float) -> None:
        if self._closed:
            self._eof = True
        if self._eof:
            return
        try:
            chunk = self._child.read_nonblocking(size=65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self._eof = True
            self._append(self._cleaner.flush())
            self._child.close(force=True)
            return
        self._append(self._cleaner.feed(chunk))

    def _append(self, text: str) -> None:
        if not text:
            return
        self._text += text
        if len(self._text) > _MAX_TEXT:
            drop = min(
                len(self._text) - _KEEP_TEXT,
                self._cursor - self._offset,
                max(0, self._scanned - _SEARCH_OVERLAP - self._offset),
                max(0, self._fatal_scanned - _SEARCH_OVERLAP - self._offset),
            )
            if drop > 0:
                self._text = self._text[drop:]
                self._offset += drop

    def _exit_reason(self) -> str:
        if self._child.isalive():
            return "console closed"
        if self._child.signalstatus is not None:
            return f"signal {self._child.signalstatus}"
        return f"exit status {self._child.exitstatus}"

    def _require_running(self) -> None:
        if self._closed or self._eof:
            raise SmokeTestError(
                f"QEMU is not running any more ({self._exit_reason()})",
                hint=f"see the full console log: {self.log_path}",
            )

    def _fail(self, message: str, start: float, *, hint: str | None = None) -> NoReturn:
        stage = f"Stage {self._stage.name!r}: " if self._stage else ""
        waited = time.monotonic() - start
        lines = "\n".join(f"  | {line}" for line in self.tail()) or "  | (no console output)"
        raise SmokeTestError(
            f"{stage}{message} (waited {waited:.1f} s, {self.elapsed():.1f} s since QEMU start)\n"
            f"Last {TAIL_LINES} console lines:\n{lines}\n"
            f"Full console log: {self.log_path}",
            hint=hint,
        )
