"""ISO 9660 and Joliet names for files added to an image. Pure functions, no I/O.

pycdlib accepts whatever identifier it is given: it neither enforces the interchange level's length
limits nor refuses duplicate file identifiers (a duplicate silently hides a file). So every name is
made here, unique among its siblings, the way genisoimage -l would make it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

JOLIET_MAX = 64  # UCS-2 characters, without -joliet-long
_NOT_D_CHARS = re.compile(r"[^A-Z0-9_]")
_JOLIET_BAD = re.compile(r"[*/:;?\\]")


def _limits(level: int, *, directory: bool) -> tuple[int, int]:
    """(max total length, max extension length) of an identifier without ';1'."""
    if level <= 1:
        return (8, 0) if directory else (12, 3)  # 8.3 (12 = 8 + dot + 3)
    return (31, 0) if directory else (31, 30)  # ECMA-119 7.5.1: name + ext <= 30, plus the dot


def _d_chars(text: str) -> str:
    return _NOT_D_CHARS.sub("_", text.upper())


def _split_ext(rr_name: str) -> tuple[str, str]:
    stem, dot, ext = rr_name.rpartition(".")
    if not dot or not stem:
        return rr_name, ""
    return stem, ext


def _fit_file(stem: str, ext: str, level: int, suffix: str = "") -> str:
    max_total, max_ext = _limits(level, directory=False)
    if level <= 1:
        ext = ext[:3]
        stem = stem[: 8 - len(suffix)] + suffix
        return f"{stem}.{ext}"
    ext = ext[:max_ext]
    room = 30 - len(ext) - len(suffix)
    if room < 1:  # absurdly long extension: give the name some room
        ext = ext[: 30 - len(suffix) - 8]
        room = 30 - len(ext) - len(suffix)
    return f"{stem[:room]}{suffix}.{ext}"


class Folded(set[str]):
    """Sibling names already folded (ISO 9660: upper-case, no ';1'; Joliet: lower-case): taken
    as they are. A plain collection is folded on every call, which made adding 20,000 files to
    one folder quadratic."""


def _folded(taken: Collection[str], fold: Callable[[str], str]) -> Collection[str]:
    return taken if isinstance(taken, Folded) else {fold(t) for t in taken}


def iso_file_name(rr_name: str, level: int, taken: Collection[str]) -> str:
    """An ISO 9660 file identifier ('NAME.EXT;1') for `rr_name`, not in `taken`.

    `taken` holds the siblings' identifiers, upper-case, without the ';1' version.
    """
    stem, ext = _split_ext(rr_name)
    stem, ext = _d_chars(stem) or "_", _d_chars(ext)
    used = _folded(taken, str.upper)
    candidate = _fit_file(stem, ext, level)
    n = 0
    while candidate in used:
        n += 1
        candidate = _fit_file(stem, ext, level, f"_{n}")
    return candidate + ";1"


def iso_dir_name(rr_name: str, level: int, taken: Collection[str]) -> str:
    """An ISO 9660 directory identifier for `rr_name`, not in `taken` (upper-case)."""
    max_len, _ = _limits(level, directory=True)
    base = _d_chars(rr_name) or "_"
    used = _folded(taken, str.upper)
    candidate = base[:max_len]
    n = 0
    while candidate in used:
        n += 1
        suffix = f"_{n}"
        candidate = base[: max_len - len(suffix)] + suffix
    return candidate


def joliet_name(rr_name: str, taken: Collection[str], *, directory: bool = False) -> str:
    """A Joliet name of at most 64 characters that keeps the extension, not in `taken`.

    Comparison is case-insensitive, as Windows (Joliet's consumer) compares names.
    """
    clean = _JOLIET_BAD.sub("_", rr_name)
    stem, ext = ("", "") if directory else _split_ext(clean)
    if directory or not ext or len(ext) > 16:
        stem, ext = clean, ""
    dot_ext = f".{ext}" if ext else ""
    used = _folded(taken, str.lower)

    def fit(suffix: str) -> str:
        room = JOLIET_MAX - len(dot_ext) - len(suffix)
        cut = stem[:room]
        if len(cut) < len(stem):
            cut = cut.rstrip(".") or cut  # no 'name..deb' from a cut before a dot
        return cut + suffix + dot_ext

    candidate = fit("")
    n = 0
    while candidate.lower() in used:
        n += 1
        candidate = fit(f"~{n}")
    return candidate
