"""The notification service (ASGI entry point `apps.notification.main:app`), architecture §6."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from apps.contracts.services import AppId
from apps.notification.routes import events, public
from apps.notification.settings import NotificationServiceSettings
from apps.notification.workers.webhooks import WebhookWorker
from apps.shared.service import open_database, service_app, start_service
from apps.shared.shutdown import open_shutdown
from apps.shared.sidecar_health import open_sidecar_probe

SERVICE = AppId.NOTIFICATION.value


def create_app(settings: NotificationServiceSettings | None = None) -> FastAPI:
    """Build the app; settings are read from the environment at startup unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = start_service(
            app, service=SERVICE, settings_cls=NotificationServiceSettings, given=settings
        )
        async with (
            open_shutdown(app, resolved),
            open_database(app, resolved),
            open_sidecar_probe(app, resolved),
        ):
            webhooks = WebhookWorker(engine=app.state.engine, settings=resolved)
            app.state.reminder_handler = events.ReminderHandler(
                session_factory=app.state.session_factory, webhooks=webhooks
            )
            webhooks.start()
            try:
                yield
            finally:
                await webhooks.stop(drain_seconds=resolved.shutdown_drain_seconds)

    app = service_app(
        service=SERVICE,
        title="Todo notification service",
        description="Notifications for due reminders: in-app and signed webhooks.",
        lifespan=lifespan,
    )
    app.include_router(public.router)
    app.include_router(public.settings_router)
    events.subscriptions.install(app)
    return app


app = create_app()
