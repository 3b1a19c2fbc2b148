"""A scriptable app for exercising the sidecar stand-in: it records what daprd-like calls it
gets and answers as each test tells it to.

It is not a double of the project's services (those run for real in tests/e2e); it is the
instrument that shows the stand-in keeps Dapr's side of the protocol.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

Answer = tuple[int, Any]  # status code, JSON body (None: empty body)


@dataclass
class Received:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class ProbeApp:
    """`subscriptions` is what GET /dapr/subscribe returns; `answer` decides each reply."""

    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    answer: Callable[[Received], Answer] = lambda received: (200, {"status": "SUCCESS"})
    received: list[Received] = field(default_factory=list)
    port: int = 0  # set by whoever serves it, for tests that need to point at it

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.app = FastAPI()

        @self.app.get("/dapr/subscribe")
        async def subscribe() -> Any:
            return self.subscriptions

        @self.app.api_route(
            "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        )
        async def anything(path: str, request: Request) -> Response:
            received = Received(
                path="/" + path,
                method=request.method,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=await request.body(),
                at=time.monotonic(),
            )
            with self._lock:
                self.received.append(received)
            status, body = self.answer(received)
            if body is None:
                return Response(status_code=status)
            return JSONResponse(body, status_code=status)

    def calls(self, path: str, method: str = "POST") -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path and r.method == method]

    def events(self, path: str) -> list[dict[str, Any]]:
        return [r.json() for r in self.calls(path)]


class ServerThread:
    """Serve an ASGI app with uvicorn on a loopback address (127.0.0.1 and a free port
    unless told), in a thread; `options` go to uvicorn.Config (e.g. ssl_certfile)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", lifespan="off", **options
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("probe app did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)
