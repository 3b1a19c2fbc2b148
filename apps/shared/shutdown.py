"""Graceful shutdown: on SIGTERM, fail readiness first, then let the server drain.

The order a service stops in (the pod-side numbers are in
`infra/components/fastapi_service/shutdown.py`):

1. SIGTERM arrives. `/readyz` answers 503 with `shutting-down` among the failing checks
   at once, so whatever still routes by readiness stops sending new requests.
2. For `SHUTDOWN_GRACE_SECONDS` (default 0) the server keeps accepting and serving. In a
   pod the `preStop` sleep has already played this part before SIGTERM (endpoints drop a
   terminating pod whatever its readiness), so 0 is right there; elsewhere (docker, a
   bare process behind a load balancer that polls `/readyz`) a few seconds let the
   balancer notice.
3. uvicorn's own shutdown: it stops accepting, lets requests in flight finish (bounded by
   `--timeout-graceful-shutdown` / `UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN`), then runs the
   lifespan's exit.
4. The lifespan's exit, in reverse order of opening: background workers finish their
   round and release what they hold (`SHUTDOWN_DRAIN_SECONDS` each at most: the outbox
   relay's claimed rows, the webhook worker's leases), then the sidecar probe and the
   database pool close.

How: uvicorn installs its handlers with `signal.signal` before the lifespan starts (its
`Server.capture_signals`), so `open_shutdown` wraps the handler it finds for SIGTERM and
SIGINT and puts it back when the lifespan ends. A second signal during the grace period
goes straight to uvicorn (an impatient operator is not made to wait).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final

from fastapi import FastAPI

from apps.shared.logs import get_logger
from apps.shared.settings import ServiceSettings

SHUTDOWN_CHECK: Final = "shutting-down"
HANDLED_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)

_log = get_logger("apps.shutdown")

Handler = Callable[[int, FrameType | None], Any] | int | None


@dataclass
class ShutdownState:
    """`app.state.shutdown`: whether the service is stopping, and since when."""

    grace_seconds: float = 0.0
    draining_since: float | None = None
    _handed_over: bool = field(default=False, repr=False)

    @property
    def draining(self) -> bool:
        return self.draining_since is not None


def is_draining(app: FastAPI) -> bool:
    """True once a stop signal arrived (readiness then fails)."""
    state = getattr(app.state, "shutdown", None)
    return isinstance(state, ShutdownState) and state.draining


@asynccontextmanager
async def open_shutdown(app: FastAPI, settings: ServiceSettings) -> AsyncIterator[None]:
    """Put `shutdown` on `app.state` and wrap the server's stop signals for the lifespan."""
    state = ShutdownState(grace_seconds=settings.shutdown_grace_seconds)
    app.state.shutdown = state
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (tests drive the app in-process)
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, Handler] = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}

    def hand_over(sig: int) -> None:
        state._handed_over = True
        handler = previous[sig]
        if callable(handler):
            handler(sig, None)
        else:  # no server handler (SIG_DFL/SIG_IGN): behave as if none was wrapped
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            signal.raise_signal(sig)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        if state.draining:
            # A second signal: no more waiting.
            loop.call_soon_threadsafe(hand_over, sig)
            return
        state.draining_since = time.monotonic()
        _log.info(
            "stop signal received: readiness fails, draining",
            signal=signal.Signals(sig).name,
            grace_seconds=state.grace_seconds,
        )
        if state.grace_seconds <= 0:
            hand_over(sig)
        else:
            loop.call_soon_threadsafe(
                lambda: loop.call_later(
                    state.grace_seconds,
                    lambda: None if state._handed_over else hand_over(sig),
                )
            )

    for sig in HANDLED_SIGNALS:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for restored, handler in previous.items():
            if handler is not None:
                signal.signal(restored, handler)
