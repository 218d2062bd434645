"""SIGTERM and Ctrl-C (SIGINT) unwind like an error: no ISO, .part file, staging folder or
SHA256SUMS left, even while the written ISO is being verified (real signals, real CLI)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# The CLI with one step slowed down (test-only), so the signal lands in it every time.
SLOW_STEP = """
import sys, time
import distro_builder.build as build
target = sys.argv.pop(1)
original = getattr(build, target)
def slow(*args, **kwargs):
    print("SLOW-STEP " + target, file=sys.stderr, flush=True)
    # Short sleeps: CPython runs a signal's handler between bytecodes, so a signal that lands
    # after this thread's last check and before one long sleep(60) begins is handled when the
    # sleep ends. The window is milliseconds wide when another thread (the base's hash) holds
    # the GIL as print() returns: seen 60 s in 2 runs of 6 with one sleep(60)
    for _ in range(600):
        time.sleep(0.1)
    return original(*args, **kwargs)
setattr(build, target, slow)
from distro_builder.cli import main
main(prog_name="distro-builder")
"""


def _run_until(step: str, signum: int, tmp_path: Path, demo_base: Path) -> tuple[int, str]:
    out_dir, tmp = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_STEP, step, "build", "--base", str(demo_base),
         "-o", str(out_dir / "o.iso"), "--no-packages"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)},
        # a shell's background job starts with SIGINT ignored, and Python keeps it so
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("SLOW-STEP"):
            break
        assert time.monotonic() < deadline, "".join(seen)
    else:
        pytest.fail("the build ended before the slowed step:\n" + "".join(seen))
    # the staging folder and the unverified ISO exist now, beside the output
    assert any(p.name.startswith("distro-builder-") for p in out_dir.iterdir())
    proc.send_signal(signum)
    rest = proc.stderr.read()
    code = proc.wait(timeout=60)
    assert sorted(p.name for p in out_dir.iterdir()) == [], "left behind"
    assert list(tmp.iterdir()) == [], "left in TMPDIR"
    return code, "".join(seen) + rest


@pytest.mark.parametrize(
    ("signum", "code", "says"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")],
    ids=["SIGTERM", "SIGINT"],
)
def test_signal_during_verification_leaves_nothing(
    signum: int, code: int, says: str, tmp_path: Path, demo_base: Path
) -> None:
    got, stderr = _run_until("_verify_output", signum, tmp_path, demo_base)
    assert got == code, stderr
    assert says in stderr and "Traceback" not in stderr


def test_sigterm_while_staging_leaves_nothing(tmp_path: Path, demo_base: Path) -> None:
    got, stderr = _run_until("_stage_installer_files", signal.SIGTERM, tmp_path, demo_base)
    assert got == 143 and "Traceback" not in stderr, stderr


# Issue 20 #17: SIGKILL (no unwinding at all) at each step of putting a build in place. The CLI
# with os.replace paused before the Nth rename onto a chosen name (test-only), then killed.
PAUSE_BEFORE_RENAME = """
import os, sys, time
name, nth = sys.argv.pop(1), int(sys.argv.pop(1))
original, seen = os.replace, []
def replace(src, dst, *a, **kw):
    if os.path.basename(os.fspath(dst)) == name:
        seen.append(dst)
        if len(seen) == nth:
            print("PAUSED before rename onto " + name, file=sys.stderr, flush=True)
            time.sleep(60)
    return original(src, dst, *a, **kw)
os.replace = replace
from distro_builder.cli import main
main(prog_name="distro-builder")
"""


def _build(out: Path, demo_base: Path, *extra: str) -> None:
    argv = ["build", "--base", str(demo_base), "-o", str(out / "o.iso"), "--no-packages"]
    r = subprocess.run([sys.executable, "-m", "distro_builder", *argv, *extra],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr


def _state(out: Path) -> tuple[str | None, str | None, bytes | None]:
    """(sha256 of o.iso, its SHA256SUMS digest, the manifest beside it)."""
    import hashlib

    iso, sums, manifest = out / "o.iso", out / "SHA256SUMS", out / "o.iso.build.json"
    line = None
    if sums.exists():
        for row in sums.read_text().splitlines():
            digest, _, name = row.partition("  ")
            line = digest if name == "o.iso" else line
    sha = hashlib.sha256(iso.read_bytes()).hexdigest() if iso.exists() else None
    return sha, line, manifest.read_bytes() if manifest.exists() else None


@pytest.fixture(scope="module")
def old_build(tmp_path_factory: pytest.TempPathFactory, demo_base: Path) -> Path:
    out = tmp_path_factory.mktemp("old")
    _build(out, demo_base)
    return out


@pytest.mark.parametrize(
    ("name", "nth"),
    [("SHA256SUMS", 1), ("o.iso", 1), ("o.iso.build.json", 1), ("SHA256SUMS", 2)],
    ids=["before-first-sums", "before-iso", "before-manifest", "before-last-sums"],
)
def test_sigkill_while_putting_in_place_never_leaves_a_wrong_sums_line(
    name: str, nth: int, tmp_path: Path, demo_base: Path, old_build: Path
) -> None:
    """SHA256SUMS has a line for o.iso only while that line is the ISO's digest and the manifest
    beside it is that build's; the killed build's staging folder is removed by the next build
    (only folders of dead builds: a live one's and a folder that is not a build's stay)."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(old_build, out)
    old = _state(out)
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSE_BEFORE_RENAME, name, str(nth), "build", "--base",
         str(demo_base), "-o", str(out / "o.iso"), "--no-packages", "--timeout", "7"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("PAUSED"):
            break
    else:
        pytest.fail("the build never renamed onto " + name + ":\n" + "".join(seen))
    proc.kill()
    proc.wait(timeout=60)
    sha, line, manifest = _state(out)
    if line is not None:
        assert line == sha, "SHA256SUMS describes another ISO than o.iso"
        assert (sha, manifest) == old[::2] or manifest != old[2], "a manifest of another build"
    else:  # not committed: the ISO is listed nowhere, and no old manifest claims it
        assert manifest is None or manifest != old[2], "the old build's manifest is still there"
    stale = [p for p in out.iterdir() if p.name.startswith("distro-builder-")]
    assert stale, "the killed build's staging folder (the next build removes it)"
    # a live build's folder (this pytest process) and one that is no build's stay
    stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    live = out / f"distro-builder-{os.getpid()}-{stat[19]}-live"
    live.mkdir()
    (out / "distro-builder-unmarked").mkdir()
    _build(out, demo_base)
    left = sorted(p.name for p in out.iterdir() if p.name.startswith("distro-builder-"))
    assert left == sorted(["distro-builder-unmarked", live.name])
    sha, line, manifest = _state(out)
    assert line == sha and manifest is not None


def test_the_base_hash_does_not_outlive_a_failed_build(tmp_path: Path) -> None:
    """`build` starts `openssl dgst` on the base before anything else; a build that fails after
    that waits for it, so no process holds the base (or the working directory) once it ends."""
    base = tmp_path / "big-base.iso"
    with base.open("wb") as f:  # sparse: openssl reads 512 MiB of zeros, 1-2 s here
        f.truncate(512 << 20)
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", "build", "--base", str(base),
         "-o", str(tmp_path / "o.iso"), "--no-packages", "--installer-wait", "5",
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and "--installer-wait needs --installer-url" in proc.stderr
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            argv = cmdline.read_bytes().split(b"\0")
            if b"dgst" in argv and os.fsencode(base) in argv:
                left.append(cmdline.parent.name)
    assert left == [], f"openssl still hashing the base: pid {left}"
