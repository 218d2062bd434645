"""`debconf-set-selections --checkonly` with the real tool, whatever the host's debconf is doing."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from distro_builder.errors import ConfigError
from distro_builder.seed import check
from distro_builder.seed.check import check_preseed, check_preseeds
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

HOST_DB = Path("/var/cache/debconf")


@pytest.fixture
def host_debconf_locked() -> Iterator[list[Path]]:
    """The host's debconf databases locked as a running apt or debconf-communicate holds them."""
    require_tool_or_skip("debconf-set-selections")
    files = [HOST_DB / n for n in ("config.dat", "templates.dat", "passwords.dat")]
    files = [f for f in files if f.exists()]
    if not files or not os.access(files[0], os.W_OK):
        pytest.skip("needs a writable host debconf database to lock (run as root)")
    held = []
    try:
        for f in files:
            fh = open(f, "rb+")  # noqa: SIM115 - held until the test ends
            held.append(fh)
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # debconf's own lock (File.pm)
            except BlockingIOError:
                pytest.skip(f"{f} is locked by another process already")
        yield files
    finally:
        for fh in held:
            fh.close()


def _digests(files: list[Path]) -> dict[Path, tuple[str, float]]:
    return {f: (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime) for f in files}


def test_check_does_not_need_the_host_debconf_lock(host_debconf_locked: list[Path]) -> None:
    before = _digests(host_debconf_locked)
    check_preseed(
        "d-i a/b string x\nd-i passwd/user-password password secret\n"
        "mysql-server-5.1 mysql-server/root_password password r00t\n",
        "ok.seed",
    )
    with pytest.raises(ConfigError, match="bad.seed.*parse error on line 2"):
        check_preseed("d-i a/b string x\nbad\n", "bad.seed")
    with pytest.raises(ConfigError, match="warn.seed.*Unknown type bogus"):
        check_preseed("d-i a/b bogus x\n", "warn.seed")
    assert _digests(host_debconf_locked) == before  # the host's database was not touched


def test_check_ignores_debconf_database_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEBCONF_DB_OVERRIDE & co. would stack another database (maybe a locked one) on top."""
    require_tool_or_skip("debconf-set-selections")
    locked = tmp_path / "other.dat"
    locked.write_text("")
    with open(locked, "rb+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        monkeypatch.setenv("DEBCONF_DB_OVERRIDE", f"File{{{locked}}}")
        check_preseed("d-i a/b string x\n", "ok.seed")


def test_preseeds_checked_in_one_run_and_a_bad_one_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """One debconf-set-selections for every preseed; a rejection names the preseed and its own
    line; a flag line (`seen`) may need an earlier text's question, so those go one by one."""
    require_tool_or_skip("debconf-set-selections")
    runs: list[str] = []
    real_run = check.run

    def counting_run(argv: list[str], **kwargs: object) -> object:
        runs.append(str(kwargs.get("input")))
        return real_run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(check, "run", counting_run)
    good = [(f"d-i a/q{i} string {i}\n", f"s{i}.seed") for i in range(5)]
    check_preseeds(good)
    assert len(runs) == 1
    runs.clear()
    # A backslash-continued last line does not swallow the next text's first line.
    check_preseeds([("d-i a/b string x \\\n", "cont.seed"), ("d-i a/c string y\n", "next.seed")])
    assert len(runs) == 1
    runs.clear()
    bad = [*good[:2], ("d-i a/b string x\nd-i a/c bogus y\n", "bad.seed"), *good[2:]]
    with pytest.raises(ConfigError, match=r"^bad.seed: .*Unknown type bogus, skipping line 2"):
        check_preseeds(bad)
    assert len(runs) == 1 + 3  # together, then alone up to the bad one
    runs.clear()
    with pytest.raises(ConfigError, match=r"^s9.seed: .*Cannot find a question for d-i/other"):
        check_preseeds([good[0], ("d-i d-i/other seen true\n", "s9.seed")])
    assert len(runs) == 2  # never together
