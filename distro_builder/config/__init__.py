"""YAML -> validated model records. The config package is the only importer of yaml.

Every error names the file and the key (and the line where yaml knows it) and says how to fix it.
This module holds the shared pieces (data folder lookup, YAML loading, typed field access); each
submodule loads one kind of file (demo.py: demo/disc.yaml).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from distro_builder.errors import ConfigError

DATA_MARKER = "demo/disc.yaml"


def find_data_dir(explicit: Path | None = None) -> Path:
    """The folder holding the data folders: demo/, roles/, package_lists/, preseed/, d-i/, agent/...

    Order: --data-dir, $DISTRO_BUILDER_DATA, the source checkout, the installed share folder.
    """
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    elif os.environ.get("DISTRO_BUILDER_DATA"):
        candidates.append(Path(os.environ["DISTRO_BUILDER_DATA"]))
    else:
        candidates.append(Path(__file__).resolve().parents[2])  # the source checkout
        candidates.append(Path(sys.prefix) / "share" / "distro-builder")
    for c in candidates:
        if (c / DATA_MARKER).is_file():
            return c
    raise ConfigError(
        f"no data folder found (looked in {', '.join(str(c) for c in candidates)})",
        hint="run from a checkout of distro-builder or pass --data-dir",
    )


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}", hint="check the path") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}: invalid YAML: {problem}", hint="fix the YAML syntax") from e


class Fields:
    """Typed access to one mapping of a YAML file, with errors naming file and key."""

    def __init__(self, path: Path, where: str, data: Any, allowed: set[str]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: {where or 'top level'} must be a mapping")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(
                f"{path}: unknown key {where + '.' if where else ''}{unknown[0]}",
                hint=f"allowed keys: {', '.join(sorted(allowed))}",
            )
        self.path, self.where, self.data = path, where, data

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def str(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise ConfigError(f"{self.path}: missing key {self._key(key)}")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{self.path}: {self._key(key)} must be a string")
        return str(value)

    def opt_str(self, key: str) -> str | None:
        return self.str(key) if self.data.get(key) is not None else None

    def int(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{self.path}: {self._key(key)} must be an integer")
        return value

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.path}: {self._key(key)} must be true or false")
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.path}: {self._key(key)} must be a list of strings")
        return tuple(value)

    def sub(self, key: str, allowed: set[str]) -> Fields:
        if key not in self.data:
            raise ConfigError(f"{self.path}: missing key {self._key(key)}")
        return Fields(self.path, self._key(key), self.data[key], allowed)
