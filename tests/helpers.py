"""Test helpers: the missing-tool policy.

Locally a test whose external tool is missing is skipped; in CI (DISTRO_BUILDER_CI=1, set by
.ci/run) it fails, so a skipped test is never counted as passing.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("DISTRO_BUILDER_CI") == "1"


def require_tool_or_skip(*names: str) -> None:
    """Skip (locally) or fail (in CI) when one of the tools is not on PATH."""
    missing = [n for n in names if shutil.which(n) is None]
    if not missing:
        return
    msg = f"missing tool(s): {', '.join(missing)}"
    if IN_CI:
        pytest.fail(msg + " (CI must install every tool the tests need)")
    pytest.skip(msg)
