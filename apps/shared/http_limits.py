"""Request size limits: one request must not be able to exhaust a pod's memory.

Bodies: `BodyLimitMiddleware` (outermost, so before auth, routing and parsing) answers
413 with the usual error body when `Content-Length` exceeds `HTTP_MAX_BODY_BYTES`
(without reading the body), and stops a chunked body as soon as the bytes received
exceed it. The 413 carries `Connection: close`, so the server stops reading the rest.

Headers: the images run `uvicorn apps.<service>.main:app --http <PROTOCOL>`:
`LimitedHttpToolsProtocol`, uvicorn's httptools protocol (`uvicorn[standard]`), which
itself has no limit on the request line or header sizes, counting the bytes of a
request's head as they arrive and answering 431 (and closing) once they exceed
`HTTP_MAX_HEADER_BYTES`, before the parser has buffered them. In a cluster Envoy sits in
front as well (its HTTP connection manager's `max_request_headers_kb`, 60 KiB by default).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_HEADER_BYTES = 32 * 1024
_HEAD_END = b"\r\n\r\n"


class BodyTooLarge(HTTPException):
    """The request body exceeded the limit while the app was reading it.

    An `HTTPException` so that FastAPI's body reading passes it on (it turns other
    errors into a 400); `body_too_large_handler` answers it like the middleware does.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes")
        self.limit = limit


def _error_body(loc: list[str], msg: str, type_: str) -> bytes:
    return json.dumps({"detail": [{"loc": loc, "msg": msg, "type": type_}]}).encode()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limit(scope: Scope, default: int) -> int:
    app = scope.get("app")
    settings = getattr(getattr(app, "state", None), "settings", None)
    limit = getattr(settings, "http_max_body_bytes", None)
    return limit if isinstance(limit, int) else default


class BodyLimitMiddleware:
    """413 for request bodies over the limit (`app.state.settings.http_max_body_bytes`)."""

    def __init__(self, app: ASGIApp, *, default_limit: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.default_limit = default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = _limit(scope, self.default_limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(send, limit)


def _too_large_body(limit: int) -> bytes:
    return _error_body(["body"], f"request body is larger than {limit} bytes", "request_too_large")


async def _too_large(send: Send, limit: int) -> None:
    body = _too_large_body(limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def body_too_large_handler(_request: Request, exc: Exception) -> Response:
    """The exception handler for `BodyTooLarge` raised where a route reads its body."""
    assert isinstance(exc, BodyTooLarge)
    return Response(
        _too_large_body(exc.limit),
        status_code=413,
        media_type="application/json",
        headers={"connection": "close"},
    )


class _HeaderLimit:
    """The limit `LimitedHttpToolsProtocol` reads (set from the settings at startup)."""

    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES


header_limit = _HeaderLimit()

# What the images and `todo-local` pass to uvicorn's `--http`.
PROTOCOL = "apps.shared.http_limits:LimitedHttpToolsProtocol"


def header_response(limit: int) -> bytes:
    body = _error_body(
        ["header"], f"request line and headers are larger than {limit} bytes", "headers_too_large"
    )
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over `header_limit` (431).

    httptools buffers a request line and headers of any size, and uvicorn sets no limit
    on them (only its h11 protocol has one: `h11_max_incomplete_event_size`). This counts
    the bytes of each request's head as they arrive (`data_received` is asyncio's
    `Protocol` hook; `on_headers_complete`/`on_message_complete` are httptools' parser
    callbacks), answers 431 and closes once the head exceeds the limit, before the parser
    has buffered it. Selected with `uvicorn --http apps.shared.http_limits:LimitedHttp...`
    (uvicorn's `Config.load` imports a `module:Class` given as `http`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_done = False
        self._head_bytes = 0
        self._head_tail = b""

    def data_received(self, data: bytes) -> None:
        if not self._head_done:
            # The end of the head may straddle two reads: keep the last 3 bytes.
            window = self._head_tail + data
            end = window.find(_HEAD_END)
            counted = len(data) if end < 0 else max(0, end + len(_HEAD_END) - len(self._head_tail))
            self._head_bytes += counted
            self._head_tail = window[-3:]
            limit = header_limit.max_header_bytes
            if self._head_bytes > limit:
                if not self.transport.is_closing():
                    self.transport.write(header_response(limit))
                    self.transport.close()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The next request on a keep-alive connection gets its own budget.
        self._head_done = False
        self._head_bytes = 0
        self._head_tail = b""
        super().on_message_complete()
