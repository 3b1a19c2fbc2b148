"""The backend service: the task API (ASGI entry point `apps.backend.main:app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from apps.backend.pipeline import event_pipeline
from apps.backend.routes import pipeline as pipeline_routes
from apps.backend.routes import tasks as task_routes
from apps.backend.settings import BackendSettings
from apps.shared.auth import TokenVerifier
from apps.shared.logs import configure_logging, get_logger
from apps.shared.service import install_common, open_database
from apps.shared.settings import SettingsError, load_settings

SERVICE = "backend"


def _settings_or_exit(settings: BackendSettings | None) -> BackendSettings:
    if settings is not None:
        return settings
    try:
        return load_settings(BackendSettings)
    except SettingsError as exc:
        configure_logging(SERVICE)
        get_logger(__name__).error("startup failed", reason=str(exc))
        raise


def create_app(settings: BackendSettings | None = None) -> FastAPI:
    """Build the app; settings are read from the environment at startup unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = _settings_or_exit(settings)
        configure_logging(SERVICE, resolved.log_level)
        secret = resolved.auth_jwt_secret
        app.state.token_verifier = TokenVerifier.from_settings(
            secret=secret.get_secret_value() if secret else None,
            jwks_url=str(resolved.auth_jwks_url) if resolved.auth_jwks_url else None,
            audience=resolved.auth_audience,
        )
        token = resolved.app_api_token
        app.state.app_api_token = token.get_secret_value() if token else None
        app.state.settings = resolved
        async with open_database(app, resolved), event_pipeline(app, resolved, service=SERVICE):
            yield

    app = FastAPI(
        title="Todo backend",
        version="1.0.0",
        description="Tasks with priorities, tags, due dates, reminders, recurrence and search.",
        lifespan=lifespan,
    )
    install_common(app, service=SERVICE)
    app.include_router(task_routes.router)
    app.include_router(pipeline_routes.router)
    return app


app = create_app()
