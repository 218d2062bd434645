"""Check rendered preseeds with the real parser: `debconf-set-selections --checkonly`.

debconf-set-selections exits 0 on an unknown type and only warns ("Unknown type bogus, skipping
line N"), so any warning on stderr also fails the check: a skipped line is an answer that never
reaches the installer.

The check runs against a private, empty debconf database in a temporary directory (a debconf.conf
of its own through DEBCONF_SYSTEMRC), never the build machine's: debconf-set-selections loads
its database even with --checkonly and gives up with exit code 1 when another process (apt, a
dpkg run, debconf-communicate) holds the lock on /var/cache/debconf/config.dat.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from distro_builder.errors import ConfigError
from distro_builder.run import require_tool, run

TOOL = "debconf-set-selections"

# A config and a template database of two files, nothing else stacked on them (debconf.conf(5)).
_PRIVATE_CONF = """\
Config: configdb
Templates: templatedb

Name: configdb
Driver: File
Filename: {dir}/config.dat

Name: templatedb
Driver: File
Filename: {dir}/templates.dat
"""
# debconf-set-selections' flag lines (its @knownflags): they act on a question loaded before.
_FLAG_LINE = re.compile(r"^[ \t]*\S+[ \t]+\S+[ \t]+seen(?:[ \t]|$)", re.MULTILINE)
# Variables that would put another database (or the host's, under DPKG_ROOT) back in the stack.
_DEBCONF_DB_VARS = ("DEBCONF_DB_REPLACE", "DEBCONF_DB_OVERRIDE", "DEBCONF_DB_FALLBACK", "DPKG_ROOT")


def require_checker() -> None:
    """ToolError now (before slow work) when debconf-set-selections is missing."""
    require_tool(TOOL, reason="check every rendered preseed (--checkonly)")


def check_preseed(text: str, name: str) -> None:
    """ConfigError naming `name` and the bad line when `text` is not a valid preseed."""
    require_checker()
    with tempfile.TemporaryDirectory(prefix="distro-builder-debconf.") as tmp:
        conf = Path(tmp) / "debconf.conf"
        conf.write_text(_PRIVATE_CONF.format(dir=tmp))
        proc = run(
            [TOOL, "--checkonly"],
            check=False,
            input=text,
            env={"DEBCONF_SYSTEMRC": str(conf)},
            unset=_DEBCONF_DB_VARS,
        )
    problems = [line.strip() for line in (proc.stderr or "").splitlines() if line.strip()]
    if proc.returncode != 0 or problems:
        first = problems[0] if problems else f"exit code {proc.returncode}"
        raise ConfigError(
            f"{name}: rejected by debconf-set-selections --checkonly: {first}",
            hint="fix the preseed template (preseed/) or the value that went into it",
        )


def check_preseeds(seeds: Sequence[tuple[str, str]]) -> None:
    """check_preseed for every (text, name), with one debconf-set-selections for all of them.

    The tool's start-up (perl and debconf's modules) is nearly all of its time, so the texts are
    checked together, each ended by an empty line (a backslash-continued last line cannot run
    into the next text). When that is rejected, each is checked alone, so the error names the
    preseed and its own line number. A flag line (`owner question seen true`) needs its
    question set before it, maybe by an earlier text: texts with one are checked alone.
    """
    if len(seeds) <= 1 or any(_FLAG_LINE.search(text) for text, _ in seeds):
        for text, name in seeds:
            check_preseed(text, name)
        return
    joined = "".join(text + ("" if text.endswith("\n") else "\n") + "\n" for text, _ in seeds)
    try:
        check_preseed(joined, ", ".join(name for _, name in seeds))
    except ConfigError:
        for text, name in seeds:
            check_preseed(text, name)
        raise  # together rejected, alone accepted: still not what goes on the disc
