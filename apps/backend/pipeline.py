"""The backend's part of the event pipeline: its Dapr access and the outbox relay.

`event_pipeline` runs inside the app's lifespan, after the database is open: it puts
the Dapr access on `app.state` and runs one outbox relay per replica until shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from apps.backend.outbox_relay import OutboxRelay
from apps.backend.settings import BackendSettings
from apps.shared.dapr import DaprAccess


@asynccontextmanager
async def event_pipeline(
    app: FastAPI, settings: BackendSettings, *, service: str
) -> AsyncIterator[None]:
    dapr = DaprAccess()
    app.state.dapr = dapr
    relay_settings = settings.outbox_relay
    relay: OutboxRelay | None = None
    if relay_settings.enabled:
        relay = OutboxRelay(
            engine=app.state.engine,
            dapr=dapr,
            database_url=settings.database_url.get_secret_value(),
            service=service,
            settings=relay_settings,
        )
        relay.start()
    app.state.outbox_relay = relay
    try:
        yield
    finally:
        if relay is not None:
            await relay.stop()
        await dapr.close()
