"""The agent's wire format: `key='value'` lines, POSIX single-quote quoting.

The same format as /etc/stackops/answers (a `'` inside a value is written `'\\''`), so what the
service sends can be checked with one regular expression and sourced by lucid's sh; what a node
sends is read by parse(), which accepts `key='value'` and plain `key=value` (the node's sh writes
the latter for simple values). Keys are [a-z_][a-z0-9_]*; a key may repeat (nic=..., disk=...).
"""

from __future__ import annotations

import re

from distro_builder.smart_installer.errors import BadRequest

KEY_RE = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_QUOTED_RE = re.compile(r"'((?:[^']|'\\'')*)'")


def quote(value: str) -> str:
    """`value` as one POSIX sh single-quoted word."""
    return "'" + value.replace("'", "'\\''") + "'"


def render(pairs: list[tuple[str, str]] | dict[str, str]) -> str:
    """key='value' lines; values must not contain line breaks or NUL."""
    items = list(pairs.items()) if isinstance(pairs, dict) else pairs
    out = []
    for key, value in items:
        if not KEY_RE.fullmatch(key):
            raise ValueError(f"bad key {key!r}")
        if any(c in value for c in "\n\r\0"):
            raise ValueError(f"value of {key} has a line break")
        out.append(f"{key}={quote(value)}\n")
    return "".join(out)


def parse(text: str, *, max_lines: int = 256) -> list[tuple[str, str]]:
    """The key/value pairs of a node's request body; BadRequest naming the bad line."""
    pairs: list[tuple[str, str]] = []
    lines = text.splitlines()
    if len(lines) > max_lines:
        raise BadRequest(f"too many lines ({len(lines)} > {max_lines})")
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep or not KEY_RE.fullmatch(key):
            raise BadRequest(f"line {number}: expected key=value, got {line[:60]!r}")
        if raw.startswith("'"):
            m = _QUOTED_RE.fullmatch(raw)
            if not m:
                raise BadRequest(f"line {number}: bad quoting in the value of {key}")
            value = m.group(1).replace("'\\''", "'")
        else:
            value = raw
        if any(c in value for c in "\0\r") or any(ord(c) < 32 and c != "\t" for c in value):
            raise BadRequest(f"line {number}: control characters in the value of {key}")
        pairs.append((key, value))
    return pairs
