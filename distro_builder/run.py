"""The one place that starts processes: argv lists, never shell=True, raises on failure.

Also owns `shutil.which` (`find_tool`/`require_tool`) and the map from tool to Debian package.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Union

from distro_builder.errors import ToolError

log = logging.getLogger(__name__)

StrPath = Union[str, "os.PathLike[str]"]

# Which Debian 12 package provides a tool (for hints).
TOOL_PACKAGES: Mapping[str, str] = {
    "xorriso": "xorriso",
    "isoinfo": "genisoimage",
    "genisoimage": "genisoimage",
    "isohybrid": "syslinux-utils",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "debconf-set-selections": "debconf",
    "dpkg-deb": "dpkg",
    "gpg": "gnupg",
    "gpgv": "gpgv",
    "cpio": "cpio",
    "busybox": "busybox",
    "shellcheck": "shellcheck",
    "openssl": "openssl",
}


def _package_hint(tool: str) -> str:
    pkg = TOOL_PACKAGES.get(tool)
    if pkg:
        return f"install it: apt-get install {pkg}"
    return f"install '{tool}' and make sure it is on PATH"


def find_tool(name: str) -> str | None:
    """Return the path of `name` on PATH, or None."""
    return shutil.which(name)


def require_tool(name: str, *, reason: str) -> str:
    """Return the path of `name` or raise ToolError saying why it is needed."""
    path = shutil.which(name)
    if path is None:
        raise ToolError(f"'{name}' is needed to {reason}", hint=_package_hint(name))
    return path


def run(
    argv: Sequence[StrPath],
    *,
    check: bool = True,
    capture: bool = False,
    binary: bool = False,
    input: str | bytes | None = None,
    cwd: StrPath | None = None,
    env: Mapping[str, str] | None = None,
    unset: Sequence[str] = (),
    timeout: float | None = None,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """Run argv; with check=True a non-zero exit raises ToolError with the stderr tail.

    capture=True returns stdout (text, or bytes with binary=True); stderr is always captured.
    `env` is added to this process's environment; the variables named in `unset` are removed.
    """
    cmd = [os.fspath(a) for a in argv]
    log.debug("+ %s", shlex.join(cmd))
    full_env = {**os.environ, "LC_ALL": "C.UTF-8", **(env or {})}
    for name in unset:
        full_env.pop(name, None)
    try:
        proc = subprocess.run(
            cmd,
            input=input,
            cwd=cwd,
            env=full_env,
            timeout=timeout,
            text=not binary,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError as e:
        raise ToolError(
            f"'{cmd[0]}' not found", hint=_package_hint(Path(cmd[0]).name), argv=cmd
        ) from e
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"'{cmd[0]}' did not finish within {timeout:g} s", argv=cmd) from e
    if check and proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        tail = "\n".join(err.strip().splitlines()[-20:])
        raise ToolError(
            f"'{cmd[0]}' failed with exit code {proc.returncode}"
            + (f": {tail.splitlines()[-1]}" if tail else ""),
            argv=cmd,
            returncode=proc.returncode,
            stderr_tail=tail,
            hint="run again with --debug to see the full command",
        )
    return proc
