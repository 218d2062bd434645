"""The installer's database: SQLite (the embedded default) or PostgreSQL, one code path.

A thin layer over two DB-API drivers (stdlib sqlite3, psycopg 3): SQL is written once, portable,
with `?` placeholders (rewritten to `%s` for psycopg) and `{serial}` for an auto-increment key.
Rows come back as dicts. The schema is a list of numbered migrations recorded in
`schema_migrations`; opening a database applies the missing ones in one transaction (under a lock:
BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), so a restart or a second process never
half-applies one. This module is the only importer of sqlite3 and psycopg.

Concurrency: SQLite has one connection guarded by a lock (SQLite serialises writers anyway; WAL
lets readers of other processes go on). PostgreSQL has a pool of connections.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from distro_builder.smart_installer.errors import Conflict, DatabaseError, StorageFull

log = logging.getLogger(__name__)

Row = dict[str, Any]

# Numbered migrations: (version, name, statements). Never edit a released one; append.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "initial schema",
        (
            """CREATE TABLE admins (
                id {serial},
                username TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                created_at BIGINT NOT NULL)""",
            """CREATE TABLE sessions (
                token_hash TEXT PRIMARY KEY,
                admin_id INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL)""",
            """CREATE TABLE deployments (
                id {serial},
                name TEXT NOT NULL UNIQUE,
                architecture TEXT NOT NULL,
                enrol_token_hash TEXT NOT NULL UNIQUE,
                params TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL)""",
            """CREATE TABLE nodes (
                id {serial},
                deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
                token_hash TEXT NOT NULL UNIQUE,
                mac TEXT NOT NULL,
                hostname TEXT NOT NULL,
                inventory TEXT NOT NULL,
                roles TEXT,
                answers TEXT NOT NULL,
                notes TEXT NOT NULL,
                state TEXT NOT NULL,
                step TEXT NOT NULL,
                registered_at BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                UNIQUE (deployment_id, mac))""",
            """CREATE TABLE events (
                id {serial},
                node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                at BIGINT NOT NULL,
                kind TEXT NOT NULL,
                line TEXT NOT NULL)""",
            "CREATE INDEX events_node ON events (node_id, id)",
        ),
    ),
    (
        2,
        "when a node fetched its answers; nodes by deployment",
        (
            "ALTER TABLE nodes ADD COLUMN fetched_at BIGINT",
            "CREATE INDEX nodes_deployment ON nodes (deployment_id, id)",
        ),
    ),
    (
        3,
        "network install: a node's boot token; what an unknown machine booting gets",
        (
            "ALTER TABLE nodes ADD COLUMN boot_token_hash TEXT",
            "ALTER TABLE deployments ADD COLUMN netboot_unknown TEXT NOT NULL DEFAULT 'menu'",
        ),
    ),
    (
        4,
        "a known MAC registering again without its node token waits for the admin's approval",
        (
            "ALTER TABLE nodes ADD COLUMN pending_token_hash TEXT",
            "ALTER TABLE nodes ADD COLUMN pending_inventory TEXT",
            "ALTER TABLE nodes ADD COLUMN pending_at BIGINT",
        ),
    ),
    (
        5,
        "failed logins in the database: every worker process and host shares the lockout",
        (
            """CREATE TABLE login_failures (
                id {serial},
                key TEXT NOT NULL,
                at BIGINT NOT NULL)""",
            "CREATE INDEX login_failures_key ON login_failures (key, at)",
            "CREATE INDEX login_failures_at ON login_failures (at)",
        ),
    ),
    (
        6,
        "network install: machines refused discovery (over its bounds), the admin's one line",
        (
            "ALTER TABLE deployments ADD COLUMN discovery_refused INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE deployments ADD COLUMN discovery_refused_at BIGINT",
            "ALTER TABLE deployments ADD COLUMN discovery_refused_source TEXT",
        ),
    ),
    (
        7,
        "node actions (retry, reinstall), the failing step and its log tail; the cloud's nova.zip",
        (
            "ALTER TABLE nodes ADD COLUMN retry_at BIGINT",
            "ALTER TABLE nodes ADD COLUMN failed_step TEXT",
            "ALTER TABLE nodes ADD COLUMN failure_log TEXT",
            # nova.zip (base64: one portable TEXT type on SQLite and PostgreSQL); it holds the
            # cloud admin's credentials: only the admin's session reads it (api.py).
            "ALTER TABLE deployments ADD COLUMN credentials TEXT",
            "ALTER TABLE deployments ADD COLUMN credentials_at BIGINT",
            "ALTER TABLE deployments ADD COLUMN credentials_node INTEGER",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_SERIAL = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgresql": "BIGSERIAL PRIMARY KEY"}
_PG_LOCK_KEY = 0x5374_6B4F  # "StkO": the advisory lock that serialises migrations


def default_url() -> str:
    """SQLite under $XDG_DATA_HOME/distro-builder/ (default ~/.local/share/distro-builder/)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'distro-builder' / 'installer.sqlite'}"


def now_ms() -> int:
    return int(time.time() * 1000)


def _redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


class Tx:
    """One transaction: execute() and the row helpers."""

    def __init__(self, cursor: Any, dialect: str) -> None:
        self._cur = cursor
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Tx:
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        try:
            self._cur.execute(sql, tuple(params))
        except (sqlite3.IntegrityError, _pg_integrity_error()) as e:
            raise Conflict(f"conflicts with an existing record ({_first_line(e)})") from e
        return self

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.execute(sql, params)
        row = self._cur.fetchone()
        return None if row is None else dict(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.execute(sql, params)
        return [dict(r) for r in self._cur.fetchall()]

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _pg_integrity_error() -> type[BaseException]:
    try:
        import psycopg
    except ImportError:  # PostgreSQL support not installed: nothing to catch
        return sqlite3.IntegrityError
    return psycopg.IntegrityError


MIN_FREE_BYTES = 256 * 1024  # less free space under a SQLite file: /healthz says "full"


@contextlib.contextmanager
def _storage_errors(path: Path) -> Iterator[None]:
    """SQLite's full / read-only / I/O errors as the service's answers, with the reason
    (sqlite3 result codes: https://www.sqlite.org/rescode.html; the extended code's low byte
    is the primary one)."""
    try:
        yield
    except sqlite3.OperationalError as e:
        code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF
        where = path.parent
        if code == sqlite3.SQLITE_FULL:
            raise StorageFull(
                f"the disk under the database ({where}) is full: nothing was saved"
            ) from e
        if code == sqlite3.SQLITE_READONLY:
            raise DatabaseError(
                f"the database ({where}) is read-only: nothing was saved",
                hint="remount its disk read-write (or check the file's permissions)",
            ) from e
        if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN):
            raise DatabaseError(
                f"the database ({where}) cannot be written: {_first_line(e)}"
            ) from e
        raise


class Database:
    """An open database (SQLite file or PostgreSQL URL), migrated to SCHEMA_VERSION."""

    def __init__(self, url: str | None = None, *, pool_size: int = 16, migrate: bool = True):
        self.url = url or default_url()
        self.shown_url = _redact_url(self.url)
        if self.url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
            self._pool_size = pool_size
            self._opened = 0
            self._pool_lock = threading.Lock()
            self._connect_pg().close()  # fail now, with a clear message, not on a request
        elif self.url.startswith("sqlite:"):
            self.dialect = "sqlite"
            self.path = Path(self.url.removeprefix("sqlite://").removeprefix("sqlite:"))
            if not self.url.removeprefix("sqlite:").strip("/") or any(
                not c.isprintable() for c in self.url
            ):
                raise DatabaseError(
                    f"{self.url!r} names no SQLite file",
                    hint="use sqlite:///path/to/file.sqlite or postgresql://user:pass@host/db",
                )
            self._lock = threading.RLock()
            self._conn = self._connect_sqlite()
        else:
            # A bare path used to become a SQLite file of that name ("not a url"): refused.
            raise DatabaseError(
                f"unsupported database URL {self.shown_url!r}",
                hint="use sqlite:///path/to/file.sqlite or postgresql://user:pass@host/db",
            )
        if migrate:
            self.migrate()

    # --- connections --------------------------------------------------------------------------

    def _connect_sqlite(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # The database holds the deployments' secrets: owner-only from the start.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
        except (OSError, sqlite3.Error) as e:
            raise DatabaseError(
                f"cannot open the SQLite database {self.path}: {e}",
                hint="check the path and its permissions, or pass --db URL",
            ) from e
        return conn

    def _connect_pg(self) -> Any:
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError as e:
            raise DatabaseError(
                "PostgreSQL support needs the psycopg package",
                hint="pip install 'psycopg[binary]'",
            ) from e
        try:
            return psycopg.connect(self.url, row_factory=dict_row, connect_timeout=10)
        except psycopg.Error as e:
            raise DatabaseError(
                f"cannot connect to {self.shown_url}: {_first_line(e)}",
                hint="check that PostgreSQL runs and the URL's user, password and database",
            ) from e

    @contextlib.contextmanager
    def _pg_conn(self) -> Iterator[Any]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            with self._pool_lock:
                grow = self._opened < self._pool_size
                if grow:
                    self._opened += 1
            if grow:
                try:
                    conn = self._connect_pg()
                except BaseException:
                    with self._pool_lock:
                        self._opened -= 1
                    raise
            else:
                try:
                    conn = self._pool.get(timeout=30)
                except queue.Empty as e:
                    raise DatabaseError("the database is busy (no free connection)") from e
        broken = False
        try:
            yield conn
        except BaseException:
            broken = bool(conn.closed)
            raise
        finally:
            if broken:
                with self._pool_lock:
                    self._opened -= 1
            else:
                self._pool.put(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A transaction: committed when the block ends, rolled back when it raises.

        Raises: StorageFull (507) when the disk under a SQLite database is full, DatabaseError
        (503) when it is read-only or failing: the reason, not a 500."""
        if self.dialect == "sqlite":
            with self._lock, _storage_errors(self.path):
                cur = self._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(cur, "sqlite")
                except BaseException:
                    self._conn.rollback()
                    raise
                else:
                    self._conn.commit()
                finally:
                    cur.close()
        else:
            with self._pg_conn() as conn:
                try:
                    with conn.transaction(), conn.cursor() as cur:
                        yield Tx(cur, "postgresql")
                except _pg_operational_error() as e:
                    raise DatabaseError(f"database error: {_first_line(e)}") from e

    def storage_problem(self) -> str | None:
        """What keeps the database from writing now (/healthz), from the file system under a
        SQLite file (statvfs: read-only, full); None when nothing is seen (PostgreSQL: its
        server's business, its errors come as 503 on the request)."""
        if self.dialect != "sqlite":
            return None
        try:
            st = os.statvfs(self.path.parent)
        except OSError as e:
            return f"the database's folder cannot be read: {e.strerror}"
        if st.f_flag & os.ST_RDONLY:
            return f"the disk under the database ({self.path.parent}) is read-only"
        if st.f_bavail * st.f_frsize < MIN_FREE_BYTES:
            return f"the disk under the database ({self.path.parent}) is full"
        return None

    def close(self) -> None:
        if self.dialect == "sqlite":
            with self._lock:
                self._conn.close()
        else:
            while True:
                try:
                    self._pool.get_nowait().close()
                except queue.Empty:
                    break

    # --- schema -------------------------------------------------------------------------------

    def version(self) -> int:
        with self.transaction() as tx:
            if not self._has_migrations_table(tx):
                return 0
            return int(tx.value("SELECT MAX(version) AS v FROM schema_migrations") or 0)

    def _has_migrations_table(self, tx: Tx) -> bool:
        if self.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
        else:
            sql = "SELECT to_regclass('schema_migrations') IS NOT NULL AS present"
            return bool(tx.value(sql))
        return tx.one(sql) is not None

    def migrate(self, upto: int | None = None) -> list[int]:
        """Apply the missing migrations (up to `upto`); the versions applied."""
        target = SCHEMA_VERSION if upto is None else upto
        applied: list[int] = []
        with self.transaction() as tx:
            if self.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(?)", (_PG_LOCK_KEY,))
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            )
            current = int(tx.value("SELECT MAX(version) AS v FROM schema_migrations") or 0)
            if current > SCHEMA_VERSION:
                raise DatabaseError(
                    f"{self.shown_url} has schema version {current}; this distro-builder knows "
                    f"up to {SCHEMA_VERSION}",
                    hint="use the distro-builder version that created it, or a newer one",
                )
            for version, name, statements in MIGRATIONS:
                if current < version <= target:
                    for sql in statements:
                        tx.execute(sql.format(serial=_SERIAL[self.dialect]))
                    tx.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?,?,?)",
                        (version, name, now_ms()),
                    )
                    applied.append(version)
        for version in applied:
            log.info("database %s: applied migration %d", self.shown_url, version)
        return applied


def _pg_operational_error() -> type[BaseException]:
    try:
        import psycopg
    except ImportError:
        return sqlite3.OperationalError
    return psycopg.OperationalError
