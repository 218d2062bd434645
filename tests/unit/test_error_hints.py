"""Every error the CLI or the service shows carries a hint (errors.py gives one per kind)."""

from __future__ import annotations

import ast
from pathlib import Path

from distro_builder import errors
from distro_builder.smart_installer import errors as installer_errors

PACKAGE = Path(__file__).resolve().parents[2] / "distro_builder"


def _error_classes() -> dict[str, type[errors.DistroBuilderError]]:
    out = {}
    for module in (errors, installer_errors):
        for name in dir(module):
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, errors.DistroBuilderError):
                out[name] = cls
    return out


def test_every_kind_has_a_default_hint() -> None:
    for name, cls in _error_classes().items():
        if name == "TooManyRequests":
            assert cls("x", retry_after=1).hint, name
            continue
        if name == "InvalidFields":  # every refused field with its reason
            assert cls({"x": "why"}).hint, name
            continue
        assert cls("x").hint, name
        if cls is not errors.DistroBuilderError:  # a kind's own, not the generic fallback
            assert cls.default_hint != errors.DistroBuilderError.default_hint, name


def test_the_root_is_raised_with_its_own_hint() -> None:
    """`raise DistroBuilderError(...)` (no kind) must say what to do itself."""
    bare = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "DistroBuilderError" and not any(k.arg == "hint" for k in node.exc.keywords):
                bare.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert bare == []


def test_printable_shows_control_characters_as_escapes() -> None:
    """Issue 20 item 19: a name from the command line or a disc never drives the terminal."""
    raw = "/\x1b[2J\x1b]0;t\x07\r\x9b1m\x7f\tok\nnext é"
    assert errors.printable(raw) == "/\\x1b[2J\\x1b]0;t\\x07\\r\\x9b1m\\x7f\\tok\\nnext é"
    assert errors.printable(raw, keep_newlines=True).endswith("\\x7f\tok\nnext é")
