"""Request size limits: one request must not be able to exhaust a pod's memory.

Bodies: `BodyLimitMiddleware` (outermost, so before auth, routing and parsing) answers
413 with the usual error body when `Content-Length` exceeds `HTTP_MAX_BODY_BYTES`
(without reading the body), and stops a chunked body as soon as the bytes received
exceed it. The 413 carries `Connection: close`, so the server stops reading the rest.

Headers: the images run `uvicorn apps.<service>.main:app`, which picks the httptools
parser (`uvicorn[standard]`), and httptools has no limit on the request line or header
sizes. `guard_httptools_headers` makes uvicorn's httptools protocol count the bytes of
a request's head as they arrive and answer 431 (and close) once they exceed
`HTTP_MAX_HEADER_BYTES`, before the parser has buffered them. (Under `--http h11`, h11's
own limit of 16 KiB applies and uvicorn answers 400.)
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    """The limit the patched protocol reads (set from the settings at startup)."""

    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES


header_limit = _HeaderLimit()
_GUARDED = "_todo_header_guard"


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


def guard_httptools_headers() -> None:
    """Make uvicorn's httptools protocol refuse request heads over `header_limit` (431).

    Idempotent; a no-op when httptools (or uvicorn) is not installed.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - images install uvicorn[standard]
        return
    if getattr(HttpToolsProtocol, _GUARDED, False):
        return
    data_received = HttpToolsProtocol.data_received
    on_headers_complete = HttpToolsProtocol.on_headers_complete
    on_message_complete = HttpToolsProtocol.on_message_complete

    def guarded_data_received(self: Any, data: bytes) -> None:
        state = self.__dict__
        if state.get("_head_done", False) is False:
            tail: bytes = state.get("_head_tail", b"")
            window = tail + data
            end = window.find(_HEAD_END)
            counted = len(data) if end < 0 else max(0, end + len(_HEAD_END) - len(tail))
            size = state.get("_head_bytes", 0) + counted
            state["_head_bytes"] = size
            state["_head_tail"] = window[-3:]
            limit = header_limit.max_header_bytes
            if size > limit:
                transport = self.transport
                if not transport.is_closing():
                    transport.write(header_response(limit))
                    transport.close()
                return
        data_received(self, data)

    def guarded_on_headers_complete(self: Any) -> None:
        self.__dict__["_head_done"] = True
        on_headers_complete(self)

    def guarded_on_message_complete(self: Any) -> None:
        state = self.__dict__
        state["_head_done"] = False
        state["_head_bytes"] = 0
        state["_head_tail"] = b""
        on_message_complete(self)

    HttpToolsProtocol.data_received = guarded_data_received  # type: ignore[method-assign]
    HttpToolsProtocol.on_headers_complete = guarded_on_headers_complete  # type: ignore[method-assign]
    HttpToolsProtocol.on_message_complete = guarded_on_message_complete  # type: ignore[method-assign]
    setattr(HttpToolsProtocol, _GUARDED, True)
