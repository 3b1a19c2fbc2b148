"""The services: ids, ports, roles, egress, public API prefixes and who may call whom."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class AppId(StrEnum):
    """Dapr app ids, also the Kubernetes names and the Kafka consumer groups (§10)."""

    BACKEND = "backend"
    NOTIFICATION = "notification"
    RECURRING = "recurring"


class Role(StrEnum):
    """What a service is for: it serves the API, or it works on events."""

    API = "api"
    WORKER = "worker"


APP_PORT: Final = 8000
"""The container port of every service (§10)."""
API_PREFIX: Final = "/api"
API_V1: Final = f"{API_PREFIX}/v1"
NOTIFICATIONS_PREFIX: Final = f"{API_V1}/notifications"
NOTIFICATION_SETTINGS_PREFIX: Final = f"{API_V1}/notification-settings"
RECURRENCE_PREFIX: Final = f"{API_V1}/recurrence"

# Dapr components the apps name (§10).
PUBSUB: Final = "pubsub"
STATE_STORE: Final = "statestore"
SECRET_STORE: Final = "secretstore"


@dataclass(frozen=True)
class App:
    """One service as the program deploys it and the local runner starts it."""

    app_id: AppId
    role: Role
    asgi: str
    """The ASGI application uvicorn serves."""
    local_port: int
    """Its port under `todo-local` (in a cluster every service listens on APP_PORT)."""
    public_api_prefixes: tuple[str, ...]
    """Paths of the public API host the edge routes to it; the longest prefix wins."""
    public_egress_ports: tuple[int, ...] = ()
    """Ports it may call on public addresses (webhook targets)."""
    session_connections: int = 0
    """Database connections per replica that need a session of their own, outside its
    pool (LISTEN, advisory locks held across transactions): never through a transaction
    pooler, given DATABASE_DIRECT_URL. No service needs one now (the outbox relay's
    LISTEN went with migration 0006)."""


APPS: Final = (
    App(
        AppId.BACKEND,
        Role.API,
        "apps.backend.main:app",
        8000,
        (API_PREFIX,),
    ),
    App(
        AppId.NOTIFICATION,
        Role.WORKER,
        "apps.notification.main:app",
        8001,
        (NOTIFICATIONS_PREFIX, NOTIFICATION_SETTINGS_PREFIX),
        public_egress_ports=(443, 80),
    ),
    App(AppId.RECURRING, Role.WORKER, "apps.recurring.main:app", 8002, (RECURRENCE_PREFIX,)),
)
APP_IDS: Final[tuple[str, ...]] = tuple(app.app_id.value for app in APPS)
PUBLIC_API_PREFIXES: Final[Mapping[str, tuple[str, ...]]] = {
    app.app_id: app.public_api_prefixes for app in APPS if app.public_api_prefixes
}


def app(app_id: str) -> App:
    """The service with this app id."""
    return next(candidate for candidate in APPS if candidate.app_id == app_id)


@dataclass(frozen=True)
class InvocationRule:
    """`caller` may invoke `callee` with `verb` on paths under `path_prefix` (Dapr
    accessControl); an app any rule names as callee denies every other call."""

    caller: AppId
    callee: AppId
    verb: str
    path_prefix: str


INTERNAL_TASKS_PREFIX: Final = "/internal/v1/tasks/"
NEXT_OCCURRENCE_PATH: Final = INTERNAL_TASKS_PREFIX + "{task_id}/next-occurrence"
"""The backend route the recurring service invokes when a recurring task completes."""
NEXT_OCCURRENCES_PATH: Final = INTERNAL_TASKS_PREFIX + "next-occurrences"
"""The same for many completions in one call (a bulk delivery's), one result each."""
ACCESS_RULES: Final = (
    InvocationRule(AppId.RECURRING, AppId.BACKEND, "POST", INTERNAL_TASKS_PREFIX),
)


@dataclass(frozen=True)
class CronBinding:
    """A Dapr `bindings.cron` component that POSTs to one app's route on a schedule."""

    name: str
    app_id: AppId
    route: str


REMINDER_SCAN: Final = CronBinding("reminder-scan", AppId.BACKEND, "/reminder-scan")
