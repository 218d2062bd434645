"""The one deb822 reader (Packages indexes, control files, Release fields): text -> plain dicts.

apt's own parser (`apt_pkg.TagFile`, Debian package python3-apt; not on PyPI, so the Makefile
links Debian's module into the venv) when it imports, else the same rules in Python. Both give
the same dicts: field names as written, values stripped, continuation lines joined with "\n"
keeping their indentation (tests/unit/test_deb822.py holds one corpus to both); what TagFile
would skip or misread silently (a line that is no field, a continuation with no field before
it) is parsed by the Python rules, which name the line. `parse_fields` reads only some fields of
every stanza, as tuples: what a Packages index is read for (archive/catalog.py, which also
caches the result by the index's hash).

Measured on Debian 12's full `main` index (63,440 stanzas, 50 MB): TagFile 0.4 s for every
stanza's 16 index fields, the UTF-8 check 0.1 s, the malformed-line check 0.1 s (one regex with
an alternation took 1.4 s), the Python rules 5.0-6.5 s, python-debian without apt_pkg ~30 s.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Sequence
from typing import TypeVar

from distro_builder.errors import ArchiveError

log = logging.getLogger(__name__)

try:  # Debian's python3-apt (see the Makefile's venv target)
    import apt_pkg as _apt_pkg
except ImportError:  # pragma: no cover - depends on the host
    _apt_pkg = None

Stanza = dict[str, str]
T = TypeVar("T")


def has_apt_pkg() -> bool:
    return _apt_pkg is not None


def parse(text: str | bytes, name: str, *, apt: bool | None = None) -> list[Stanza]:
    """Every stanza of deb822 `text` as a dict; ArchiveError naming `name` (and the line).

    `apt` chooses the parser (None: apt_pkg when it imports); tests compare the two.
    """
    data = _utf8(text, name)
    use_apt = has_apt_pkg() if apt is None else apt
    if use_apt:
        stanzas = _parse_apt(data, name, dict)
        if stanzas is not None:
            return stanzas
    return _parse_python(data.decode("utf-8"), name)


def parse_fields(
    text: str | bytes, name: str, fields: Sequence[str], *, apt: bool | None = None
) -> list[tuple[str, ...]]:
    """`fields` of every stanza of `text`, in that order ('' when absent): `parse()` without
    building a dict of every field (a Packages stanza has ~20, an index needs 16)."""
    data = _utf8(text, name)
    use_apt = has_apt_pkg() if apt is None else apt
    if use_apt:
        rows = _parse_apt(data, name, lambda s: tuple([s.get(f, "") for f in fields]))
        if rows is not None:
            return rows
    return [tuple([s.get(f, "") for f in fields]) for s in _parse_python(data.decode(), name)]


def _utf8(text: str | bytes, name: str) -> bytes:
    """`text` as UTF-8 bytes with "\n" line ends; ArchiveError when it is not UTF-8."""
    if isinstance(text, str):
        return text.replace("\r\n", "\n").encode("utf-8")
    try:
        text.decode("utf-8")  # the check only: TagFile reads the bytes
    except UnicodeDecodeError as e:
        raise ArchiveError(f"{name} is not UTF-8 text: {e}", hint="check the file") from e
    return text.replace(b"\r\n", b"\n") if b"\r" in text else text


def _parse_python(text: str, name: str) -> list[Stanza]:
    out: list[Stanza] = []
    stanza: Stanza = {}
    key = ""
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            if stanza:
                out.append(stanza)
                stanza, key = {}, ""
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":
            if not key:
                raise ArchiveError(
                    f"{name}:{n}: a continuation line before any field",
                    hint="see deb822(5): a field is `Name: value`, continuations are indented",
                )
            stanza[key] += "\n" + line.rstrip()
            continue
        field, sep, value = line.partition(":")
        if not sep or not field.strip() or " " in field.strip():
            raise ArchiveError(
                f"{name}:{n}: {line[:40]!r} is not a `Field: value` line",
                hint="see deb822(5); is this really the file it should be?",
            )
        key = field.strip()
        stanza[key] = value.strip()
    if stanza:
        out.append(stanza)
    return out


def _parse_apt(data: bytes, name: str, convert: Callable[[object], T]) -> list[T] | None:
    """TagFile's stanzas through `convert`; None when the Python rules must read `data`."""
    assert _apt_pkg is not None
    if _malformed(data):
        return None  # TagFile skips what it cannot read: the Python rules name the line
    # TagFile reads a file descriptor; an anonymous file holds the text.
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        try:
            out = [convert(section) for section in _apt_pkg.TagFile(f)]
        except (SystemError, ValueError) as e:
            log.debug("%s: apt_pkg: %s", name, e)
            return None
    if not out and data.strip():
        return None
    return out


# What TagFile reads otherwise than deb822(5) and the Python rules, silently: a comment or a line
# that is no field (TagFile makes it part of the next field's name), a continuation after an
# empty line or at the start (dropped), a line of spaces only (no stanza break for TagFile).
# The pattern starts with a literal "\n": the same alternatives tried at every position (one
# `(?:\A|\n)` in front) took 1.4 s on Debian 12 main, this 0.1 s.
_MALFORMED = re.compile(rb"\n(?:#|\n[ \t]|[ \t]++(?:\n|\Z)|[^ \t#:\n][^:\n]*+(?:\n|\Z))")
# The same at the start (match()), and an empty first line (TagFile yields an empty stanza).
_START = re.compile(rb"[\n \t#]|[^:\n]*+(?:\n|\Z)")


def _malformed(data: bytes) -> bool:
    return bool(_START.match(data) or _MALFORMED.search(data))
