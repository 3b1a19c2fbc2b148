"""The recurring-task service (ASGI entry point `apps.recurring.main:app`), architecture §7."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from apps.contracts.services import AppId
from apps.recurring.routes import events, public
from apps.recurring.sandbox import RuleSandbox
from apps.recurring.settings import RecurringSettings
from apps.shared.dapr import DaprAccess
from apps.shared.service import open_database, service_app, start_service
from apps.shared.shutdown import open_shutdown
from apps.shared.sidecar_health import open_sidecar_probe

SERVICE = AppId.RECURRING.value


def create_app(settings: RecurringSettings | None = None) -> FastAPI:
    """Build the app; settings are read from the environment at startup unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = start_service(
            app, service=SERVICE, settings_cls=RecurringSettings, given=settings
        )
        sandbox = RuleSandbox(budget_seconds=resolved.rule_budget_seconds)
        dapr = DaprAccess()
        app.state.rule_sandbox = sandbox
        async with (
            open_shutdown(app, resolved),
            open_database(app, resolved),
            open_sidecar_probe(app, resolved),
        ):
            app.state.completion_handler = events.CompletionHandler(
                dapr=dapr, sandbox=sandbox, backend_app_id=resolved.backend_app_id
            )
            try:
                yield
            finally:
                await dapr.close()
                sandbox.close()

    app = service_app(
        service=SERVICE,
        title="Todo recurring-task service",
        description="Creates the next occurrence of completed recurring tasks.",
        lifespan=lifespan,
    )
    app.include_router(public.router)
    events.subscriptions.install(app)
    return app


app = create_app()
