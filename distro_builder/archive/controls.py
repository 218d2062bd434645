"""The control fields of .deb files, remembered by the SHA-256 of each file's bytes.

A build reads the control fields of every package it stages (for its Packages stanza) and of
its own packages (for the plan, twice). The 107 packages of the demo build took 40 ms to parse
with python-debian's DebFile, plus 20 ms to import it (its changelog module pulls in email and
socket), on every build although the cached packages never change. The fields of a file
depend on its bytes alone, so they are kept under the bytes' SHA-256, which the caller has
(from the index that listed the file, or from hashing it for the stanza).

One JSON file in the package cache, `controls.json`, holds them with this format's name and the
version of python-debian that parsed them: another version starts afresh, so a changed parser
never serves fields it would not produce. The entries used or added by a run are kept last, and
the oldest go beyond MAX_ENTRIES. The file is written whole to a temporary file that is renamed
into place; one that cannot be read or written costs only the parsing. The fields are no more
trusted than the cached .debs beside them: both are in the user's own cache folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from distro_builder.archive.index import python_debian_version
from distro_builder.atomicfile import write_atomic

log = logging.getLogger(__name__)

FORMAT = "controls-1"  # bump when what is kept, or how it is parsed, changes
FILE_NAME = "controls.json"
MAX_ENTRIES = 4096  # about 1 KB each: a lucid build stages 100-200
_REQUIRED = ("Package", "Version", "Architecture")

Fields = dict[str, str]


class ControlCache:
    """Control fields by SHA-256, in memory for one run and in `folder`/controls.json between
    runs (`folder` None: in memory only, which still spares the same file parsed twice)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = Path(folder) / FILE_NAME if folder is not None else None
        self._entries: dict[str, list[list[str]]] | None = None
        self._used: dict[str, list[list[str]]] = {}
        self._added = False
        self._version = ""

    def fields(self, sha256: str, parse: Callable[[], Fields]) -> Fields:
        """The control fields of the file whose SHA-256 is `sha256`: kept ones, else `parse()`'s
        (kept for the next time). A copy: the caller may change it."""
        entry = self._used.get(sha256)
        if entry is None:
            entry = self._load().get(sha256)
            if entry is not None and not _valid(entry):
                log.debug("%s: the entry for %s is damaged, parsing again", self.path, sha256)
                entry = None
            if entry is None:
                entry = [[str(k), str(v)] for k, v in parse().items()]
                self._added = True
            self._used[sha256] = entry
        return {k: v for k, v in entry}

    def save(self) -> None:
        """Write the file when this run added an entry (nothing to write otherwise)."""
        if self.path is None or not self._added:
            return
        kept = {k: v for k, v in self._load().items() if k not in self._used}
        kept.update(self._used)  # this run's entries last: the oldest go first
        entries = dict(list(kept.items())[-MAX_ENTRIES:])
        data = {"format": FORMAT, "python-debian": self._version, "entries": entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(data, separators=(",", ":")).encode())
        except OSError as e:
            log.debug("control fields not kept in %s: %s", self.path, e)
            return
        self._added = False

    def _load(self) -> dict[str, list[list[str]]]:
        if self._entries is not None:
            return self._entries
        self._entries = {}
        self._version = python_debian_version()
        if self.path is None or not self._version:
            return self._entries
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return self._entries
        except (OSError, ValueError) as e:
            log.debug("%s: cannot read (%s), parsing again", self.path, e)
            return self._entries
        if (
            isinstance(data, dict)
            and data.get("format") == FORMAT
            and data.get("python-debian") == self._version
            and isinstance(data.get("entries"), dict)
        ):
            self._entries = data["entries"]
        return self._entries


def _valid(entry: object) -> bool:
    if not isinstance(entry, list):
        return False
    if not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in entry
    ):
        return False
    present = {k for k, v in entry if v}
    return all(f in present for f in _REQUIRED)
