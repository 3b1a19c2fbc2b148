"""Request id per HTTP request: bound into every log line and echoed in the response."""

from __future__ import annotations

import logging
import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.shared.logs import get_logger

REQUEST_ID_HEADER = "x-request-id"
# A caller-supplied id is kept only when it is short and harmless to log.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_log = get_logger("apps.http")
# The level that decides whether the request line is written (apps.shared.logs reads
# the stdlib logger of the same name on every event). Asked here first: a request line
# dropped by the processor chain still cost ~8 µs of building and unwinding.
_LEVEL_OF = logging.getLogger("apps.http")


class RequestContextMiddleware:
    """Bind `request_id` for the request's log lines and log one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if _LEVEL_OF.isEnabledFor(logging.INFO):
                    _log.info(
                        "request",
                        method=scope["method"],
                        path=scope["path"],
                        status=status,
                        duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    )


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _ACCEPTABLE_ID.match(candidate) else None
    return None
