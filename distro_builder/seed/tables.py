"""The roles as tables for the shell side: what the installer and the node agent read.

Both tables are rendered from roles/ at build time, so the installer (d-i/late.sh), the node
agent and the Python side read one truth:

  questions  (questions/questions.table.j2)  one line per question, its type and constraints;
             shipped in the initrd for late.sh and in stackops-agent for the agent
  roles.table (agent/roles.table.j2)          one line per role: kind, includes, steps, services,
                                               description, final steps
  architectures.table (agent/...j2)           the reference architectures' multi-role nodes,
                                              offered by the agent's role selector

The shell validators themselves are questions/validate.sh, shipped beside both.
"""

from __future__ import annotations

from pathlib import Path

from distro_builder.errors import ConfigError
from distro_builder.model import Question, Role, RoleSet
from distro_builder.seed.render import render_template

VALIDATORS = ("questions", "validate.sh")


def debconf_type(q: Question) -> str:
    """The debconf type a question is asked (and preseeded) with."""
    return {"password": "password", "choice": "select"}.get(q.type, "string")


def _question_view(roleset: RoleSet, q: Question) -> dict[str, object]:
    return {
        "key": q.key,
        "type": q.type,
        "prompt": q.prompt,
        "description": q.description,
        "default": q.default,
        "choices": q.choices,
        "minimum": q.minimum,
        "maximum": q.maximum,
        "confirm": q.confirm,
        "skip_with": q.skip_with,
        "fallback": q.fallback,
        "optional": q.optional,
        "per_node": q.per_node,
        "made_on_node": q.made_on_node,
        "asked_by": roleset.asked_by(q.key),
        "debconf_type": debconf_type(q),
    }


def question_views(roleset: RoleSet) -> list[dict[str, object]]:
    """Every question as the templates see it, in asking order."""
    return [_question_view(roleset, q) for q in roleset.questions]


def render_question_table(data_dir: Path, roleset: RoleSet) -> str:
    """The questions table (questions/questions.table.j2)."""
    return render_template(
        data_dir / "questions", "questions.table.j2", questions=question_views(roleset)
    )


def _role_view(roleset: RoleSet, role: Role) -> dict[str, object]:
    shared = {r.name for r in roleset.shared}
    return {
        "name": role.name,
        "abstract": role.abstract,
        "shared_includes": [n for n in role.includes if n in shared],
        "steps": role.steps,
        "services": role.services,
        "description": role.description,
        "final_steps": role.final_steps,
    }


def render_roles_table(data_dir: Path, roleset: RoleSet) -> str:
    """The roles table (agent/roles.table.j2): shared roles first, then the node roles."""
    roles = [_role_view(roleset, r) for r in (*roleset.shared, *roleset.roles)]
    return render_template(data_dir / "agent", "roles.table.j2", roles=roles)


def render_architectures_table(data_dir: Path, roleset: RoleSet) -> str:
    """The reference architectures' multi-role nodes (agent/architectures.table.j2)."""
    return render_template(
        data_dir / "agent", "architectures.table.j2", architectures=roleset.architectures
    )


def validators(data_dir: Path) -> bytes:
    """questions/validate.sh, the shell validators the installer and the agent share."""
    path = data_dir.joinpath(*VALIDATORS)
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot read the shell validators: {e.strerror}", hint="check --data-dir"
        ) from e
