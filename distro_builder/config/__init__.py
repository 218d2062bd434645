"""YAML -> validated model records. The config package is the only importer of yaml.

Every error names the file and the key (and the line where yaml knows it) and says how to fix it.
This module holds the shared pieces (data folder lookup, YAML loading, typed field access); each
submodule loads one kind of file (demo.py: demo/disc.yaml).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from distro_builder.errors import ConfigError

DATA_MARKER = "demo/disc.yaml"


def find_data_dir(explicit: Path | None = None) -> Path:
    """The folder holding the data folders: demo/, roles/, questions/, preseed/, d-i/, agent/...

    Order: --data-dir, $DISTRO_BUILDER_DATA, the source checkout, the installed copy's package
    data (distro_builder/data/: pyproject.toml ships the data folders there, whole).
    """
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    elif os.environ.get("DISTRO_BUILDER_DATA"):
        candidates.append(Path(os.environ["DISTRO_BUILDER_DATA"]))
    else:
        candidates.append(Path(__file__).resolve().parents[2])  # the source checkout
        candidates.append(Path(__file__).resolve().parents[1] / "data")  # installed
    for c in candidates:
        if (c / DATA_MARKER).is_file():
            return c
    raise ConfigError(
        f"no data folder found (looked in {', '.join(str(c) for c in candidates)})",
        hint="run from a checkout of distro-builder or pass --data-dir",
    )


# A config file is a few hundred nodes; these bounds refuse "billion laughs" documents (a few
# aliases of aliases that expand to gigabytes) before anything walks the expanded tree.
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000


class _LimitError(yaml.MarkedYAMLError):
    """A document refused for its shape, not its syntax; `hint` says what to do."""

    def __init__(self, problem: str, mark: Any, hint: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.hint = hint


# YAML 1.1 (PyYAML) reads plain scalars as numbers and booleans by their look: `0123` is 83,
# `12:30` is 750, `0x1F` is 31, `1.10` is 1.1, `yes` is True. A password, a version or a volume
# name must be the text the user wrote, so the loader resolves no plain scalar but null (and the
# `<<` merge key): every other one stays the text written, and what it means is decided by the
# field that reads it (Fields.int/bool below, the question contract in questions.py).
_KEPT_RESOLVERS = ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")
_DECIMAL_RE = re.compile(r"-?(0|[1-9][0-9]*)")
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _text_resolvers() -> dict[Any, list[Any]]:
    kept: dict[Any, list[Any]] = {}
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
        mine = [(tag, rx) for tag, rx in resolvers if tag in _KEPT_RESOLVERS]
        if mine:
            kept[first] = mine
    return kept


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader with aliases bounded, recursive aliases and duplicate keys refused, and
    plain scalars kept as the text written (null aside)."""

    yaml_implicit_resolvers = _text_resolvers()

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._open_anchors: list[str] = []  # anchors of the collections being composed

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _LimitError(
                    f"more than {MAX_ALIASES} aliases (*{event.anchor} is one too many)",
                    event.start_mark,
                    "write the values out; so many aliases look like an alias bomb",
                )
            if event.anchor in self._open_anchors:
                raise _LimitError(
                    f"recursive alias *{event.anchor} (inside the node &{event.anchor} itself)",
                    event.start_mark,
                    "an alias may only refer to a node outside itself",
                )
            return super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open_anchors.append(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            if anchor is not None:
                self._open_anchors.pop()

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` keys are overridden on purpose
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # unhashable: the constructor says so itself
                if first is not key_node:
                    raise _LimitError(
                        f"duplicate key {key!r} (first on line {first.start_mark.line + 1}); "
                        "YAML would silently keep the last one",
                        key_node.start_mark,
                        "remove one of them, or merge their values",
                    )
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: Any) -> int:
    """How many nodes walking `root` visits, aliases followed (counted once per shared node)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = node.value if isinstance(node, yaml.SequenceNode) else []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _compose(path: Path) -> tuple[_Loader, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}", hint="check the path") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text: {e}", hint="save it as UTF-8") from e
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except (yaml.YAMLError, RecursionError) as e:
        loader.dispose()
        raise _yaml_error(path, e) from e
    if node is not None and _expanded_size(node) > MAX_EXPANDED_NODES:
        loader.dispose()
        raise ConfigError(
            f"{path}: the YAML expands to more than {MAX_EXPANDED_NODES:,} nodes through its "
            "aliases",
            hint="write the values out; aliases of aliases look like an alias bomb",
        )
    return loader, node


def _yaml_error(path: Path, e: BaseException) -> ConfigError:
    if isinstance(e, RecursionError):
        return ConfigError(f"{path}: the YAML is nested too deeply", hint="flatten it")
    mark = getattr(e, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(e, "problem", None) or str(e)
    if isinstance(e, _LimitError):
        return ConfigError(f"{where}: {problem}", hint=e.hint)
    return ConfigError(f"{where}: invalid YAML: {problem}", hint="fix the YAML syntax")


def compose_yaml(path: Path) -> yaml.Node | None:
    """The YAML node tree of `path` (for line numbers), bounded like load_yaml: walking it with
    aliases followed visits at most MAX_EXPANDED_NODES nodes and never loops. Use it instead of
    yaml.compose(). Raises ConfigError naming the file (and line)."""
    loader, node = _compose(path)
    loader.dispose()
    return node  # type: ignore[no-any-return]


def load_yaml(path: Path) -> Any:
    """The data of the YAML file `path` (safe types only).

    Raises ConfigError naming the file and line on a syntax error, a duplicate key, a recursive
    alias, more than MAX_ALIASES aliases or a document expanding to more than MAX_EXPANDED_NODES.
    """
    loader, node = _compose(path)
    try:
        return None if node is None else loader.construct_document(node)
    except (yaml.YAMLError, RecursionError) as e:
        raise _yaml_error(path, e) from e
    finally:
        loader.dispose()


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
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # an explicit !!int
        if not isinstance(value, str) or not _DECIMAL_RE.fullmatch(value):
            raise ConfigError(
                f"{self.path}: {self._key(key)} must be a whole number written in decimal",
                hint="like 42 (no 0x, no leading 0, no '_')",
            )
        return int(value)

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if isinstance(value, str) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
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
