"""SHA-512 crypt(3) hashes ($6$) for the installer's passwd/user-password-crypted.

Lucid's glibc (2.11) reads $6$ hashes. The hash is made by `openssl passwd -6` (the password on
stdin, never on the command line). The salt is derived from what identifies the account, not
from the password, so a build is reproducible without the salt leaking anything about it.
"""

from __future__ import annotations

import base64
import hashlib
import re

from distro_builder.errors import ToolError
from distro_builder.run import require_tool, run

_SALT_RE = re.compile(r"^[A-Za-z0-9./]{1,16}$")
_HASH_RE = re.compile(r"^\$6\$[A-Za-z0-9./]{1,16}\$[A-Za-z0-9./]{86}$")


def derive_salt(source: str) -> str:
    """A 16-character crypt salt that depends only on `source` (e.g. the user name)."""
    digest = hashlib.sha256(b"distro-builder crypt salt\0" + source.encode()).digest()
    return base64.b64encode(digest, altchars=b"./").decode()[:16]


def sha512_crypt(password: str, salt: str) -> str:
    """crypt(3) SHA-512 of `password` with `salt`; ToolError when openssl fails."""
    if not _SALT_RE.fullmatch(salt):
        raise ValueError(f"invalid crypt salt {salt!r}")
    require_tool("openssl", reason="hash the login password (SHA-512 crypt)")
    proc = run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], capture=True, input=password)
    out = proc.stdout.strip()
    if not _HASH_RE.fullmatch(out):
        raise ToolError(
            "openssl passwd -6 printed no SHA-512 crypt hash",
            hint="openssl 1.1.1 or later is needed (Debian 12 has 3.0)",
        )
    return out


def hash_login_password(password: str, salt_source: str) -> str:
    """The hash the deployment's login password becomes (reproducible per account)."""
    return sha512_crypt(password, derive_salt(salt_source))
