"""What every service app has: error handlers, request ids, metrics, health and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from pydantic import BaseModel

from apps.shared.auth import verifier_from_settings
from apps.shared.db import create_db_engine, database_reachable, make_session_factory
from apps.shared.errors import install_error_handlers
from apps.shared.http_limits import (
    BodyLimitMiddleware,
    BodyTooLarge,
    body_too_large_handler,
    header_limit,
)
from apps.shared.logs import configure_logging, get_logger
from apps.shared.metrics import HttpMetricsMiddleware, add_metrics_route
from apps.shared.request_context import RequestContextMiddleware
from apps.shared.settings import AuthSettings, ServiceSettings, SettingsError, load_settings
from apps.shared.shutdown import SHUTDOWN_CHECK, is_draining
from apps.shared.sidecar_health import SIDECAR_CHECK, SidecarProbe
from apps.shared.tracing import TracingSettings, instrument_app, instrument_engine

SettingsT = TypeVar("SettingsT", bound=AuthSettings)


# For every service's FastAPI(telemetry=...). The services report through their own
# Prometheus metrics and JSON logs (architecture §10); their traces come from
# opentelemetry-instrumentation-fastapi (apps.shared.tracing), so FastAPI's built-in
# OpenTelemetry hooks stay off (they would look the global providers up on every request).
NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class Health(BaseModel):
    status: str


class NotReady(BaseModel):
    """`/readyz`'s 503 body: which checks failed (`shutting-down`, `database`,
    `dapr-sidecar`), nothing more."""

    status: str = "not ready"
    failing: list[str]


DATABASE_CHECK = "database"
# What `app.state.sidecar_probe` holds when no lifespan opened it: readiness then fails
# (closed), since a service that forgot `open_sidecar_probe` would never check.
_NOT_OPENED = object()


def service_app(
    *,
    service: str,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
) -> FastAPI:
    """A service's FastAPI app with what every service has (`install_common`)."""
    app = FastAPI(
        title=title,
        version="1.0.0",
        description=description,
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
    )
    install_common(app, service=service)
    return app


def install_common(app: FastAPI, *, service: str) -> None:
    """Error handlers, request-id and metrics middleware, /healthz, /readyz and /metrics.

    `/readyz` reports ready when `app.state.engine` (set by `open_database`) answers and,
    unless DAPR_SIDECAR_REQUIRED is off, the Dapr sidecar does (`open_sidecar_probe`).
    `/healthz` (liveness) checks neither: a restart fixes neither.
    """
    install_error_handlers(app)
    app.add_exception_handler(BodyTooLarge, body_too_large_handler)
    # Tracing is decided when the app is built (middleware cannot be added once it
    # runs), from the OTEL_* / TODO_TRACES_FILE variables alone: off unless spans have
    # somewhere to go (apps.shared.tracing).
    instrument_app(app, service, load_settings(TracingSettings))
    # Added last = outermost: the request id is bound before metrics and routes run; the
    # body limit holds before routing, auth and parsing read the request.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(HttpMetricsMiddleware, service=service)
    app.add_middleware(RequestContextMiddleware)
    add_metrics_route(app)

    @app.get("/healthz", tags=["ops"], response_model=Health)
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=Health,
        responses={503: {"model": NotReady, "description": "not ready; names the failing checks"}},
    )
    async def readyz(request: Request) -> Health | JSONResponse:
        failing = await failing_checks(request.app)
        if failing:
            return JSONResponse(NotReady(failing=failing).model_dump(), status_code=503)
        return Health(status="ok")


async def failing_checks(app: FastAPI) -> list[str]:
    """Names of the readiness checks that fail now, both run at once."""

    async def database() -> bool:
        engine = getattr(app.state, "engine", None)
        return engine is not None and await database_reachable(engine)

    async def sidecar() -> bool:
        probe = getattr(app.state, "sidecar_probe", _NOT_OPENED)
        if probe is None:  # DAPR_SIDECAR_REQUIRED is off
            return True
        return isinstance(probe, SidecarProbe) and await probe.failure() is None

    database_ok, sidecar_ok = await asyncio.gather(database(), sidecar())
    failing = [
        name for name, ok in ((DATABASE_CHECK, database_ok), (SIDECAR_CHECK, sidecar_ok)) if not ok
    ]
    # A stopping service is never ready again (apps.shared.shutdown).
    return [SHUTDOWN_CHECK, *failing] if is_draining(app) else failing


def start_service(
    app: FastAPI, *, service: str, settings_cls: type[SettingsT], given: SettingsT | None
) -> SettingsT:
    """First step of every lifespan: settings, JSON logs and the auth state.

    Settings come from the environment unless `given` (tests). A missing or malformed
    variable is logged as one JSON line naming it before startup fails, so that a pod
    that cannot start says why in its log.
    """
    if given is not None:
        settings = given
    else:
        try:
            settings = load_settings(settings_cls)
        except SettingsError as exc:
            configure_logging(service)
            get_logger(service).error("startup failed", reason=str(exc))
            raise
    configure_logging(service, settings.log_level)
    app.state.settings = settings
    header_limit.max_header_bytes = settings.http_max_header_bytes
    app.state.token_verifier = verifier_from_settings(settings)
    token = settings.app_api_token
    app.state.app_api_token = token.get_secret_value() if token else None
    return settings


@asynccontextmanager
async def open_database(app: FastAPI, settings: ServiceSettings) -> AsyncIterator[None]:
    """Put `engine` and `session_factory` on `app.state` for the app's lifetime."""
    engine = create_db_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.db_pool_size,
        transaction_pooling=settings.db_transaction_pooling,
    )
    instrument_engine(engine)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    try:
        yield
    finally:
        await engine.dispose()
