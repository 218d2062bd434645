"""`serve` on gunicorn (issue 13): what the production server adds, against the real process.

The disc's files leave through sendfile (strace on the worker), slow clients are cut at
--request-timeout (a head or a body trickling in, a client that reads nothing), gunicorn's own
refusals are 4xx in our format, its log lines escaped and without boot tokens, port 0 and a port
in use, SIGTERM/SIGINT closing the worker's database, and TLS through gunicorn's ssl_context hook
(--legacy-tls lets lucid's TLS 1.0 in, the default does not).
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distro_builder.media.iso import IsoImage
from tests.helpers import require_tool_or_skip
from tests.integration.installer_live import (
    ADMIN,
    ADMIN_PASSWORD,
    ROOT,
    Service,
    cli,
    process_tree,
    self_signed_cert,
)

pytestmark = pytest.mark.integration

TIMEOUT = 2.0  # --request-timeout of the services here
NB = "/install/netboot/ubuntu-installer/amd64"


def _db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    return url


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    service = Service(
        _db(tmp_path), tmp_path / "serve.log", verbose=True,
        extra=("--request-timeout", str(TIMEOUT)),
    )  # fmt: skip
    yield service
    assert service.stop() == 0


@pytest.fixture(scope="module")
def disc_svc(tmp_path_factory: pytest.TempPathFactory, demo_base: Path) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("served")
    service = Service(
        _db(tmp), tmp / "serve.log", verbose=True,
        extra=("--disc", str(demo_base), "--request-timeout", str(TIMEOUT)),
    )  # fmt: skip
    yield service
    assert service.stop() == 0


def _worker(svc: Service) -> int:
    assert svc.proc is not None
    workers = process_tree(svc.proc.pid)[1:]
    assert len(workers) == 1, workers  # gunicorn's master and one worker
    return workers[0]


def _raw(svc: Service, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes: status, headers, body (0: no answer)."""
    with socket.create_connection(("127.0.0.1", svc.port), timeout=30) as s:
        s.sendall(data)
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    if not reply.startswith(b"HTTP/"):
        return 0, {}, reply
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ", 2)[1]), {k.lower(): v for k, v in headers.items()}, body


def _closed_after(s: socket.socket, trickle: bytes, every: float, limit: float) -> float:
    """Send `trickle` one byte every `every` s (its last byte over and over) until the server
    closes the connection; the seconds that took. Any answer fails the test."""
    t0 = time.monotonic()
    s.settimeout(every)
    i = 0
    while time.monotonic() - t0 < limit:
        try:
            s.sendall(trickle[min(i, len(trickle) - 1) : min(i, len(trickle) - 1) + 1])
            i += 1
            data = s.recv(4096)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0
        assert data == b"", data  # closed, never answered
        return time.monotonic() - t0
    raise AssertionError(f"still open after {limit} s")


def test_slow_requests_are_cut_at_the_timeout(svc: Service) -> None:
    """A head or a body that trickles in, or nothing at all, is cut at --request-timeout however
    steadily it comes (the old server's 30 s timeout was per read); the service answers others
    meanwhile, and a request that arrives in pieces but in time is served."""
    cases = {
        "head": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaa",
        "body": b"POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 60\r\n\r\n{",
        "nothing": b"",
    }
    took: dict[str, float] = {}

    def run(name: str, data: bytes) -> None:
        with socket.create_connection(("127.0.0.1", svc.port), timeout=30) as s:
            if name == "body":
                s.sendall(data[:-1])  # the head at once, then the body byte by byte
            if data:
                took[name] = _closed_after(s, data[-1:] if name == "body" else data, 0.2, 20)
            else:
                s.settimeout(20)
                t0 = time.monotonic()
                assert s.recv(4096) == b""
                took[name] = time.monotonic() - t0

    threads = [threading.Thread(target=run, args=item) for item in cases.items()]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert svc.request("GET", "/healthz")[0] == 200  # served while they trickle
    for t in threads:
        t.join()
    assert set(took) == set(cases), took
    for name, seconds in took.items():
        assert TIMEOUT - 0.3 < seconds < TIMEOUT + 3, (name, seconds)
    # In pieces, in time: served.
    with socket.create_connection(("127.0.0.1", svc.port), timeout=30) as s:
        for part in (b"GET /healthz HT", b"TP/1.0\r\nHost: x\r\n", b"\r\n"):
            s.sendall(part)
            time.sleep(0.3)
        assert s.recv(4096).startswith(b"HTTP/1.0 200 ")
    log = svc.log.read_text()
    assert log.count(f"no complete request within {TIMEOUT:g} s: connection closed") >= 3, log
    assert "Traceback" not in log


def test_disc_files_go_out_with_sendfile(disc_svc: Service, demo_base: Path) -> None:
    """The mirror's files and the netboot kernel leave through sendfile(2) from the ISO (strace
    on the worker), byte for byte; the initrd with its appended layer is read and sent."""
    require_tool_or_skip("strace")
    with IsoImage(demo_base) as image:
        kernel = image.read(f"{NB}/linux")
        pool = next(e.path for e in image.walk("/pool") if e.path.endswith(".deb"))
        deb = image.read(pool)
    trace = disc_svc.log.with_name("strace.txt")
    strace = subprocess.Popen(
        ["strace", "-f", "-qq", "-e", "trace=sendfile", "-o", str(trace),
         "-p", str(_worker(disc_svc))],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(2.0)  # attached to every thread (strace -f -p)
        assert strace.poll() is None, strace.stderr.read() if strace.stderr else ""
        for path, want in (("/netboot/amd64/linux", kernel), (f"/disc{pool}", deb)):
            status, headers, body = disc_svc.request("GET", path)
            assert status == 200 and body == want, path
            assert headers["content-length"] == str(len(want))
        status, _, initrd = disc_svc.request("GET", "/netboot/amd64/initrd.gz")
        assert status == 200 and len(initrd) > 1_000_000
    finally:
        strace.send_signal(signal.SIGINT)
        strace.wait(timeout=30)
    # "PID sendfile(SOCK, FILE, [OFFSET] => [OFFSET], COUNT) = SENT", or its "resumed" half
    calls = [line for line in trace.read_text().splitlines() if "sendfile" in line]
    sent = sum(int(m[1]) for line in calls if (m := re.search(r"\) = (\d+)$", line)))
    # Every byte of the kernel and the .deb went through sendfile; the initrd (with its tail)
    # did not.
    assert sent == len(kernel) + len(deb), (sent, len(kernel), len(deb), calls[:5])


def test_a_client_that_reads_nothing_is_cut(disc_svc: Service) -> None:
    """A download whose client takes nothing: cut at --request-timeout, on the sendfile path
    (the kernel) and on the generator path (the initrd with its layer)."""
    before = disc_svc.log.read_text().count("took nothing for")
    socks = []
    for path in ("/netboot/amd64/linux", "/netboot/amd64/initrd.gz"):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
        s.connect(("127.0.0.1", disc_svc.port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        socks.append(s)
    deadline = time.monotonic() + TIMEOUT + 15
    while disc_svc.log.read_text().count("took nothing for") < before + 2:
        assert time.monotonic() < deadline, disc_svc.log.read_text()[-3000:]
        time.sleep(0.2)
    for s in socks:  # what was in the buffers, then the end: never the whole file
        s.settimeout(30)
        got = 0
        try:
            while chunk := s.recv(1 << 20):
                got += len(chunk)
        except ConnectionResetError:
            pass
        s.close()
        assert 0 < got < 8_000_000, got
    assert disc_svc.request("GET", "/healthz")[0] == 200


def test_gunicorns_refusals_are_4xx_in_our_format(svc: Service) -> None:
    """What gunicorn's parser refuses comes back as a 4xx JSON error (not its HTML page, not
    501 for a transfer coding); a refused chunked body gets one answer, not two."""
    long_header = b"X-Long: " + b"a" * 9000 + b"\r\n"
    cases = [
        (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
        (b"get /healthz HTTP/1.1\r\n\r\n", 400, "malformed method"),
        (b"GET /healthz HTTP/2.0\r\n\r\n", 400, "HTTP version"),
        (b"GET /healthz HTTP/1.1\nHost: x\n\n", 400, "malformed"),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 414, "too long"),
        (b"GET /healthz HTTP/1.1\r\n" + long_header + b"\r\n", 431, "headers"),
        (b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", 431, "headers"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "malformed"),
        (b"POST /api/login HTTP/1.1\r\nTransfer-Encoding: foo\r\n\r\n", 400,
         "transfer codings are not accepted"),
        (b"POST /api/login HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
         "Transfer-Encoding"),
        (b"POST /api/login HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
         "Content-Length"),
        (b"POST /api/login HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
        (b"GET /healthz HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417, "Expect"),
        # answered by the app; then gunicorn drains the body for keep-alive and fails on it
        (b"POST /agent/v1/register HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
         400, "chunked bodies are not accepted"),
    ]  # fmt: skip
    for data, want, words in cases:
        status, headers, body = _raw(svc, data)
        assert status == want, (data[:60], status, body)
        assert body.count(b"HTTP/1.") == 0, body  # one answer
        if data.startswith(b"POST /agent/"):
            assert b"error='chunked" in body
            continue
        assert headers["content-type"] == "application/json", headers
        assert words in json.loads(body)["error"], (data[:60], body)
        assert headers["x-content-type-options"] == "nosniff"
    assert svc.request("GET", "/healthz")[0] == 200
    assert "Traceback" not in svc.log.read_text()


def test_log_lines_escaped_without_boot_tokens(svc: Service) -> None:
    """The access log and gunicorn's refusals: control characters escaped, /nb/ tokens masked,
    whether the request line parses or not."""
    token = "s3cr3t-b00t-t0k3n"
    assert _raw(svc, f"GET /nb/7/{token}/preseed HTTP/1.0\r\n\r\n".encode())[0] == 404
    assert _raw(svc, f"GET /nb/8/{token}/preseed\x1b[2J HTTP/1.0\r\n\r\n".encode())[0] == 400
    assert _raw(svc, f"GET /nb/9/{token}\r/preseed HTTP/1.0\r\n\r\n".encode())[0] == 400
    deadline = time.monotonic() + 10
    while b'"GET /nb/9/' not in (log := svc.log.read_bytes()):  # stderr reaches the file
        assert time.monotonic() < deadline, log[-2000:]
        time.sleep(0.1)
    assert token.encode() not in log, log[-2000:]
    assert b'"GET /nb/7/********/preseed HTTP/1.0" 404' in log, log[-2000:]
    assert b'"GET /nb/8/********/preseed\\x1b[2J HTTP/1.0" 400' in log, log[-2000:]
    assert b'"GET /nb/9/********/preseed HTTP/1.0" 400' in log, log[-2000:]  # CR: in the mask
    assert not any(c in log for c in (b"\x1b", b"\r", b"\x00"))


def test_port_zero_and_a_port_in_use(svc: Service) -> None:
    """Port 0 gets a free port, reported; a second `serve` on a taken port fails at once with
    the clear refusal (no gunicorn retries), and the first one goes on."""
    assert svc.port != 0 and svc.request("GET", "/healthz")[0] == 200
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", "serve", "--db", svc.db,
         "--listen", f"127.0.0.1:{svc.port}"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert f"cannot listen on 127.0.0.1:{svc.port}: Address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr and time.monotonic() - t0 < 15
    assert svc.request("GET", "/healthz")[0] == 200


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_and_closes_the_database(tmp_path: Path, signum: int) -> None:
    """SIGTERM or Ctrl-C: exit 0, the worker gone too, its database closed (SQLite removes the
    -wal file when the last connection closes)."""
    svc = Service(_db(tmp_path), tmp_path / "serve.log")
    assert svc.proc is not None
    svc.login()  # a write: the worker's connection holds the WAL
    wal = tmp_path / "installer.sqlite-wal"
    assert wal.exists()
    pids = process_tree(svc.proc.pid)
    assert len(pids) == 2
    svc.proc.send_signal(signum)
    assert svc.proc.wait(timeout=30) == 0
    svc.logf.close()
    time.sleep(0.2)
    assert not any(Path(f"/proc/{p}").exists() for p in pids)
    assert not wal.exists()
    log = svc.log.read_text()
    assert "Traceback" not in log


@pytest.mark.parametrize("legacy", [False, True], ids=["default", "legacy-tls"])
def test_tls_through_gunicorn(tmp_path: Path, legacy: bool) -> None:
    """Our TLS context reaches gunicorn (its ssl_context hook): lucid's TLS 1.0 only with
    --legacy-tls, a current client always. (No --disc: the network install is plain HTTP, and
    serve refuses --disc with --tls-cert; tests/integration/test_netboot.py.)"""
    cert, key = self_signed_cert(tmp_path)
    extra = ("--tls-cert", str(cert), "--tls-key", str(key))
    svc = Service(_db(tmp_path), tmp_path / "serve.log", extra=extra + ("--legacy-tls",) * legacy)
    try:
        lucid = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{svc.port}", "-tls1",
             "-cipher", "AES128-SHA:@SECLEVEL=0"],
            input="", capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if legacy:
            assert "Protocol  : TLSv1\n" in lucid.stdout, lucid.stdout + lucid.stderr
        else:
            assert lucid.returncode != 0 and "protocol version" in lucid.stderr, lucid.stderr
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", svc.port, context=ctx, timeout=60)
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b"ok\n"
        assert conn.sock is not None and conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        conn.close()
        assert "Traceback" not in svc.log.read_text()
    finally:
        assert svc.stop() == 0
