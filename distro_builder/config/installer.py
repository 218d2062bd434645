"""The Smart Installer's deployment.yaml: written from the service's records, checked by the very
loader `build --deployment` uses (config/deployment.py), so a deployment the service accepts is
one the build accepts, with the same rules and messages.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from distro_builder.config.deployment import load_deployment
from distro_builder.errors import ConfigError
from distro_builder.model import Deployment, RoleSet

NodeSpec = tuple[str, Sequence[str], dict[str, str]]  # (name, roles, the node's own answers)


def render_deployment(
    architecture: str | None,
    answers: dict[str, str],
    nodes: Sequence[NodeSpec] = (),
    *,
    header: str = "",
) -> str:
    """deployment.yaml text (the format config/deployment.py reads)."""
    doc: dict[str, object] = {}
    if architecture:
        doc["architecture"] = architecture
    doc["answers"] = dict(answers)
    if nodes:
        doc["nodes"] = [
            {"name": name, "roles": list(roles), **({"answers": dict(a)} if a else {})}
            for name, roles, a in nodes
        ]
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
    lines = "".join(f"# {h}\n" if h else "#\n" for h in header.splitlines())
    return lines + body


def _no_system_password(password: str, salt: str) -> str:
    raise ConfigError("the installer's deployments carry no system password")


def check_deployment(text: str, roleset: RoleSet, *, label: str = "deployment") -> Deployment:
    """Load `text` as a deployment file; a ConfigError names `label`, not a temp file."""
    with tempfile.TemporaryDirectory(prefix="distro-builder-") as tmp:
        path = Path(tmp) / "deployment.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_deployment(path, roleset, _no_system_password)
        except ConfigError as e:
            raise ConfigError(str(e).replace(str(path), label), hint=e.hint) from e
