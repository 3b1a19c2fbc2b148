"""The recurring-task service (ASGI entry point `apps.recurring.main:app`), architecture §7."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from apps.recurring.consumer import CompletionHandler
from apps.recurring.routes import SERVICE, install_routes
from apps.recurring.sandbox import RuleSandbox
from apps.recurring.settings import RecurringSettings
from apps.shared.auth import verifier_from_settings
from apps.shared.dapr import DaprAccess
from apps.shared.logs import configure_logging, get_logger
from apps.shared.service import install_common, open_database
from apps.shared.settings import SettingsError, load_settings


def _settings_or_exit(settings: RecurringSettings | None) -> RecurringSettings:
    if settings is not None:
        return settings
    try:
        return load_settings(RecurringSettings)
    except SettingsError as exc:
        configure_logging(SERVICE)
        get_logger(__name__).error("startup failed", reason=str(exc))
        raise


def create_app(settings: RecurringSettings | None = None) -> FastAPI:
    """Build the app; settings are read from the environment at startup unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = _settings_or_exit(settings)
        configure_logging(SERVICE, resolved.log_level)
        app.state.token_verifier = verifier_from_settings(resolved)
        token = resolved.app_api_token
        app.state.app_api_token = token.get_secret_value() if token else None
        sandbox = RuleSandbox(budget_seconds=resolved.rule_budget_seconds)
        dapr = DaprAccess()
        app.state.rule_sandbox = sandbox
        async with open_database(app, resolved):
            app.state.completion_handler = CompletionHandler(
                dapr=dapr, sandbox=sandbox, backend_app_id=resolved.backend_app_id
            )
            try:
                yield
            finally:
                await dapr.close()
                sandbox.close()

    app = FastAPI(
        title="Todo recurring-task service",
        version="1.0.0",
        description="Creates the next occurrence of completed recurring tasks.",
        lifespan=lifespan,
    )
    install_common(app, service=SERVICE)
    install_routes(app)
    return app


app = create_app()
