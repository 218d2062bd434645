"""The credentials zip's novarc is safe to source under dash (issue 22 finding 12).

The novarc is Nova 2011.2's own: its real nova/auth/novarc.template, read from the release
tarball in ../shared/upstream, filled with Python's % exactly as nova/auth/manager.py:751-780
does, in a zip as get_credentials writes it (712-736). The agent's roles/controller/novarc.py
rewrites it; dash sources it and its ec2-upload-bundle alias runs a recorder standing in for
euca2ools' script (only its arguments matter). 0.3 s.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers import require_tool_or_skip
from tests.integration.realnova import UPSTREAM

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# the release trees as the real-Nova harness finds them (beside the checkout or a worktree)
NOVA_TARBALL = UPSTREAM / "nova-2011.2.tar.gz"
REWRITER = ROOT / "roles" / "controller" / "novarc.py"
HOSTILE = "a\"b$(touch PWNED1)c'd`touch PWNED2`e\\f$HOME g;h ${x} 'i' \"\""


@functools.cache
def _template() -> str:
    tarball = Path(os.environ.get("NOVA_2011_2_TARBALL", NOVA_TARBALL))
    if not tarball.exists():
        pytest.fail(f"{tarball}: Nova 2011.2's release tarball is missing (../shared/upstream)")
    with tarfile.open(tarball) as tar:
        f = tar.extractfile("nova-2011.2/nova/auth/novarc.template")
        assert f is not None
        return f.read().decode()


def _credentials_zip(path: Path, secret: str) -> None:
    # nova/auth/manager.py:764-780 (__generate_rc) and 712-736 (get_credentials)
    rc = _template() % {
        "access": "admin",
        "project": "stackops",
        "secret": secret,
        "ec2": "http://10.0.0.1:8773/services/Cloud",
        "s3": "http://10.0.0.1:3333",
        "os": "http://10.0.0.1:8774/v1.0/",
        "user": "admin",
        "nova": "cacert.pem",
        "cert": "cert.pem",
        "key": "pk.pem",
    }
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("novarc", rc)
        z.writestr("pk.pem", "KEY")
        z.writestr("cert.pem", "CERT")
        z.writestr("cacert.pem", "CA")


def _source(tmp: Path, zip_path: Path) -> subprocess.CompletedProcess[str]:
    """Unzip as the admin would, source novarc under dash, print the secret, use the alias."""
    where = tmp / "creds"
    where.mkdir(exist_ok=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(where)
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    recorder = bin_dir / "ec2-upload-bundle"
    recorder.write_text('#!/bin/sh\nfor a in "$@"; do printf \'ARG<%s>\\n\' "$a"; done\n')
    recorder.chmod(0o755)
    script = ". ./novarc\nprintf 'SECRET<%s>\\n' \"$EC2_SECRET_KEY\"\nec2-upload-bundle\n"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": "/nonexistent"}
    return subprocess.run(
        ["dash", "-c", script], cwd=where, env=env, capture_output=True, text=True, timeout=30
    )


def test_nova_2011_2_novarc_is_not_safe_to_source(tmp_path: Path) -> None:
    """The defect itself: the real template with the hostile secret, as Nova writes it."""
    require_tool_or_skip("dash")
    z = tmp_path / "nova.zip"
    _credentials_zip(z, HOSTILE)
    proc = _source(tmp_path, z)
    assert f"SECRET<{HOSTILE}>" not in proc.stdout


def test_the_rewritten_novarc_sources_the_secret_intact(tmp_path: Path) -> None:
    require_tool_or_skip("dash")
    z = tmp_path / "nova.zip"
    _credentials_zip(z, HOSTILE)
    run = subprocess.run([sys.executable, str(REWRITER), str(z)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    proc = _source(tmp_path, z)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SECRET<{HOSTILE}>" in proc.stdout
    args = [ln[4:-1] for ln in proc.stdout.splitlines() if ln.startswith("ARG<")]
    assert args[args.index("-s") + 1] == HOSTILE, args
    assert args[args.index("-a") + 1] == "admin:stackops", args
    assert not list((tmp_path / "creds").glob("PWNED*")), "the secret ran as a command"
    with zipfile.ZipFile(z) as zz:
        assert sorted(zz.namelist()) == ["cacert.pem", "cert.pem", "novarc", "pk.pem"]
        assert zz.read("pk.pem") == b"KEY"
        first = zz.read("novarc")
    assert oct(z.stat().st_mode & 0o777) == "0o600"
    # again: nothing changes (the step may run twice after a power cut)
    subprocess.run([sys.executable, str(REWRITER), str(z)], check=True)
    with zipfile.ZipFile(z) as zz:
        assert zz.read("novarc") == first
