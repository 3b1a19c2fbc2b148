"""The backend service: the task API (ASGI entry point `apps.backend.main:app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from apps.backend.routes import internal, public
from apps.backend.settings import BackendSettings
from apps.backend.workers.outbox_relay import open_outbox_relay
from apps.contracts.services import AppId
from apps.shared.service import open_database, service_app, start_service
from apps.shared.shutdown import open_shutdown
from apps.shared.sidecar_health import open_sidecar_probe

SERVICE = AppId.BACKEND.value


def create_app(settings: BackendSettings | None = None) -> FastAPI:
    """Build the app; settings are read from the environment at startup unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = start_service(app, service=SERVICE, settings_cls=BackendSettings, given=settings)
        async with (
            open_shutdown(app, resolved),
            open_database(app, resolved),
            open_sidecar_probe(app, resolved),
            open_outbox_relay(app, resolved, service=SERVICE),
        ):
            yield

    app = service_app(
        service=SERVICE,
        title="Todo backend",
        description="Tasks with priorities, tags, due dates, reminders, recurrence and search.",
        lifespan=lifespan,
    )
    app.include_router(public.router)
    app.include_router(internal.router)
    return app


app = create_app()
