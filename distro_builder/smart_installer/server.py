"""`distro-builder serve`: the Smart Installer over HTTP(S).

The server is the standard library's ThreadingHTTPServer (a thread per connection, HTTP/1.0, a
listen backlog of 1024): no dependency, and enough for hundreds of nodes that poll every few
seconds with short requests (benchmarks/installer.py measures 500 at once). Every request is
read with a size limit and a socket timeout; every error becomes a 4xx with a message (JSON for
/api, key='value' text for /agent), and an unexpected exception a 500 that is logged with its
traceback and never shows internals to the client.
"""

from __future__ import annotations

import hashlib
import logging
import re
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from distro_builder.config.roles import load_roles
from distro_builder.errors import DistroBuilderError
from distro_builder.smart_installer import agentapi, api
from distro_builder.smart_installer.agentapi import error_body
from distro_builder.smart_installer.db import Database
from distro_builder.smart_installer.disc import open_disc
from distro_builder.smart_installer.errors import BadRequest, InstallerError, TooLarge
from distro_builder.smart_installer.http import Request, Response, Route
from distro_builder.smart_installer.netboot import Netboot
from distro_builder.smart_installer.store import Store

log = logging.getLogger(__name__)

SOCKET_TIMEOUT = 30
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    ("Cache-Control", "no-store"),
)


class App:
    """Routes a Request to its handler; turns errors into responses."""

    def __init__(self, store: Store, web_dir: Path, netboot: Netboot | None = None) -> None:
        self.store = store
        self.netboot = netboot
        self.routes: list[Route] = (
            (netboot.routes() if netboot else [])
            + agentapi.routes(store)
            + api.routes(store, web_dir)
        )

    def limit(self, path: str) -> int:
        return agentapi.MAX_BODY if path.startswith("/agent/") else api.MAX_BODY

    def handle(self, req: Request) -> Response:
        try:
            methods = []
            for r in self.routes:
                m = r.pattern.fullmatch(req.path)
                if m is None:
                    continue
                if r.method != req.method:
                    methods.append(r.method)
                    continue
                req.params = m.groupdict()
                return r.handler(req)
            if methods:
                resp = self.error(req.path, 405, f"{req.method} is not allowed here", None)
                resp.headers.append(("Allow", ", ".join(sorted(set(methods)))))
                return resp
            return self.error(req.path, 404, f"no such path {req.path[:80]!r}", None)
        except InstallerError as e:
            return self.error(req.path, e.status, str(e), e.hint)
        except DistroBuilderError as e:  # a ConfigError from the shared rules: the input's fault
            return self.error(req.path, 400, str(e), e.hint)
        except Exception:
            log.exception("internal error on %s %s", req.method, redact(_printable(req.path)))
            return self.error(req.path, 500, "internal error (see the service's log)", None)

    @staticmethod
    def error(path: str, status: int, message: str, hint: str | None) -> Response:
        if path.startswith("/agent/"):
            return Response.text(error_body(message, hint), status)
        body: dict[str, Any] = {"error": message}
        if hint:
            body["hint"] = hint
        return Response.json(body, status)


# Control characters (ESC, CR, NUL...) of a request line as \xNN: raw, they would drive the
# terminal or forge log lines.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def _printable(text: str) -> str:
    return text.translate(_CONTROL)


def redact(text: str) -> str:
    """A request line without the boot token of a network-install URL."""
    return _BOOT_TOKEN_RE.sub(r"\1********", text)


_BOOT_TOKEN_RE = re.compile(r"(/nb/\d+/)[^/\s]+")


class _Handler(BaseHTTPRequestHandler):
    server_version = "StackOpsInstaller"
    sys_version = ""
    timeout = SOCKET_TIMEOUT
    app: App  # set on the subclass made by make_server
    tls = False  # set by make_server: session cookies then get `Secure`
    # Errors found while parsing the request line get a status line too (no HTTP/0.9 replies).
    default_request_version = "HTTP/1.0"

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own errors (bad request line, headers too long) in our format."""
        self.close_connection = True
        text = message or explain or "bad request"
        path = (self.path or "/") if hasattr(self, "path") else "/"
        self._send(self.app.error(path.split("?", 1)[0], code, text, None))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s %s", self.address_string(), redact(_printable(format % args)))

    def _run(self) -> None:
        path = self.path.split("?", 1)[0]
        body = b""
        try:
            if self.command in ("POST", "PUT"):
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    raise BadRequest("chunked bodies are not accepted: send Content-Length")
                raw = self.headers.get("Content-Length")
                if raw is None or not raw.strip().isdigit():
                    self._send(self.app.error(path, 411, "a Content-Length header is needed", None))
                    return
                length = int(raw)
                if length > self.app.limit(path):
                    self.close_connection = True
                    raise TooLarge(f"the body is {length} bytes; at most {self.app.limit(path)}")
                body = self.rfile.read(length)
                if len(body) != length:
                    raise BadRequest("the body is shorter than its Content-Length")
            req = Request.build(
                self.command, self.path, dict(self.headers.items()), body, self.client_address[0]
            )
        except InstallerError as e:
            self._send(self.app.error(path, e.status, str(e), e.hint))
            return
        self._send(self.app.handle(req))

    def _send(self, resp: Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(resp.length))
        for name, value in (*_SECURITY_HEADERS, *resp.headers):
            if self.tls and name.lower() == "set-cookie" and "secure" not in value.lower():
                value += "; Secure"  # never sent back over plain http
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" or resp.status >= 400:
            self.wfile.write(resp.body)
            if resp.file:
                path, offset, length = resp.file
                with open(path, "rb") as f:  # socket.sendfile: os.sendfile, or send under TLS
                    self.connection.sendfile(f, offset, length)
            if resp.tail:
                self.wfile.write(resp.tail)

    # OPTIONS, TRACE, PATCH: known methods no route takes: 405 with Allow (the stdlib says 501).
    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = do_PATCH = _run


class InstallerServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (closed, reset, timed out, failed TLS) is no error of ours:
        one debug line, not the stdlib's traceback on stderr for every disconnect."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
            log.debug("%s: connection lost: %s", client_address[0], exc)
            return
        log.exception("unexpected error serving %s", client_address[0])


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise BadRequest(
            f"--listen {listen!r} is not ADDR:PORT", hint="like 0.0.0.0:8080 or 127.0.0.1:0"
        )
    return host.strip("[]") or "0.0.0.0", int(port)


# Lucid's wget 1.12 on OpenSSL 0.9.8 speaks TLS 1.0 at most, with RSA-key-exchange AES/3DES
# ciphers: what --legacy-tls lets in (and nothing older than TLS 1.0).
LEGACY_CIPHERS = "DEFAULT:AES128-SHA:AES256-SHA:DES-CBC3-SHA:@SECLEVEL=0"


def tls_context(cert: Path, key: Path, *, legacy: bool = False) -> tuple[ssl.SSLContext, str]:
    """The server's TLS context and its certificate's SHA-256 fingerprint (AA:BB:...).
    TLS 1.2 or newer, unless `legacy` (lucid nodes): TLS 1.0 and its ciphers too."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers(LEGACY_CIPHERS)
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
        der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    except (OSError, ssl.SSLError, ValueError) as e:
        raise BadRequest(
            f"cannot use the TLS certificate {cert} / key {key}: {e}",
            hint="give a PEM certificate and its PEM private key",
        ) from e
    digest = hashlib.sha256(der).hexdigest().upper()
    return ctx, ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def make_server(
    db_url: str | None,
    listen: str,
    data_dir: Path,
    *,
    tls: tuple[Path, Path] | None = None,
    legacy_tls: bool = False,
    disc: Path | None = None,
) -> tuple[InstallerServer, Store, str | None]:
    """A bound server (not yet serving), its store, and the TLS fingerprint when TLS is on.
    With `disc`, the disc's archive, netboot installer and per-node boot (smart_installer/
    netboot.py) are served too."""
    host, port = parse_listen(listen)
    roleset = load_roles(data_dir)
    served = open_disc(disc, data_dir, roleset) if disc else None
    db = Database(db_url)
    store = Store(db, roleset)
    netboot = Netboot(store, served, data_dir) if served else None
    handler = type(
        "Handler",
        (_Handler,),
        {
            "app": App(store, data_dir / "smart_installer" / "web", netboot),
            "tls": tls is not None,
        },
    )
    try:
        server = InstallerServer((host, port), handler)
    except OSError as e:
        db.close()
        raise BadRequest(
            f"cannot listen on {listen}: {e.strerror}", hint="pick another --listen ADDR:PORT"
        ) from e
    fingerprint = None
    if tls:
        ctx, fingerprint = tls_context(*tls, legacy=legacy_tls)
        # The handshake happens in the connection's thread (first read), not in accept().
        server.socket = ctx.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    return server, store, fingerprint


def serve_forever(server: InstallerServer) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, finish, close the database."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        server.server_close()
        store: Store = server.RequestHandlerClass.app.store  # type: ignore[attr-defined]
        store.db.close()
