"""The WSGI glue (smart_installer/wsgi.py) without a server: environ in, status, headers and body
iterable out; bodies refused before the router; files as wsgi.file_wrapper or a generator."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from distro_builder.smart_installer.http import Request, Response
from distro_builder.smart_installer.server import App
from distro_builder.smart_installer.wsgi import BLOCK, FileRange, WsgiApp


class _Router:
    """App's interface: records the Request, answers `response`."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.requests: list[Request] = []
        self.error = App.error

    def limit(self, path: str) -> int:
        return 16 if path.startswith("/agent/") else 64

    def handle(self, req: Request) -> Response:
        self.requests.append(req)
        return self.response


class _Wrapper:
    """A stand-in for the server's wsgi.file_wrapper."""

    def __init__(self, filelike: Any, blksize: int) -> None:
        self.filelike, self.blksize = filelike, blksize

    def __iter__(self) -> Any:
        return iter(lambda: self.filelike.read(self.blksize), b"")


def _call(
    app: WsgiApp, method: str, target: str, body: bytes = b"", **environ: Any
) -> tuple[str, dict[str, str], Any]:
    env = {
        "REQUEST_METHOD": method, "RAW_URI": target, "PATH_INFO": target.split("?")[0],
        "REMOTE_ADDR": "10.0.0.9", "wsgi.input": io.BytesIO(body), "wsgi.file_wrapper": _Wrapper,
        **environ,
    }  # fmt: skip
    got: list[Any] = []
    result = app(env, lambda status, headers: got.extend([status, dict(headers)]))
    return got[0], got[1], result


def test_request_from_environ() -> None:
    router = _Router(Response.text("ok"))
    status, headers, body = _call(
        WsgiApp(router, tls=False), "POST", "/api/x%2e?a=1&a=2", b'{"k": 1}',  # type: ignore[arg-type]
        CONTENT_TYPE="application/json", CONTENT_LENGTH="8", HTTP_AUTHORIZATION="Bearer t",
        HTTP_X_FORWARDED_FOR="1.2.3.4",
    )  # fmt: skip
    assert status == "200 OK" and b"".join(body) == b"ok"
    assert headers["Content-Length"] == "2" and headers["X-Frame-Options"] == "DENY"
    req = router.requests[0]
    assert req.path == "/api/x%2e" and req.query == {"a": "2"}  # as sent, %-encoding kept
    assert req.json() == {"k": 1} and req.bearer() == "t" and req.client == "10.0.0.9"
    assert req.headers["x-forwarded-for"] == "1.2.3.4"


def test_bodies_refused_before_the_router() -> None:
    router = _Router(Response.text("ok"))
    app = WsgiApp(router, tls=False)  # type: ignore[arg-type]
    for env, want in [
        ({}, "411 Length Required"),
        ({"CONTENT_LENGTH": "x"}, "411 Length Required"),
        ({"CONTENT_LENGTH": "65"}, "413 Request Entity Too Large"),
        ({"CONTENT_LENGTH": "10"}, "400 Bad Request"),  # shorter than announced
        ({"CONTENT_LENGTH": "3", "HTTP_TRANSFER_ENCODING": "chunked"}, "400 Bad Request"),
    ]:
        status, headers, body = _call(app, "PUT", "/api/d", b"abc", **env)
        assert status == want, (env, status)
        assert headers["Content-Type"] == "application/json" and b'"error"' in b"".join(body)
    status, headers, body = _call(app, "POST", "/agent/v1/register", b"x" * 17,
                                  CONTENT_LENGTH="17")  # fmt: skip
    assert status.startswith("413") and b"".join(body).startswith(b"error='the body is 17")
    assert router.requests == []


def test_secure_cookie_only_under_tls() -> None:
    resp = Response.json({})
    resp.headers.append(("Set-Cookie", "s=1; HttpOnly"))
    for tls, want in ((False, "s=1; HttpOnly"), (True, "s=1; HttpOnly; Secure")):
        _, headers, _ = _call(WsgiApp(_Router(resp), tls=tls), "GET", "/api/x")  # type: ignore[arg-type]
        assert headers["Set-Cookie"] == want


def test_files(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "disc.iso"
    path.write_bytes(data)
    # A file range alone: the server's file_wrapper, positioned at the range, stopping at its end.
    router = _Router(Response.stream(str(path), 1000, BLOCK + 5, "application/octet-stream"))
    status, headers, body = _call(WsgiApp(router, tls=False), "GET", "/f")  # type: ignore[arg-type]
    assert isinstance(body, _Wrapper) and isinstance(body.filelike, FileRange)
    assert body.filelike.tell() == 1000  # where sendfile starts
    assert headers["Content-Length"] == str(BLOCK + 5)
    assert b"".join(body) == data[1000 : 1000 + BLOCK + 5]
    body.filelike.close()
    # With a tail: a generator of the range and the tail.
    router.response = Response.stream(str(path), 7, 300_000, "application/x", tail=b"TAIL")
    status, headers, body = _call(WsgiApp(router, tls=False), "GET", "/f")  # type: ignore[arg-type]
    assert not isinstance(body, _Wrapper)
    assert b"".join(body) == data[7:300_007] + b"TAIL"
    assert headers["Content-Length"] == str(300_004)
    # The file gone: a 500 with a message, before any byte.
    router.response = Response.stream(str(tmp_path / "gone.iso"), 0, 10, "application/x")
    status, _, body = _call(WsgiApp(router, tls=False), "GET", "/f")  # type: ignore[arg-type]
    assert status == "500 Internal Server Error" and b"internal error" in b"".join(body)


def test_wsgi_does_not_import_the_server() -> None:
    """Issue 23: server.py imports wsgi.py, never the other way (not even for type checking):
    the WSGI layer names what it needs of the application as a Protocol."""
    import ast

    import distro_builder.smart_installer.wsgi as wsgi

    tree = ast.parse(Path(wsgi.__file__).read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert "distro_builder.smart_installer.server" not in imported
