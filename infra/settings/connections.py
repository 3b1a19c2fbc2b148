"""The database connection budget: what the services, their sidecars and the jobs may open
at max replicas, against what the connection pool and the database accept.

Per pod of a service:

- its SQLAlchemy pool, `dbPoolSize` connections and as many again as overflow
  (apps/shared/db.py): through the connection pool when there is one, else direct;
- its Dapr sidecar's state store, `maxConns` 1 (direct: pgx prepares and caches
  statements by default, which a transaction pooler breaks, Dapr's PostgreSQL state
  store docs, `queryExecMode`);
- sessions of its own outside the pool (`apps.contracts.services.App.session_connections`:
  none today; the backend's outbox LISTEN went with migration 0006), direct;

and once, the migration Job and the grants Job (direct: a migration is one session).

A DigitalOcean connection pool holds up to `size` backend connections, and those count
against the plan's limit together with every direct connection ("Note that these are
shared across all connection pools in a cluster", `managed_connection_limit`). So with a
pool: the services' pooled peak <= pool size, and pool size + direct peak <= the limit.
PgBouncer could queue more clients than its size; the budget does not count on that, so
no request ever waits for a server connection because of the pool's size.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.contracts.services import APPS
from infra.settings.database import (
    ONE_OFF_CONNECTIONS,
    STATE_STORE_MAX_CONNECTIONS,
    InClusterDatabase,
    ManagedDatabase,
    managed_connection_limit,
)
from infra.settings.stack import Settings
from infra.settings.types import CONFIG_NAMESPACE

IN_CLUSTER_CONNECTION_LIMIT = 100 - 3
"""PostgreSQL's defaults: `max_connections` 100 ("typically 100 connections"), of which
`superuser_reserved_connections` 3 are kept for superusers (runtime-config-connection,
https://www.postgresql.org/docs/17/runtime-config-connection.html). Shown, not enforced:
the image may be configured otherwise."""


@dataclass(frozen=True)
class ServiceConnections:
    """One service's connections at its max replicas."""

    app: str
    max_replicas: int
    pool_size: int
    """DB_POOL_SIZE."""
    sessions: int
    """Direct sessions per pod outside its pool (LISTEN, session advisory locks)."""

    @property
    def pooled_per_pod(self) -> int:
        """SQLAlchemy's pool plus as many again as overflow."""
        return 2 * self.pool_size

    @property
    def direct_per_pod(self) -> int:
        """The sidecar's state store and the sessions of its own."""
        return STATE_STORE_MAX_CONNECTIONS + self.sessions

    @property
    def pooled(self) -> int:
        return self.max_replicas * self.pooled_per_pod

    @property
    def direct(self) -> int:
        return self.max_replicas * self.direct_per_pod


@dataclass(frozen=True)
class ConnectionBudget:
    """Every connection a stack may open, and what takes them."""

    services: tuple[ServiceConnections, ...]
    one_off: int
    pool_size: int | None
    """The DigitalOcean connection pool's size; None = the services connect directly."""
    limit: int | None
    """What the database accepts; None when the program cannot know (external, shared)."""
    limit_source: str
    enforced: bool
    """Whether exceeding `limit` fails the plan (DigitalOcean's documented plan limit)."""
    database_size: str | None = None

    @property
    def pooled(self) -> int:
        """The services' pools at max replicas (through the pool when there is one)."""
        return sum(service.pooled for service in self.services)

    @property
    def direct(self) -> int:
        """Connections that always go straight to the database."""
        return sum(service.direct for service in self.services) + self.one_off

    @property
    def database(self) -> int:
        """Backend connections the database may have to hold at once."""
        through_pool = self.pool_size if self.pool_size is not None else self.pooled
        return through_pool + self.direct

    @property
    def headroom(self) -> int | None:
        """What the limit leaves (on staging: for the dev-/pr- stacks on its database)."""
        return None if self.limit is None else self.limit - self.database

    def errors(self) -> list[str]:
        """Each overrun, naming the keys that set it."""
        ns = CONFIG_NAMESPACE
        detail = ", ".join(
            f"{s.app} {s.max_replicas} × {s.pooled_per_pod} = {s.pooled}" for s in self.services
        )
        errors: list[str] = []
        if self.pool_size is not None and self.pooled > self.pool_size:
            errors.append(
                f"{ns}:apps.*.maxReplicas/dbPoolSize, {ns}:database.pool.size: the services "
                f"may open {self.pooled} connections to the pool at max replicas ({detail}: "
                f"max replicas × 2 × dbPoolSize); database.pool.size is {self.pool_size}: "
                "lower them or raise it"
            )
        if not self.enforced or self.limit is None or self.database <= self.limit:
            return errors
        direct = (
            f"direct {self.direct}: sidecars' state stores and sessions "
            f"{self.direct - self.one_off}, jobs {self.one_off}"
        )
        if self.pool_size is not None:
            errors.append(
                f"{ns}:database.pool.size: got {self.pool_size}; with the {direct} the "
                f"database would need {self.database} connections and database.size "
                f"{self.database_size!r} accepts {self.limit} ({self.limit_source}): lower "
                "it (and the services' pools) or pick a larger size"
            )
        else:
            errors.append(
                f"{ns}:apps.*.maxReplicas/dbPoolSize: the services may open {self.database} "
                f"database connections at max replicas (pools {self.pooled}: {detail}; "
                f"{direct}); database.size {self.database_size!r} accepts {self.limit} "
                f"({self.limit_source}): lower them, pick a larger size or add database.pool"
            )
        return errors


def connection_budget(settings: Settings) -> ConnectionBudget:
    """The stack's connection budget, from its settings."""
    services = tuple(
        ServiceConnections(
            app=app.app_id.value,
            max_replicas=settings.apps.service(app.app_id).max_replicas,
            pool_size=settings.apps.service(app.app_id).db_pool_size,
            sessions=app.session_connections,
        )
        for app in APPS
    )
    database = settings.database
    if isinstance(database, ManagedDatabase):
        return ConnectionBudget(
            services=services,
            one_off=ONE_OFF_CONNECTIONS,
            pool_size=database.pool.size if database.pool else None,
            limit=managed_connection_limit(database.size),
            limit_source="DigitalOcean: 25 per GB of RAM, 3 reserved",
            enforced=True,
            database_size=database.size,
        )
    if isinstance(database, InClusterDatabase):
        return ConnectionBudget(
            services=services,
            one_off=ONE_OFF_CONNECTIONS,
            pool_size=None,
            limit=IN_CLUSTER_CONNECTION_LIMIT,
            limit_source="PostgreSQL's default max_connections 100, 3 for superusers",
            enforced=False,
        )
    source = "the base stack's database" if database.mode == "shared" else "external server"
    return ConnectionBudget(
        services=services,
        one_off=ONE_OFF_CONNECTIONS,
        pool_size=None,
        limit=None,
        limit_source=f"unknown here ({source})",
        enforced=False,
    )
