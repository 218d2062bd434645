"""Issue 14.8: lucid nodes reach an HTTPS Smart Installer only with --legacy-tls.

Lucid's wget 1.12 on OpenSSL 0.9.8 speaks TLS 1.0 at most (AES/3DES with RSA key exchange).
`openssl s_client -tls1` with such a cipher stands in for it: refused by the default context
(TLS 1.2+), accepted by the legacy one. A modern client still gets TLS 1.2 or 1.3 from both.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from distro_builder.smart_installer.server import tls_context
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

LUCID_CLIENT = ["-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0"]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require_tool_or_skip("openssl")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=installer", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "cert.pem", d / "key.pem"


def _serve(ctx: ssl.SSLContext) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"HTTP/1.0 200 OK\r\n\r\nok\n")
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=run, daemon=True).start()
    try:
        yield port
    finally:
        listener.close()


def _s_client(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
        input="", capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize("legacy", [False, True], ids=["default", "legacy-tls"])
def test_lucid_handshake_only_in_legacy_mode(cert: tuple[Path, Path], legacy: bool) -> None:
    ctx, fingerprint = tls_context(*cert, legacy=legacy)
    assert len(fingerprint.split(":")) == 32
    for port in _serve(ctx):
        lucid = _s_client(port, *LUCID_CLIENT)
        if legacy:
            assert "Protocol  : TLSv1\n" in lucid.stdout, lucid.stdout + lucid.stderr
            assert "Cipher    : AES128-SHA" in lucid.stdout
        else:
            assert lucid.returncode != 0 and "Cipher    : AES128-SHA" not in lucid.stdout
            assert "protocol version" in lucid.stderr  # the server's alert: TLS 1.0 refused
        modern = _s_client(port)  # a current client still gets a current protocol
        out = modern.stdout
        assert "New, TLSv1.3," in out or "New, TLSv1.2," in out, out + modern.stderr


def test_the_cli_needs_tls_for_legacy_tls() -> None:
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", "serve", "--legacy-tls", "--listen",
         "127.0.0.1:0"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "--legacy-tls needs --tls-cert and --tls-key" in proc.stderr
