"""Check rendered preseeds with the real parser: `debconf-set-selections --checkonly`.

debconf-set-selections exits 0 on an unknown type and only warns ("Unknown type bogus, skipping
line N"), so any warning on stderr also fails the check: a skipped line is an answer that never
reaches the installer.
"""

from __future__ import annotations

from distro_builder.errors import ConfigError
from distro_builder.run import require_tool, run

TOOL = "debconf-set-selections"


def require_checker() -> None:
    """ToolError now (before slow work) when debconf-set-selections is missing."""
    require_tool(TOOL, reason="check every rendered preseed (--checkonly)")


def check_preseed(text: str, name: str) -> None:
    """ConfigError naming `name` and the bad line when `text` is not a valid preseed."""
    require_checker()
    proc = run([TOOL, "--checkonly"], check=False, input=text)
    problems = [line.strip() for line in (proc.stderr or "").splitlines() if line.strip()]
    if proc.returncode != 0 or problems:
        first = problems[0] if problems else f"exit code {proc.returncode}"
        raise ConfigError(
            f"{name}: rejected by debconf-set-selections --checkonly: {first}",
            hint="fix the preseed template (preseed/) or the value that went into it",
        )
