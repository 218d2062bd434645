"""jinja2 over the data folders: the only importer of jinja2.

StrictUndefined everywhere: a template that names a value nobody passed fails the build instead of
putting an empty string on the disc.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from distro_builder.errors import ConfigError


@functools.lru_cache(maxsize=16)
def _environment(template_dir: str) -> jinja2.Environment:
    """One Environment per folder, so a template is compiled once per process, not per render
    (a build renders the preseed template once per boot entry); jinja2 still reloads a
    template whose file changed (auto_reload)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_template(template_dir: Path, name: str, **values: Any) -> str:
    """Render `template_dir/name` with `values`; raises ConfigError naming the template."""
    env = _environment(str(template_dir))
    try:
        return env.get_template(name).render(**values)
    except jinja2.TemplateNotFound as e:
        raise ConfigError(
            f"{template_dir / name}: template not found", hint="check --data-dir"
        ) from e
    except jinja2.TemplateError as e:
        where = f"{template_dir / name}" + (f":{e.lineno}" if getattr(e, "lineno", None) else "")
        raise ConfigError(
            f"{where}: {e.message or e}", hint="fix the template or pass the value"
        ) from e
