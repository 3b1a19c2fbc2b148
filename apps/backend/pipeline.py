"""The backend's part of the event pipeline: its Dapr access and the outbox relay.

`event_pipeline` runs inside the app's lifespan, after the database is open: it puts
the Dapr access on `app.state` and runs one outbox relay per replica until shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from apps.backend.outbox_relay import OutboxRelay, RelaySettings
from apps.shared.dapr import DaprAccess
from apps.shared.settings import ServiceSettings


class ReminderScanSettings(BaseSettings):
    """How much one cron-triggered scan claims, from `REMINDER_SCAN_*` variables."""

    model_config = SettingsConfigDict(env_prefix="REMINDER_SCAN_", frozen=True, extra="ignore")

    batch_size: int = Field(default=500, ge=1, le=5000, description="reminders per transaction")
    max_batches: int = Field(default=40, ge=1, le=1000, description="batches per scan call")


@asynccontextmanager
async def event_pipeline(
    app: FastAPI, settings: ServiceSettings, *, service: str
) -> AsyncIterator[None]:
    dapr = DaprAccess()
    app.state.dapr = dapr
    app.state.reminder_scan = ReminderScanSettings()
    relay_settings = RelaySettings()
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
