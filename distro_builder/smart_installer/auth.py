"""Secrets of the installer: admin password hashes, session and node tokens.

Admin passwords are stored as scrypt hashes (`scrypt$n$r$p$salt$hash`, hex). Tokens are 32 random
bytes (url-safe base64); only their SHA-256 is stored, so a copy of the database does not let
anyone act as a node, a disc or an admin session. Comparisons are constant-time.

Logins are guarded (LoginGuard): each scrypt holds 16 MiB, so the checks run on MAX_HASHING
worker threads and at most MAX_WAITING logins are queued or hashing (64 concurrent wrong logins
took the server from 80 to 734 MiB): a bound on this process's memory, so it is per process.
After MAX_FAILURES failed logins in FAILURE_WINDOW seconds from one client address, or for one
user name, further attempts are refused before any hashing (429 with Retry-After) until enough
failures leave the window. The failures live in the database (lockout.FailedLogins), shared by
every worker process and host.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from distro_builder.smart_installer.errors import TooManyRequests

_N, _R, _P = 2**14, 8, 1  # 128 * r * n bytes = 16 MiB of memory per hash
MIN_PASSWORD = 8
T = TypeVar("T")
MAX_HASHING = 2  # scrypt hashes at once (logins): 32 MiB at most
MAX_WAITING = 32  # logins hashing or queued for it; more are refused at once
MAX_FAILURES = 10  # failed logins per client address, and per user name, in FAILURE_WINDOW
FAILURE_WINDOW = 300.0  # seconds


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(digest) // 2,
        )  # fmt: skip
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mask(secret: str) -> str:
    """How a secret is shown back: never in full."""
    return "********" if secret else ""


class Ledger(Protocol):
    """Where failed logins are kept (lockout.FailedLogins: the database)."""

    def recent(self, keys: Iterable[str], since_ms: int) -> dict[str, list[int]]: ...
    def record(self, keys: Iterable[str], at_ms: int, *, forget_before_ms: int) -> None: ...
    def clear(self, keys: Iterable[str]) -> None: ...


class LoginGuard:
    """Bounds the memory and the rate of password checks (see the module's docstring)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        max_hashing: int = MAX_HASHING,
        max_waiting: int = MAX_WAITING,
        max_failures: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.time,  # wall clock: shared by processes and hosts
    ) -> None:
        self._ledger = ledger
        self._pool = ThreadPoolExecutor(max_hashing, thread_name_prefix="login-hash")
        self._max_waiting = max_waiting
        self._max_failures, self._window, self._clock = max_failures, window, clock
        self._lock = threading.Lock()
        self._waiting = 0

    @staticmethod
    def keys(username: str, client: str) -> tuple[str, ...]:
        return (f"user:{username[:64]}",) + ((f"client:{client}",) if client else ())

    def check(self, keys: Iterable[str]) -> None:
        """TooManyRequests when a key has MAX_FAILURES failures in the window (no hashing)."""
        now = self._clock()
        recent = self._ledger.recent(keys, int((now - self._window) * 1000))
        for key, times in recent.items():
            if len(times) >= self._max_failures:
                # unlocked when all but max_failures - 1 of them have left the window
                leaves = times[len(times) - self._max_failures] / 1000 + self._window
                retry = max(1, int(leaves - now + 0.999))
                who = "this user" if key.startswith("user:") else "this address"
                raise TooManyRequests(
                    f"too many failed logins for {who}: locked for {retry} s",
                    retry_after=retry,
                    hint=f"wait {retry} seconds; an admin can set a new password with "
                    "`distro-builder installer admin create USER --reset`",
                )

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock()
        self._ledger.record(
            keys, int(now * 1000), forget_before_ms=int((now - self._window) * 1000)
        )

    def succeeded(self, keys: Iterable[str]) -> None:
        self._ledger.clear(keys)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on one of MAX_HASHING worker threads (only they ever hold scrypt's memory:
        glibc keeps a freed 16 MiB block in the arena of the thread that hashed, so hashing on
        every connection's own thread grew the server by 16 MiB per thread); TooManyRequests
        when MAX_WAITING calls are already queued or running."""
        with self._lock:
            if self._waiting >= self._max_waiting:
                raise TooManyRequests("too many logins at once", retry_after=1)
            self._waiting += 1
        try:
            return self._pool.submit(fn, *args).result()
        finally:
            with self._lock:
                self._waiting -= 1
