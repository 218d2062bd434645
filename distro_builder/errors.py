"""The one error root. Every error a user can act on carries a hint saying how.

Imports nothing from the package. The library raises; only cli.py formats.
"""

from __future__ import annotations

from collections.abc import Sequence


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with its control characters (ESC, CR, ..., C1, DEL; newlines unless kept) shown
    as escapes: a name from a disc or the command line never drives the terminal it is shown
    on, nor starts an `error:` line of its own."""
    keep = "\n\t" if keep_newlines else ""
    return "".join(
        c if c in keep or (c.isprintable() and c != "\x7f") else c.encode("unicode_escape").decode()
        for c in text
    )


class DistroBuilderError(Exception):
    """An error the user can act on; `hint` says how."""

    # What to do when the raiser gave no specific hint; each kind of fault has its own.
    default_hint: str | None = "run with -v (or --debug) for details"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint if hint is not None else self.default_hint


class ConfigError(DistroBuilderError):
    """Bad input data (spec, roles, package lists): always names file and key."""

    default_hint = "fix the file and key named above (see README.md for the formats)"


class IsoError(DistroBuilderError):
    """A source ISO is unreadable, not bootable or of an unsupported layout."""

    default_hint = "give a bootable Ubuntu server install ISO (`distro-builder inspect ISO`)"


class OutputError(DistroBuilderError):
    """The output cannot be written where asked."""

    default_hint = "choose an output path in a writable directory"


class ArchiveError(DistroBuilderError):
    """A package index or .deb is malformed or inconsistent."""

    default_hint = "the package index or .deb named above is malformed; rebuild or re-fetch it"


class DependencyError(DistroBuilderError):
    """A package cannot be satisfied; the message shows the chain that pulled it in."""

    default_hint = "add a repository that has the package (--repo/--sources) or drop it"


class ToolError(DistroBuilderError):
    """An external command is missing or failed."""

    default_hint = "run with -v to see the command and its output"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr_tail: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class SmokeTestError(DistroBuilderError):
    """A VM did not reach an expected console state; names the stage and the log."""

    default_hint = "read the console log named above; raise --timeout-scale on a slow machine"
