"""The one error root. Every error a user can act on carries a hint saying how.

Imports nothing from the package. The library raises; only cli.py formats.
"""

from __future__ import annotations

from collections.abc import Sequence


class DistroBuilderError(Exception):
    """An error the user can act on; `hint` says how."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(DistroBuilderError):
    """Bad input data (spec, roles, package lists): always names file and key."""


class IsoError(DistroBuilderError):
    """A source ISO is unreadable, not bootable or of an unsupported layout."""


class OutputError(DistroBuilderError):
    """The output cannot be written where asked."""


class ArchiveError(DistroBuilderError):
    """A package index or .deb is malformed or inconsistent."""


class DependencyError(DistroBuilderError):
    """A package cannot be satisfied; the message shows the chain that pulled it in."""


class ToolError(DistroBuilderError):
    """An external command is missing or failed."""

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
