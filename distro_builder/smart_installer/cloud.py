"""The cloud the deployment made: its endpoints, the controller's health-check verdict and the
credentials zip (nova.zip) its agent uploads. Pure functions over what the store keeps; no I/O.

nova.zip holds the cloud admin's EC2 secret key (novarc, Nova 2011.2 nova/auth/manager.py
get_credentials): it is checked to be a small zip with a novarc, kept in the database, and
read back only over the admin's session (api.py); no event or log line holds its content.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from distro_builder.smart_installer.errors import BadRequest

MAX_CREDENTIALS = 256 * 1024  # a Cactus nova.zip is about 6 KB (novarc, three PEM files)
# Nova 2011.2 defaults (nova/flags.py:298-300 ec2_port, ec2_scheme, ec2_path; :266 s3_port;
# :264 glance_port); the controller's nova.conf (roles/base/nova.conf) changes none of them.
EC2_PORT, EC2_PATH, S3_PORT, GLANCE_PORT = 8773, "/services/Cloud", 3333, 9292
# agent/stackops-check's last line, sent by the controller's check step as STACKOPS-CHECK
# progress lines (roles/controller/steps.sh so_step_check).
_PASSED_RE = re.compile(r"STACKOPS-CHECK stackops-check: passed (\d+) checks")
_FAILED_RE = re.compile(r"STACKOPS-CHECK stackops-check: FAILED (\d+) of (\d+) checks: (.*)")
_CHECK_LINE_RE = re.compile(r"STACKOPS-CHECK (ok|FAIL) +(\S+): (.*)")


def check_zip(data: bytes) -> None:
    """Refuse what is not a credentials zip (with a novarc), or is too big.

    Raises: BadRequest."""
    if len(data) > MAX_CREDENTIALS:
        raise BadRequest(f"the credentials zip is over {MAX_CREDENTIALS} bytes")
    if not data.startswith(b"PK"):
        raise BadRequest("the credentials are not a zip file (nova-manage project zipfile)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            if "novarc" not in names:
                raise BadRequest("the credentials zip has no novarc")
            if z.testzip() is not None:
                raise BadRequest("the credentials zip is damaged")
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise BadRequest(f"the credentials zip cannot be read: {e}") from e


def endpoints(address: str) -> dict[str, str]:
    """The cloud's API endpoints on its controller."""
    return {
        "ec2": f"http://{address}:{EC2_PORT}{EC2_PATH}",
        "s3": f"http://{address}:{S3_PORT}",
        "glance": f"http://{address}:{GLANCE_PORT}",
    }


def verdict(lines: list[tuple[float, str]]) -> dict[str, Any]:
    """The last stackops-check run's verdict from the controller's progress lines (time, line):
    "passed" | "failed" | "none" (not run yet), with that run's check lines."""
    checks: list[dict[str, str]] = []
    result: dict[str, Any] = {"verdict": "none", "summary": "", "checks": [], "at": None}
    for at, line in lines:
        if m := _CHECK_LINE_RE.fullmatch(line):
            checks.append({"status": m[1].lower(), "name": m[2], "detail": m[3]})
        elif _PASSED_RE.fullmatch(line) or _FAILED_RE.fullmatch(line):
            passed = _PASSED_RE.fullmatch(line) is not None
            result = {
                "verdict": "passed" if passed else "failed",
                "summary": line.removeprefix("STACKOPS-CHECK "),
                "checks": checks,
                "at": at,
            }
            checks = []
    return result
