"""The HTTP plumbing shared by the JSON API, the agent API and the UI: requests, responses, routes.

Kept free of the standard library's server classes so the routes can be called directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from distro_builder.smart_installer.errors import BadRequest

SESSION_COOKIE = "stackops_session"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # from the route's pattern
    client: str = ""

    @classmethod
    def build(cls, method: str, target: str, headers: dict[str, str], body: bytes, client: str):
        path, _, qs = target.partition("?")
        try:
            query = {k: v[-1] for k, v in parse_qs(qs, strict_parsing=False).items()}
        except ValueError as e:
            raise BadRequest("malformed query string") from e
        return cls(
            method, path, query, {k.lower(): v for k, v in headers.items()}, body, {}, client
        )

    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    def cookie(self, name: str) -> str | None:
        raw = self.headers.get("cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadRequest("the request body is not UTF-8") from e

    def json(self) -> dict[str, Any]:
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise BadRequest("send the body as application/json")
        try:
            data = json.loads(self.text())
        except json.JSONDecodeError as e:
            raise BadRequest(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
        except RecursionError as e:  # json's decoder recurses once per [ or {
            raise BadRequest("malformed JSON: nested too deeply") from e
        except ValueError as e:  # int() past sys.get_int_max_str_digits() (4,300 digits)
            raise BadRequest(
                "malformed JSON: a number has too many digits", hint="no value here needs 4,300"
            ) from e
        if not isinstance(data, dict):
            raise BadRequest("the JSON body must be an object")
        _require_unicode(data)
        return data


def _require_unicode(data: Any) -> None:
    """BadRequest when a string of `data` holds a lone surrogate ("\\ud800"): valid JSON, but no
    text; it would fail later, when stored or sent back as UTF-8."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                bad = item[e.start].encode("unicode_escape").decode()
                raise BadRequest(
                    f"malformed JSON: a string holds a lone UTF-16 surrogate ({bad}), not text"
                ) from e


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    # A body streamed from a file instead: (path, offset, length), sent after `body` with
    # os.sendfile (the disc's files straight from the ISO); `body` is then a prefix, `tail`
    # a suffix (the initrd's appended layer).
    file: tuple[str, int, int] | None = None
    tail: bytes = b""

    @property
    def length(self) -> int:
        return len(self.body) + (self.file[2] if self.file else 0) + len(self.tail)

    @classmethod
    def stream(cls, path: str, offset: int, length: int, content_type: str, tail: bytes = b""):
        return cls(200, b"", content_type, [], (path, offset, length), tail)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        return cls(status, text.encode(), "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), f"{content_type}; charset=utf-8")


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def route(method: str, pattern: str, handler: Handler) -> Route:
    """`pattern` with <name> segments ([A-Za-z0-9_.-]+)."""
    regex = re.sub(r"<(\w+)>", r"(?P<\1>[A-Za-z0-9_.-]{1,64})", pattern)
    return Route(method, re.compile(f"{regex}/?"), handler)
