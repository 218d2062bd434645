"""The server's gate (issue 20 item 3): whether a connection's request is in, read with
MSG_PEEK from a real socket pair, so the bytes stay for gunicorn's parser."""

from __future__ import annotations

import socket

import pytest

from distro_builder.smart_installer.server import _queued, _request_in

HEAD = b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"


@pytest.mark.parametrize(
    ("sent", "ready"),
    [
        (b"", False),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET /healthz HTTP/1.1\nHost: x\n\n", True),  # bare LFs: gunicorn's 400
        (HEAD + b"ab", False),
        (HEAD + b"abcde", True),
        (HEAD.replace(b"Content-Length", b"content-LENGTH") + b"abc", False),
        (b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", True),  # gunicorn: 413
        (b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", True),
    ],
)
def test_request_in(sent: bytes, ready: bool) -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(sent)
        assert _request_in(b) is ready
        assert _queued(b) == len(sent)  # peeked, not taken


def test_end_of_stream_goes_to_a_thread() -> None:
    a, b = socket.socketpair()
    with b:
        a.sendall(b"GET / HT")
        a.close()
        assert _request_in(b) is False  # bytes there, head not complete: still waiting
        b.recv(100)
        assert _request_in(b) is True  # EOF: the thread sees the client gone
