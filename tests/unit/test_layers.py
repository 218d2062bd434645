"""Architecture as a test: each third-party library has one owner module; no upward imports."""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "distro_builder"

# library -> modules allowed to import it (globs relative to distro_builder/)
OWNERS = {
    "pycdlib": {"media/iso.py"},
    "yaml": {"config/*"},
    "click": {"cli/*"},
    "jinja2": {"seed/render.py"},
    "debian": {"archive/debs.py", "archive/index.py", "archive/resolve.py", "archive/publish.py"},
    "subprocess": {"run.py"},
    "pexpect": {"qa/console.py"},
    "sqlite3": {"smart_installer/db.py"},
    "psycopg": {"smart_installer/db.py"},
    "gunicorn": {"smart_installer/server.py"},
    "urllib3": {"archive/fetch.py"},
}
TOP = {
    "distro_builder.cli",
    "distro_builder.remaster",
    "distro_builder.demo",
    "distro_builder.describe",
    "distro_builder.build",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules() -> dict[str, set[str]]:
    return {p.relative_to(PKG).as_posix(): _imports(p) for p in PKG.rglob("*.py")}


def test_each_library_has_one_owner() -> None:
    bad = []
    for rel, imports in _modules().items():
        for lib, owners in OWNERS.items():
            if any(i == lib or i.startswith(lib + ".") for i in imports) and not any(
                fnmatch.fnmatch(rel, o) for o in owners
            ):
                bad.append(f"{rel} imports {lib} (owner: {', '.join(sorted(owners))})")
    assert not bad, "\n".join(bad)


def test_foundation_modules_import_nothing_from_the_package() -> None:
    mods = _modules()
    allowed: dict[str, set[str]] = {
        "errors.py": set(),
        "model.py": set(),
        "imagemodel.py": set(),
        "buffers.py": set(),
        "log.py": set(),
        "run.py": {"distro_builder.errors"},
    }
    for rel, ok in allowed.items():
        own = {i for i in mods[rel] if i.startswith("distro_builder")}
        assert own <= ok, f"{rel} imports {own - ok}"


def test_library_modules_do_not_import_the_commands() -> None:
    for rel, imports in _modules().items():
        if rel.startswith(("media/", "archive/", "seed/", "qa/")):
            assert not (imports & TOP), f"{rel} imports a top-level command module"


def test_the_engine_starts_without_python_debian() -> None:
    """The remaster engine reads no .deb and no Packages index: python-debian (30-40 ms of
    start-up with its changelog parser and email.utils) stays out of its imports."""
    import subprocess
    import sys

    code = (
        "import sys, distro_builder.remaster; "
        "print(sorted(m for m in sys.modules if m == 'debian' or m.startswith('debian.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
