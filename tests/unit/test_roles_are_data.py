"""No role is written in code: the roles are the folders under roles/ (issue 10).

Python (distro_builder/) may not hold a role name as a string constant, and the shell that runs
in the installer and on nodes (the agent, its libraries, d-i's scripts, the Smart Installer
client) may not name a role outside comments. Role names in prose (docstrings, comments) are
fine; a role list, a `"compute" in roles` test or a `case compute)` is not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROLE_NAMES = sorted(
    p.parent.name
    for p in (ROOT / "roles").glob("*/role.yaml")
    if "\nabstract: true\n" not in p.read_text()  # shared roles (base, ...) are no node roles
)
SHELL_CODE = [
    ROOT / "agent" / "stackops-agent",
    *sorted((ROOT / "agent" / "lib").glob("*")),
    *sorted((ROOT / "d-i").glob("*.sh")),
    ROOT / "smart_installer" / "client" / "stackops-installer-client",
]
_WORD = "|".join(ROLE_NAMES)
_LIST_RE = re.compile(rf"\b({_WORD})\b\s*,\s*\b({_WORD})\b")


def test_the_roles_are_found() -> None:
    assert ROLE_NAMES == ["compute", "controller", "network", "volume"]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_no_role_name_in_python() -> None:
    found = []
    for path in sorted((ROOT / "distro_builder").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if id(node) in docs:
                continue
            text = node.value
            if (
                text in ROLE_NAMES
                or _LIST_RE.search(text)
                or re.search(rf"stackops-({_WORD})\b", text)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    assert not found, "\n".join(found)


def test_no_role_name_in_installer_or_agent_shell() -> None:
    found = []
    for path in SHELL_CODE:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
            code = re.sub(r"\s#\s.*$", "", code)  # a trailing comment
            if re.search(rf"\b({_WORD})\b", code):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_check_notices_a_role_list(tmp_path: Path) -> None:
    bad = "ROLES = ('controller', 'network')\nif 'compute' in x: pass\n"
    tree = ast.parse(bad)
    hits = [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in ROLE_NAMES
    ]
    assert hits == ["controller", "network", "compute"]
