"""`distro-builder serve`: the Smart Installer over HTTP(S), on gunicorn.

The HTTP side is gunicorn (https://gunicorn.org), not the standard library's http.server
(whose documentation says it is not for production): its strict HTTP/1.1 parser, a master process
that restarts a worker that dies or hangs, a graceful stop, and os.sendfile for files. App is the
plain router (Request -> Response); wsgi.py turns it into a WSGI application.

How it runs, and why:

- `workers` worker processes (`gthread`, default 1) with THREADS threads each. Every worker
  (and every host over the same PostgreSQL database) shares the login lockout, which lives in the
  database (lockout.py); the scrypt pool (auth.py) bounds each process's memory, so N workers
  hash N * MAX_HASHING passwords at once at most. On SQLite the workers share one writer (WAL,
  a 30 s busy timeout); on PostgreSQL they scale out. THREADS bounds the requests in flight: a
  thread is held while a request is read and answered, for a download the whole transfer
  (sendfile returns when the client has the file), while an idle keep-alive connection waits in
  the worker's poller without one. 96 (64 of them for downloads, wsgi.MAX_TRANSFERS) covers
  50 nodes fetching the mirror at once (benchmarks/mirror.py) with room for the agents' polls
  and the admin; more wait in the queue (WORKER_CONNECTIONS accepted, BACKLOG in the kernel).
  Each thread costs its stack (little of it touched).
- Slow clients, floods (issue 20): on plain HTTP a connection reaches a thread only once its
  request's head and body are in the socket's queue (_Worker's gate; until then it waits in the
  poller, holding no thread); one address holds at most MAX_CONNECTIONS_PER_ADDRESS
  connections; wsgi.MAX_TRANSFERS file transfers run at once, so THREADS - MAX_TRANSFERS threads
  stay for the API, the agents and /healthz.
- Slow clients: a request (TLS handshake, head and body) must be in within `request_timeout`
  seconds (30) of its first byte, however it trickles in: a watchdog thread closes the connection
  otherwise (gunicorn's gthread reads a started request with no time limit of its own, and its
  `timeout` only watches the worker's main loop). A response the client accepts nothing of for
  `request_timeout` seconds is cut (a socket timeout). A connection that sends nothing is closed
  after about KEEPALIVE + 5 s without holding a thread (gthread's own rule), an idle keep-alive
  one after KEEPALIVE s.
- The listening socket is bound here, before gunicorn starts (port 0 works and is reported; a
  port in use is a clear error, not gunicorn's retries), and handed over as fd://N. The database,
  the store and its threads are opened in the worker, after the fork; the master only checks
  the database opens (migrating it) and closes it. SIGTERM or SIGINT: the master stops
  accepting, the worker finishes its requests (GRACEFUL_TIMEOUT at most) and closes the
  database. TLS: gunicorn's ssl_context hook returns tls_context()'s context.
- gunicorn's own refusals (a malformed request line or header, a line too long, a transfer
  coding) come in our format (JSON for /api, key='value' text for /agent) and as 4xx: an unknown
  transfer coding is 400 here, not gunicorn's 501. The access log (with -v) and every gunicorn
  message are logged with control characters escaped and boot tokens masked.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import selectors
import socket
import ssl
import sys
import termios
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from gunicorn import glogging, util
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

from distro_builder.config.roles import load_roles
from distro_builder.errors import DistroBuilderError
from distro_builder.smart_installer import agentapi, api
from distro_builder.smart_installer.agentapi import error_body
from distro_builder.smart_installer.db import Database
from distro_builder.smart_installer.disc import ServedDisc, open_disc
from distro_builder.smart_installer.errors import BadRequest, InstallerError
from distro_builder.smart_installer.http import Request, Response, Route
from distro_builder.smart_installer.netboot import Netboot
from distro_builder.smart_installer.store import Store
from distro_builder.smart_installer.wsgi import SECURITY_HEADERS, WsgiApp, status_line

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 30  # seconds for a whole request to arrive; for a response to move at all
THREADS = 96  # requests in flight (see the module's docstring)
WORKER_CONNECTIONS = 1000  # open connections the worker takes; more wait in the kernel's queue
MAX_CONNECTIONS_PER_ADDRESS = 100  # open connections of one client address (a worker's count)
# A request goes to a thread only once its head (and a Content-Length body up to this much) is
# in the socket's receive queue: slow headers and slow bodies wait in the poller, not a thread.
GATE_PEEK = 128 * 1024
GATE_POLL_S = 0.1  # how often the connections whose request is partly in are looked at again
BACKLOG = 1024  # the listening socket's queue
KEEPALIVE = 5  # seconds an idle keep-alive connection is kept
GRACEFUL_TIMEOUT = 10  # seconds the worker gets to finish its requests after SIGTERM


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
        return agentapi.body_limit(path) if path.startswith("/agent/") else api.MAX_BODY

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
            return self.error(req.path, e.status, str(e), e.hint, getattr(e, "fields", None))
        except DistroBuilderError as e:  # a ConfigError from the shared rules: the input's fault
            return self.error(req.path, 400, str(e), e.hint)
        except Exception:
            log.exception("internal error on %s %s", req.method, redact(_printable(req.path)))
            return self.error(req.path, 500, "internal error (see the service's log)", None)

    @staticmethod
    def error(
        path: str, status: int, message: str, hint: str | None, fields: dict | None = None
    ) -> Response:
        if path.startswith("/agent/"):
            return Response.text(error_body(message, hint), status)
        body: dict[str, Any] = {"error": message}
        if hint:
            body["hint"] = hint
        if fields:
            body["fields"] = fields  # every refused value by its key (InvalidFields)
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


def _scrubbed(text: str) -> str:
    return redact(_printable(text))


# --- gunicorn: the worker, the log, the application -------------------------------------------


class _Deadlines:
    """Connections whose request is still coming in, by the thread reading it, with the time it
    must be in by; a watchdog thread closes the late ones (the reading thread then sees the
    connection end, and gunicorn drops it)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._reading: dict[int, tuple[float, Any]] = {}

    def start(self, conn: Any) -> None:
        with self._lock:
            self._reading[threading.get_ident()] = (time.monotonic() + self.seconds, conn)

    def stop(self) -> None:
        with self._lock:
            self._reading.pop(threading.get_ident(), None)

    def watch(self) -> None:
        while True:
            time.sleep(min(0.5, self.seconds / 4))
            now = time.monotonic()
            with self._lock:
                late = [(ident, conn) for ident, (t, conn) in self._reading.items() if t <= now]
                for ident, conn in late:  # once more in `seconds`, if it is still there then
                    self._reading[ident] = (now + self.seconds, conn)
            for _, conn in late:
                try:
                    # socket.socket's own shutdown, on the file descriptor: an SSLSocket's
                    # would first drop its TLS state under the thread that reads it.
                    socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
                except OSError:
                    continue  # closed meanwhile, or being wrapped for TLS: next round
                log.info(
                    "%s: no complete request within %g s: connection closed",
                    _client(conn.client), self.seconds,
                )  # fmt: skip


def _queued(sock: socket.socket) -> int:
    """Bytes in the socket's receive queue (FIONREAD); -1 when it is gone."""
    try:
        buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):
        return -1
    return int.from_bytes(buf, sys.byteorder)


def _client(addr: Any) -> str:
    return str(addr[0]) if isinstance(addr, tuple) and addr else str(addr or "-")


# gunicorn's parse errors: (class, status, message). The first match wins.
_REFUSALS: tuple[tuple[type[Exception], int, str], ...] = (
    (http_errors.LimitRequestLine, 414, "the request line is too long"),
    (http_errors.LimitRequestHeaders, 431, "too many headers, or too long"),
    (http_errors.InvalidRequestLine, 400, "malformed request line"),
    (http_errors.InvalidRequestMethod, 400, "malformed method"),
    (http_errors.InvalidHTTPVersion, 400, "unsupported HTTP version (1.0 and 1.1 are)"),
    (http_errors.ExpectationFailed, 417, "only 'Expect: 100-continue' is understood"),
    # RFC 9112 suggests 501; no transfer coding is accepted here (not even chunked): a 400 says
    # what to do instead, like the chunked refusal (wsgi.py).
    (http_errors.UnsupportedTransferCoding, 400,
     "transfer codings are not accepted: send Content-Length"),
    (http_errors.InvalidChunkSize, 400, "malformed chunked body"),
    (http_errors.ChunkMissingTerminator, 400, "malformed chunked body"),
    (http_errors.InvalidChunkExtension, 400, "malformed chunked body"),
    (http_errors.ParseException, 400, "malformed request"),
)  # fmt: skip
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,40}")


def _refusal(exc: Exception) -> tuple[int, str] | None:
    """The 4xx for a request gunicorn could not parse; None when it is no client error."""
    if isinstance(exc, http_errors.InvalidResponseHeader | http_errors.InvalidResponseHeaderName):
        return None  # a header the application made: its fault, a 500
    for cls, status, message in _REFUSALS:
        if isinstance(exc, cls):
            if isinstance(exc, http_errors.InvalidHeader | http_errors.InvalidHeaderName):
                name = str(exc.hdr)
                what = f"{name.title()} header" if _HEADER_NAME.fullmatch(name) else "header"
                message = f"malformed or conflicting {what}"
            return status, message
    return None


def _request_line(req: Any, exc: Exception) -> str:
    """What the client sent as its request line, as far as it was read."""
    if isinstance(exc, http_errors.InvalidRequestLine):
        return str(exc.req)
    req = req or getattr(exc, "req", None)
    if getattr(req, "method", None) and getattr(req, "uri", None):
        version = ".".join(map(str, req.version)) if getattr(req, "version", None) else "?"
        return f"{req.method} {req.uri} HTTP/{version}"
    return "-"


def _raw_response(resp: Response) -> bytes:
    """A complete HTTP/1.1 response that closes the connection (for gunicorn's refusals)."""
    lines = [
        f"HTTP/1.1 {status_line(resp.status)}",
        f"Content-Type: {resp.content_type}",
        f"Content-Length: {len(resp.body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (*SECURITY_HEADERS, *resp.headers)),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + resp.body


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,12})", re.IGNORECASE)
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_HANDS_ON = re.compile(rb"\r\n(transfer-encoding|expect)[ \t]*:", re.IGNORECASE)


def _request_in(sock: socket.socket) -> bool:
    """Whether the socket's receive queue holds a whole request head, and its body (when it
    has a Content-Length that fits GATE_PEEK); True as well at the end of the stream, on an
    error, on a head too large to look at, and where the client waits for the server
    (Expect: 100-continue) or the body's length is not known (Transfer-Encoding): the thread
    that reads it answers those."""
    try:
        data = sock.recv(GATE_PEEK, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    if not data:
        return True
    blank = _HEAD_END.search(data)  # bare LFs too: gunicorn's parser refuses them (a 400)
    if blank is None:
        return len(data) >= GATE_PEEK
    head = b"\r\n" + data[: blank.start()].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if _HANDS_ON.search(head):
        return True
    m = _CONTENT_LENGTH.search(head)
    need = blank.end() + (int(m[1]) if m else 0)
    return len(data) >= need or need > GATE_PEEK


class _GatedConn(TConn):
    """gunicorn's connection that also keeps its address's count (see _Worker.accept)."""

    def __init__(self, *args: Any, on_close: Callable[[], None]) -> None:
        super().__init__(*args)
        self._on_close: Callable[[], None] | None = on_close
        self.gate_deadline = 0.0

    def close(self, graceful: bool = False) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        super().close(graceful)


class _Worker(ThreadWorker):
    """gunicorn's gthread worker with time limits for slow clients and our error format.

    On plain HTTP a connection reaches a thread only when its request is in (_request_in):
    until then it waits in the poller (no data yet) or in `_parked` (part of it in: looked at
    every GATE_POLL_S with FIONREAD, never busy-polled), so a flood of slow headers or bodies
    holds no thread, and one address holds at most MAX_CONNECTIONS_PER_ADDRESS connections.
    Under TLS the bytes cannot be looked at before the handshake: connections go to a thread
    at once (gunicorn's way), under the request deadline."""

    request_timeout: float = REQUEST_TIMEOUT  # set by serve_forever

    def init_process(self) -> None:
        self.deadlines = _Deadlines(self.request_timeout)
        self._local = threading.local()
        self._per_address: dict[str, int] = {}
        self._parked: dict[_GatedConn, int] = {}  # -> bytes queued when last looked at
        self._refused_warned = 0.0
        threading.Thread(target=self.deadlines.watch, name="deadlines", daemon=True).start()
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app, deadlines = self.wsgi, self.deadlines

        def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            def start(*args: Any) -> Any:
                deadlines.stop()  # the request is in (App reads the body before it answers)
                return start_response(*args)

            return app(environ, start)

        self.wsgi = wsgi

    # --- the gate: per-address count, requests handed to a thread only once they are in --

    def accept(self, listener: Any) -> None:
        try:
            sock, addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        who = _client(addr)
        if self._per_address.get(who, 0) >= MAX_CONNECTIONS_PER_ADDRESS:
            self._refuse_connection(sock, who)
            return
        self._per_address[who] = self._per_address.get(who, 0) + 1
        self.nr_conns += 1

        def closed() -> None:
            left = self._per_address.get(who, 1) - 1
            if left > 0:
                self._per_address[who] = left
            else:
                self._per_address.pop(who, None)

        conn = _GatedConn(self.cfg, sock, addr, listener.getsockname(), on_close=closed)
        if self.cfg.is_ssl:
            sock.setblocking(True)
            self.enqueue_req(conn)
        else:
            self._gate(conn)

    def _refuse_connection(self, sock: socket.socket, who: str) -> None:
        resp = App.error(
            "/", 503, f"too many connections from this address (at most "
            f"{MAX_CONNECTIONS_PER_ADDRESS})", "close some, or retry in a few seconds",
        )  # fmt: skip
        resp.headers.append(("Retry-After", "5"))
        try:
            sock.setblocking(False)
            sock.send(_raw_response(resp))
        except OSError:
            pass
        sock.close()
        now = time.monotonic()
        if now - self._refused_warned >= 60:
            self._refused_warned = now
            log.warning(
                "%s: more than %d connections: refused (one line a minute)",
                who, MAX_CONNECTIONS_PER_ADDRESS,
            )  # fmt: skip

    def _gate(self, conn: _GatedConn) -> None:
        """Wait, without a thread, until the connection's request is in."""
        conn.sock.setblocking(False)
        conn.gate_deadline = time.monotonic() + self.request_timeout
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._gate_readable, conn))

    def _gate_readable(self, conn: _GatedConn, _sock: Any) -> None:
        self.poller.unregister(conn.sock)
        self._look_at(conn)

    def _look_at(self, conn: _GatedConn) -> None:
        """Dispatch `conn` if its request is in, else park it. The bytes queued are counted
        before the look: the rest of a request arriving between the two then shows as a change
        at the next look (counted after, it hid, and the request waited out its deadline)."""
        seen = _queued(conn.sock)
        if _request_in(conn.sock):
            self._dispatch(conn)
        else:  # part of it: looked at again every GATE_POLL_S (it stays readable)
            self._parked[conn] = seen

    def _dispatch(self, conn: _GatedConn) -> None:
        conn.data_ready = True
        conn.sock.setblocking(True)
        self.enqueue_req(conn)

    def _cut(self, conn: _GatedConn) -> None:
        log.info(
            "%s: no complete request within %g s: connection closed",
            _client(conn.client), self.request_timeout,
        )  # fmt: skip
        self.nr_conns -= 1
        conn.close()

    def _look_at_parked(self) -> None:
        now = time.monotonic()
        for conn, seen in list(self._parked.items()):
            queued = _queued(conn.sock)
            if queued != seen and _request_in(conn.sock):
                del self._parked[conn]
                self._dispatch(conn)
            elif now >= conn.gate_deadline:
                del self._parked[conn]
                self._cut(conn)
            else:
                self._parked[conn] = queued

    def _gate_expired(self) -> None:
        """Connections in the poller that sent nothing for request_timeout seconds."""
        now = time.monotonic()
        for key in list(self.poller.get_map().values()):
            cb = key.data
            if isinstance(cb, partial) and cb.func == self._gate_readable:
                conn = cb.args[0]
                if now >= conn.gate_deadline:
                    self.poller.unregister(conn.sock)
                    self._cut(conn)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        super().wait_for_and_dispatch_events(GATE_POLL_S if self._parked else timeout)
        if self._parked:
            self._look_at_parked()
        now = time.monotonic()
        if now - getattr(self, "_swept", 0.0) >= 1.0:
            self._swept = now
            self._gate_expired()

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection's next request starts: through the gate as well."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        if self.cfg.is_ssl:
            self.enqueue_req(conn)
            return
        conn.gate_deadline = time.monotonic() + self.request_timeout
        self._look_at(conn)

    def handle(self, conn: Any) -> Any:
        """One request on `conn` (from its first byte: TLS handshake, head, body) under the
        deadline."""
        self._local.answered = False
        self.deadlines.start(conn)
        try:
            return super().handle(conn)
        finally:
            self.deadlines.stop()

    def handle_request(self, req: Any, conn: Any) -> bool:
        # A response whose client takes nothing for this long is cut (blocking I/O otherwise;
        # socket.sendfile waits for the socket with this timeout too).
        conn.sock.settimeout(self.request_timeout)
        try:
            keep = super().handle_request(req, conn)
        except TimeoutError:
            log.info(
                "%s: took nothing for %g s: connection closed",
                _client(conn.client), self.request_timeout,
            )  # fmt: skip
            raise StopIteration from None  # gthread: close the connection, quietly
        self._local.answered = True
        return keep

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        """gunicorn's refusals in our format and as 4xx; anything else a logged 500."""
        who = _client(addr)
        if isinstance(exc, ssl.SSLError):  # a failed handshake: there is no HTTP to answer in
            log.debug("%s: TLS: %s", who, exc)
            return
        if getattr(self._local, "answered", False):  # e.g. a bad chunk in a body left unread
            log.debug("%s: after the response: %s", who, _scrubbed(str(exc)))
            return
        line = _scrubbed(_request_line(req, exc))
        refusal = _refusal(exc)
        if refusal is None:
            log.error("internal error on %s", line, exc_info=exc)
            status, message = 500, "internal error (see the service's log)"
        else:
            status, message = refusal
        path = str(getattr(req, "path", "") or "/")
        log.debug('%s "%s" %d (%s)', who, line, status, message)
        try:
            util.write_nonblock(client, _raw_response(App.error(path, status, message, None)))
        except OSError as e:
            log.debug("%s: the refusal was not sent: %s", who, e)


class _Scrub(logging.Filter):
    """gunicorn's messages with control characters escaped and boot tokens masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _scrubbed(record.getMessage()), None
        return True


_TRACE = 5  # below logging.DEBUG: gunicorn's own debug lines, shown by no handler of ours


class _Log(glogging.Logger):
    """gunicorn's logging through ours (distro_builder's handler on stderr): its start and stop
    chatter at DEBUG, warnings and errors as they are; the access log at DEBUG (-v), one line
    per request, escaped and without boot tokens. gunicorn adds no handlers or files."""

    def __init__(self, cfg: Any) -> None:
        self.error_log = logging.getLogger(f"{__name__}.gunicorn")
        self.access_log = log
        self.error_handlers: list[Any] = []
        self.access_handlers: list[Any] = []
        self.logfile = None
        self.lock = threading.Lock()
        self.cfg = cfg
        self._access_log_enabled = True
        if not any(isinstance(f, _Scrub) for f in self.error_log.filters):
            self.error_log.addFilter(_Scrub())

    def setup(self, cfg: Any) -> None:  # gunicorn's reload (SIGHUP): nothing of its own to set
        self.cfg = cfg

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.debug(msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        # Below -v: "Closing connection." for every request, its configuration dump...
        self.error_log.log(_TRACE, msg, *args, **kwargs)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        line = " ".join(
            str(environ.get(k, "-")) for k in ("REQUEST_METHOD", "RAW_URI", "SERVER_PROTOCOL")
        )
        status = str(resp.status or "-").split(" ", 1)[0]
        log.debug(
            '%s "%s" %s %s', environ.get("REMOTE_ADDR", "-"), _scrubbed(line), status,
            getattr(resp, "sent", "-"),
        )  # fmt: skip


class _Application(BaseApplication):  # type: ignore[misc]
    """gunicorn's embedding API: our settings, and the WSGI app made in the worker."""

    def __init__(self, server: InstallerServer, fd: int) -> None:
        self.server = server
        self._options = server.options(fd)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> WsgiApp:
        return self.server.load()


def _worker_exit(arbiter: Any, worker: Any) -> None:
    """In the worker, on its way out: close its database."""
    store = worker.app.server.store
    if store is not None:
        store.db.close()


# --- TLS, the listening socket, the service ---------------------------------------------------


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


class InstallerServer:
    """A bound listening socket and what the worker will serve on it (see make_server)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        db_url: str | None,
        data_dir: Path,
        served: ServedDisc | None,
        tls: tuple[Path, Path, ssl.SSLContext] | None,
        request_timeout: float,
        shown_db: str,
        admins: int,
        fingerprint: str | None,
        workers: int = 1,
    ) -> None:
        self.socket = sock
        self.server_address: tuple[str, int] = sock.getsockname()[:2]
        self.db_url, self.data_dir, self.served, self.tls = db_url, data_dir, served, tls
        self.request_timeout = request_timeout
        self.shown_db, self.admins, self.fingerprint = shown_db, admins, fingerprint
        self.store: Store | None = None
        self.workers = workers

    def load(self) -> WsgiApp:
        """The WSGI application, made in the worker process: the database opened there (a
        connection, a pool or the login guard's threads do not survive a fork)."""
        try:
            roleset = load_roles(self.data_dir)
            self.store = Store(Database(self.db_url), roleset)
        except DistroBuilderError as e:
            log.error("error: %s", e)
            if e.hint:
                log.error("hint: %s", e.hint)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
        netboot = Netboot(self.store, self.served, self.data_dir) if self.served else None
        app = App(self.store, self.data_dir / "smart_installer" / "web", netboot)
        return WsgiApp(app, tls=self.tls is not None)

    def options(self, fd: int) -> dict[str, Any]:
        """gunicorn's settings (https://docs.gunicorn.org/en/stable/settings.html)."""
        options: dict[str, Any] = {
            "bind": [f"fd://{fd}"],
            "workers": self.workers,
            "worker_class": _Worker,
            "threads": THREADS,
            "worker_connections": WORKER_CONNECTIONS,
            "backlog": BACKLOG,
            "keepalive": KEEPALIVE,
            "timeout": 30,  # the worker's main loop must report every 30 s, or it is restarted
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "logger_class": _Log,
            "loglevel": "debug",  # our handler's level decides (-v)
            "accesslog": None,
            "worker_exit": _worker_exit,
            "pre_request": lambda worker, req: None,  # its "GET /path" debug line: access() logs
            "forwarded_allow_ips": "",  # no proxy in front: the socket's peer is the client
            "control_socket_disable": True,  # no gunicorn.ctl in $XDG_RUNTIME_DIR
            "proc_name": "distro-builder-serve",
        }
        if self.tls:
            cert, key, ctx = self.tls
            options.update(
                certfile=os.fspath(cert), keyfile=os.fspath(key),
                ssl_context=lambda conf, default_factory: ctx,
            )  # fmt: skip
        return options


def make_server(
    db_url: str | None,
    listen: str,
    data_dir: Path,
    *,
    tls: tuple[Path, Path] | None = None,
    legacy_tls: bool = False,
    disc: Path | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
    workers: int = 1,
) -> InstallerServer:
    """A bound socket, everything checked before it serves: the roles, the disc (`disc`: its
    archive, netboot installer and per-node boot are served too, smart_installer/netboot.py),
    the TLS certificate, and the database (opened, migrated, closed again)."""
    host, port = parse_listen(listen)
    roleset = load_roles(data_dir)
    served = open_disc(disc, data_dir, roleset) if disc else None
    fingerprint = None
    tls_ctx = None
    if tls:
        ctx, fingerprint = tls_context(*tls, legacy=legacy_tls)
        tls_ctx = (tls[0], tls[1], ctx)
    db = Database(db_url)
    try:
        shown_db, admins = db.shown_url, Store(db, roleset).admin_count()
    finally:
        db.close()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as e:
        raise BadRequest(
            f"cannot listen on {listen}: {e.strerror or e}", hint="pick another --listen ADDR:PORT"
        ) from e
    return InstallerServer(
        sock, db_url=db_url, data_dir=data_dir, served=served, tls=tls_ctx,
        request_timeout=request_timeout, shown_db=shown_db, admins=admins,
        fingerprint=fingerprint, workers=workers,
    )  # fmt: skip


def serve_forever(server: InstallerServer) -> None:
    """Run gunicorn on the server's socket until SIGTERM/SIGINT (its master here, one worker
    process forked from it).

    Raises:
        InstallerError: the worker could not start (its error is logged above).
    """
    _Worker.request_timeout = server.request_timeout
    app = _Application(server, server.socket.detach())
    master = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        app.run()
    except SystemExit as e:
        if os.getpid() != master or not e.code:
            raise  # the worker's own exit, or the master's after a clean stop
        raise InstallerError(
            f"the service stopped (gunicorn status {e.code}): see the lines above",
            hint="run with -v for gunicorn's own lines",
        ) from None
