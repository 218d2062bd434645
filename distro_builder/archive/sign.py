"""OpenPGP for archives: check a repository's Release with gpgv, sign the disc's Release with gpg.

Verification: `Release` + detached `Release.gpg` (what lucid-era archives have) or a clearsigned
`InRelease`, against a keyring file given by the user (binary or ASCII-armored). A bad or missing
signature raises; there is no "warn and go on" mode once a keyring is configured.

Signing: `gpg --armor --detach-sign` as debian-cd's add_secured does. Only RSA (and DSA) keys are
accepted, because lucid's gpg 1.4 and apt 0.7 cannot read ECC signatures. Every gpg call runs
through run.run(); `homedir` selects a GNUPGHOME (None: the user's).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from distro_builder.errors import ArchiveError, ConfigError, ToolError
from distro_builder.run import require_tool, run

log = logging.getLogger(__name__)

# OpenPGP public-key algorithm ids (RFC 4880 9.1, RFC 6637): what lucid's gpg 1.4 can verify.
_LUCID_ALGORITHMS = {1: "RSA", 2: "RSA", 3: "RSA", 17: "DSA"}
_ECC = {18: "ECDH", 19: "ECDSA", 22: "EdDSA"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    fingerprint: str
    algorithm: str
    bits: int
    uid: str


def _gpg_env(homedir: Path | None) -> dict[str, str]:
    return {"GNUPGHOME": str(homedir)} if homedir is not None else {}


def _binary_keyring(keyring: Path, tmp: Path) -> Path:
    """gpgv wants a binary keyring: dearmor an .asc one."""
    try:
        head = keyring.read_bytes()[:64]
    except OSError as e:
        raise ConfigError(
            f"keyring {keyring}: cannot read: {e.strerror}", hint="check the path"
        ) from e
    if not head.lstrip().startswith(b"-----BEGIN PGP"):
        return keyring.resolve()
    gpg = require_tool("gpg", reason="read an ASCII-armored keyring")
    out = tmp / "keyring.gpg"
    run([gpg, "--batch", "--yes", "--dearmor", "-o", out, keyring], env=_gpg_env(tmp))
    return out


def verify_detached(data: bytes, signature: bytes | None, keyring: Path, *, name: str) -> str:
    """Check `signature` (Release.gpg) over `data` (Release) with gpgv; returns the signer's
    fingerprint. Raises ArchiveError when the signature is missing, bad or from an unknown key."""
    if signature is None:
        raise ArchiveError(
            f"{name}: no signature (Release.gpg) but a keyring was given",
            hint="the repository must be signed, or drop the keyring to use it unauthenticated",
        )
    return _gpgv(
        keyring, name, {"Release.gpg": signature, "Release": data}, ["Release.gpg", "Release"]
    )


def verify_clearsigned(data: bytes, keyring: Path, *, name: str) -> tuple[bytes, str]:
    """Check a clearsigned InRelease; returns (the signed text, the signer's fingerprint)."""
    with tempfile.TemporaryDirectory(prefix="distro-builder-gpgv.") as tmp:
        fpr = _gpgv(
            keyring, name, {"InRelease": data}, ["--output", "InRelease.out", "InRelease"], tmp
        )
        return (Path(tmp) / "InRelease.out").read_bytes(), fpr


def _gpgv(
    keyring: Path,
    name: str,
    files: dict[str, bytes],
    args: list[str],
    tmpdir: str | None = None,
) -> str:
    gpgv = require_tool("gpgv", reason="check the repository's Release signature")
    with tempfile.TemporaryDirectory(prefix="distro-builder-gpgv.") as own:
        tmp = Path(tmpdir or own)
        for fname, content in files.items():
            (tmp / fname).write_bytes(content)
        ring = _binary_keyring(Path(keyring), tmp)
        proc = run(
            [gpgv, "--status-fd", "1", "--keyring", ring, *args],
            check=False,
            capture=True,
            cwd=tmp,
            env={"GNUPGHOME": str(tmp)},
        )
    status = proc.stdout or ""
    valid = [ln.split()[2] for ln in status.splitlines() if ln.startswith("[GNUPG:] VALIDSIG ")]
    if proc.returncode != 0 or not valid:
        if "[GNUPG:] BADSIG" in status:
            why = "BAD signature (the file was changed after signing)"
        elif "[GNUPG:] NO_PUBKEY" in status or "[GNUPG:] ERRSIG" in status:
            why = "signed by a key that is not in the keyring"
        elif "[GNUPG:] NODATA" in status:
            why = "the signature file holds no signature"
        else:
            why = (proc.stderr or "").strip().splitlines()[-1:] or ["gpgv failed"]
            why = why[0]
        raise ArchiveError(
            f"{name}: signature check failed: {why}",
            hint=f"keyring {keyring}; refusing to use an unauthenticated index",
        )
    return valid[0]


def signing_key(key_id: str, *, homedir: Path | None = None) -> SigningKey:
    """The secret key `key_id` from gpg; ConfigError if absent or not usable on lucid."""
    gpg = require_tool("gpg", reason="sign the disc's Release")
    proc = run(
        [gpg, "--batch", "--with-colons", "--fixed-list-mode", "--list-secret-keys", key_id],
        check=False,
        capture=True,
        env=_gpg_env(homedir),
    )
    if proc.returncode != 0:
        raise ConfigError(
            f"no secret key {key_id!r} in gpg's keyring",
            hint="gpg --list-secret-keys shows the keys; create one with "
            "gpg --quick-gen-key 'StackOps CD <cd@example.org>' rsa3072 sign",
        )
    fpr = uid = ""
    algo = bits = 0
    for line in proc.stdout.splitlines():
        f = line.split(":")
        if f[0] == "sec" and not algo:
            bits, algo = int(f[2] or 0), int(f[3] or 0)
        elif f[0] == "fpr" and not fpr:
            fpr = f[9]
        elif f[0] == "uid" and not uid:
            uid = f[9]
    if algo not in _LUCID_ALGORITHMS:
        raise ConfigError(
            f"key {key_id} is {_ECC.get(algo, f'algorithm {algo}')}: lucid's gpg 1.4 and apt 0.7 "
            "read no ECC signatures",
            hint="use an RSA key: gpg --quick-gen-key 'StackOps CD <cd@example.org>' rsa3072 sign",
        )
    return SigningKey(fpr, _LUCID_ALGORITHMS[algo], bits, uid)


def sign_detached(path: Path, key_id: str, *, homedir: Path | None = None) -> Path:
    """Write `<path>.gpg`, an armored detached signature of `path`; returns it."""
    key = signing_key(key_id, homedir=homedir)
    gpg = require_tool("gpg", reason="sign the disc's Release")
    out = path.with_name(path.name + ".gpg")
    tmp = out.with_name(out.name + ".tmp")
    try:
        run(
            [gpg, "--batch", "--yes", "--no-tty", "--armor", "--digest-algo", "SHA256",
             "--local-user", key.fingerprint, "--detach-sign", "-o", tmp, path],
            env=_gpg_env(homedir),
        )  # fmt: skip
    except ToolError as e:
        raise ToolError(
            f"gpg could not sign {path.name} with {key_id}: {e}",
            hint="a passphrase-protected key needs gpg-agent with a pinentry, or an unprotected "
            "signing subkey",
        ) from e
    os.replace(tmp, out)
    return out


def export_public_key(key_id: str, *, homedir: Path | None = None) -> bytes:
    """The binary OpenPGP public key of `key_id` (to put into a keyring package)."""
    gpg = require_tool("gpg", reason="export the signing key")
    proc = run(
        [gpg, "--batch", "--export", "--export-options", "export-minimal", key_id],
        capture=True,
        binary=True,
        env=_gpg_env(homedir),
    )
    if not proc.stdout:
        raise ConfigError(f"gpg exported nothing for key {key_id!r}", hint="check the key id")
    return bytes(proc.stdout)
