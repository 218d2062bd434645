"""The failed-login ledger, in the database: every worker process and every host over one
database shares it, so N workers (or N hosts behind a load balancer) do not give an attacker N
times the attempts. auth.LoginGuard decides; this module only stores.

One row per failed login per key (`user:<name>`, `client:<address>`), with its wall-clock time
in milliseconds (hosts share the database's notion of time only through these values: keep their
clocks in NTP sync). Rows older than the window are deleted whenever a failure is written; a key
that reaches the limit is refused before any hashing, so it gains no further rows, and the rows
of a storm from many keys are bounded by the hashing rate (auth.MAX_HASHING per process).
"""

from __future__ import annotations

from collections.abc import Iterable

from distro_builder.smart_installer.db import Database


class FailedLogins:
    """Failed logins by key, in `login_failures` (migration 5)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def recent(self, keys: Iterable[str], since_ms: int) -> dict[str, list[int]]:
        """Each key's failure times after `since_ms`, oldest first (keys without any: absent)."""
        keys = list(keys)
        if not keys:
            return {}
        marks = ", ".join("?" for _ in keys)
        with self.db.transaction() as tx:
            rows = tx.all(
                f"SELECT key, at FROM login_failures WHERE key IN ({marks}) AND at > ?"
                " ORDER BY at, id",
                (*keys, since_ms),
            )
        found: dict[str, list[int]] = {}
        for r in rows:
            found.setdefault(r["key"], []).append(int(r["at"]))
        return found

    def record(self, keys: Iterable[str], at_ms: int, *, forget_before_ms: int) -> None:
        """A failure for each key at `at_ms`; failures older than `forget_before_ms` go."""
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM login_failures WHERE at <= ?", (forget_before_ms,))
            for key in keys:
                tx.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", (key, at_ms))

    def clear(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            marks = ", ".join("?" for _ in keys)
            with self.db.transaction() as tx:
                tx.execute(f"DELETE FROM login_failures WHERE key IN ({marks})", keys)
