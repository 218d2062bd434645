"""Secrets of the installer: admin password hashes, session and node tokens.

Admin passwords are stored as scrypt hashes (`scrypt$n$r$p$salt$hash`, hex). Tokens are 32 random
bytes (url-safe base64); only their SHA-256 is stored, so a copy of the database does not let
anyone act as a node, a disc or an admin session. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 8


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
