"""The Smart Installer as a WSGI application (PEP 3333): environ -> Request, Response -> WSGI.

Server-neutral glue between a WSGI server (gunicorn, see server.py) and the plain router
(server.App). It reads a request's body under the route's size limit (16 KiB for /agent, 64 KiB
for the rest: 411 without Content-Length, 400 for a chunked or short body, 413 beyond the limit),
adds the security headers, `Secure` on cookies under TLS, and streams files:

- A Response that is only a file range (the disc's files, straight from the ISO) goes out as
  wsgi.file_wrapper over that range: gunicorn sends it with os.sendfile on plain HTTP (its
  Response.sendfile starts at the file's current offset and sends Content-Length bytes), and in
  BLOCK reads under TLS, where the kernel cannot encrypt.
- A file range with bytes around it (the netboot initrd with build's layer appended) is a
  generator of BLOCK-sized reads: sendfile cannot add the tail inside one Content-Length.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import quote

from distro_builder.smart_installer.errors import (
    BadRequest,
    InstallerError,
    LengthRequired,
    RequestTimeout,
    TooLarge,
)
from distro_builder.smart_installer.http import Request, Response


class App(Protocol):
    """What the WSGI layer needs of the application (server.App implements it); a Protocol, so
    wsgi.py never imports server.py, which imports it."""

    def limit(self, path: str) -> int: ...

    def handle(self, req: Request) -> Response: ...

    def error(self, path: str, status: int, message: str, hint: str | None) -> Response: ...


log = logging.getLogger(__name__)

BLOCK = 256 * 1024  # bytes per read where a file cannot go out with sendfile
# Files sent at once by one worker process (each holds a thread for its whole transfer, and a
# client that reads nothing holds it until the response timeout): beyond, 503 + Retry-After,
# so server.THREADS - MAX_TRANSFERS threads stay for the API, the agents and /healthz.
MAX_TRANSFERS = 64
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    ("Cache-Control", "no-store"),
)
StartResponse = Callable[..., Any]


class FileRange:
    """`length` bytes of the file at `path` from `offset`, as a file object: fileno() and the
    current offset for sendfile, read() that stops at the range's end for everything else."""

    def __init__(
        self, path: str, offset: int, length: int, slot: threading.Semaphore | None = None
    ) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 (closed by close(): WSGI closes the iterable)
        self._f.seek(offset)
        self._end = offset + length
        self._slot = slot  # released on close: the transfer's place in MAX_TRANSFERS

    def fileno(self) -> int:
        return self._f.fileno()

    def read(self, size: int = -1) -> bytes:
        left = max(self._end - self._f.tell(), 0)
        return self._f.read(left if size < 0 else min(size, left))

    def seek(self, pos: int, whence: int = 0) -> int:  # socket.sendfile's fallback seeks
        return self._f.seek(pos, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()
        if self._slot is not None:
            self._slot.release()
            self._slot = None


def _chunks(body: bytes, f: FileRange, tail: bytes) -> Iterator[bytes]:
    """The body, the file range in BLOCK reads, the tail."""
    try:
        if body:
            yield body
        while block := f.read(BLOCK):
            yield block
        if tail:
            yield tail
    finally:
        f.close()


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers from the environ, by lower-case name (as Request keeps them)."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if key in environ:
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _target(environ: dict[str, Any]) -> str:
    """The request target as the client sent it: routes and the disc's path checks see the
    %-encoding (PATH_INFO is decoded). gunicorn keeps it in RAW_URI."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    qs = environ.get("QUERY_STRING", "")
    return quote(environ.get("PATH_INFO", "/") or "/") + (f"?{qs}" if qs else "")


class WsgiApp:
    """The WSGI callable over an App (server.App); `tls`: cookies get `Secure`."""

    def __init__(self, app: App, *, tls: bool) -> None:
        self.app = app
        self.tls = tls
        self.transfers = threading.Semaphore(MAX_TRANSFERS)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        target = _target(environ)
        path = target.split("?", 1)[0]
        try:
            body = self.read_body(environ, method, path)
            req = Request.build(
                method, target, _headers(environ), body, environ.get("REMOTE_ADDR", "")
            )
        except InstallerError as e:
            resp = self.app.error(path, e.status, str(e), e.hint)
        else:
            resp = self.app.handle(req)
        return self.respond(resp, path, environ, start_response)

    def read_body(self, environ: dict[str, Any], method: str, path: str) -> bytes:
        if method not in ("POST", "PUT"):
            return b""
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise BadRequest("chunked bodies are not accepted: send Content-Length")
        raw = environ.get("CONTENT_LENGTH")
        if raw is None or not raw.strip().isdigit():
            raise LengthRequired("a Content-Length header is needed")
        length, limit = int(raw), self.app.limit(path)
        if length > limit:
            raise TooLarge(f"the body is {length} bytes; at most {limit}")
        try:
            body = environ["wsgi.input"].read(length)
        except TimeoutError as e:
            raise RequestTimeout("the body stopped arriving") from e
        except OSError as e:  # the client went away, or a TLS error
            raise BadRequest(f"the body could not be read: {e}") from e
        if len(body) != length:
            raise BadRequest("the body is shorter than its Content-Length")
        return body

    def respond(
        self, resp: Response, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        if resp.file and resp.status == 200 and not (resp.body or resp.tail):
            resp.headers.append(("Accept-Ranges", "bytes"))
            resp = _ranged(resp, environ.get("HTTP_RANGE"), path, self.app)
        headers = [("Content-Type", resp.content_type), ("Content-Length", str(resp.length))]
        for name, value in (*SECURITY_HEADERS, *resp.headers):
            if self.tls and name.lower() == "set-cookie" and "secure" not in value.lower():
                value += "; Secure"  # never sent back over plain http
            headers.append((name, value))
        if environ["REQUEST_METHOD"] == "HEAD":  # the headers of the GET, no body
            start_response(status_line(resp.status), headers)
            return []
        if not resp.file:
            start_response(status_line(resp.status), headers)
            return [resp.body, resp.tail] if resp.tail else [resp.body]
        if not self.transfers.acquire(blocking=False):
            busy = self.app.error(
                path, 503, f"{MAX_TRANSFERS} downloads are under way: this one must wait",
                "retry in a few seconds (Retry-After)",
            )  # fmt: skip
            busy.headers.append(("Retry-After", "5"))
            return self.respond(busy, path, environ, start_response)
        try:
            f = FileRange(*resp.file, self.transfers)
        except OSError:  # the disc went away under the service: its fault, not the client's
            self.transfers.release()
            log.exception("cannot read %s", resp.file[0])
            error = self.app.error(path, 500, "internal error (see the service's log)", None)
            return self.respond(error, path, environ, start_response)
        start_response(status_line(resp.status), headers)
        if resp.body or resp.tail:
            return _chunks(resp.body, f, resp.tail)
        return environ["wsgi.file_wrapper"](f, BLOCK)  # type: ignore[no-any-return]


_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")


def _ranged(resp: Response, spec: str | None, path: str, app: App) -> Response:
    """A file Response cut to one byte range (RFC 9110 section 14): 206 with Content-Range, or
    416 when the range starts past the end. Several ranges, another unit or a malformed one:
    the whole file (the RFC lets a server ignore Range)."""
    m = _RANGE.fullmatch((spec or "").strip())
    if resp.file is None or m is None or not (m[1] or m[2]):
        return resp
    file, offset, size = resp.file
    if m[1]:
        first = int(m[1])
        last = min(int(m[2]), size - 1) if m[2] else size - 1
        if m[2] and int(m[2]) < first:
            return resp  # malformed: ignored
    else:  # the last N bytes
        first, last = max(size - int(m[2]), 0), size - 1
        if int(m[2]) == 0:
            first = size
    if first >= size:
        bad = app.error(path, 416, f"the range starts past the end ({size} bytes)", None)
        bad.headers.append(("Content-Range", f"bytes */{size}"))
        return bad
    return Response(
        206, b"", resp.content_type,
        [*resp.headers, ("Content-Range", f"bytes {first}-{last}/{size}")],
        (file, offset + first, last - first + 1),
    )  # fmt: skip


def status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"
