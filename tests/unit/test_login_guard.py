"""auth.LoginGuard: failures per client and per user lock out with a Retry-After, kept in the
database (lockout.FailedLogins: shared by every worker process); hashing is bounded (a fake
clock, no server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from distro_builder.smart_installer.auth import LoginGuard
from distro_builder.smart_installer.db import Database
from distro_builder.smart_installer.errors import TooManyRequests
from distro_builder.smart_installer.lockout import FailedLogins


@pytest.fixture
def db(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'installer.sqlite'}")
    yield db
    db.close()


def test_lockout_per_user_and_per_client_then_the_window_passes(db: Database) -> None:
    now = [1000.0]
    guard = LoginGuard(FailedLogins(db), max_failures=3, window=300, clock=lambda: now[0])
    for i in range(3):
        guard.check(guard.keys("admin", f"10.0.0.{i}"))
        guard.failed(guard.keys("admin", f"10.0.0.{i}"))
        now[0] += 10
    with pytest.raises(TooManyRequests, match="for this user") as e:
        guard.check(guard.keys("admin", "10.0.0.99"))  # another address: the user is locked
    assert e.value.retry_after == 270 and e.value.status == 429 and e.value.hint
    guard.check(guard.keys("other", "10.0.0.99"))  # another user from a fresh address: fine
    for user in ("a", "b", "c"):
        guard.failed(guard.keys(user, "192.0.2.7"))
    with pytest.raises(TooManyRequests, match="for this address"):
        guard.check(guard.keys("d", "192.0.2.7"))
    now[0] += 281
    guard.check(guard.keys("admin", "10.0.0.99"))  # the oldest failures left the window
    guard.failed(guard.keys("x", "198.51.100.1"))
    guard.succeeded(guard.keys("x", "198.51.100.1"))
    assert not FailedLogins(db).recent(guard.keys("x", "198.51.100.1"), 0)
    now[0] += 301  # a new failure forgets the ones that left the window
    guard.failed(guard.keys("y", "198.51.100.2"))
    with db.transaction() as tx:
        assert tx.value("SELECT COUNT(*) FROM login_failures") == 2


def test_the_lockout_is_shared_by_every_worker_process(tmp_path: Path) -> None:
    """N gunicorn workers (or hosts) over one database: failures counted in one lock the user
    out in the others (in memory, each worker allowed max_failures: N times the attempts)."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    workers = [Database(url), Database(url), Database(url)]
    try:
        guards = [LoginGuard(FailedLogins(w), max_failures=4) for w in workers]
        for i in range(4):
            g = guards[i % 3]
            g.check(g.keys("admin", f"203.0.113.{i}"))
            g.failed(g.keys("admin", f"203.0.113.{i}"))
        for g in guards:
            with pytest.raises(TooManyRequests, match="for this user"):
                g.check(g.keys("admin", "203.0.113.99"))
        guards[2].succeeded(guards[2].keys("admin", "203.0.113.99"))
        guards[0].check(guards[0].keys("admin", "203.0.113.98"))  # cleared for every worker
    finally:
        for w in workers:
            w.close()


def test_hashing_is_bounded_and_the_queue_too(db: Database) -> None:
    guard = LoginGuard(FailedLogins(db), max_hashing=2, max_waiting=3)
    running, peak, release = [0], [0], threading.Event()
    lock = threading.Lock()

    def work() -> bool:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
        return True

    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(_try(guard, work))) for _ in range(3)]
    for t in threads:
        t.start()
    while guard._waiting < 3:
        pass
    assert isinstance(_try(guard, work), TooManyRequests)  # the 4th is refused at once
    deadline = time.monotonic() + 10  # both workers busy before release (a loaded machine)
    while peak[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join()
    assert results == [True, True, True] and peak[0] == 2


def _try(guard: LoginGuard, fn) -> object:
    try:
        return guard.run(fn)
    except TooManyRequests as e:
        return e
