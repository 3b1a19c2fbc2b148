"""`todo:database`: in-cluster, managed, external or shared PostgreSQL, and the
connection limits the services must fit in."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from infra.settings.types import DoDatabaseSize, MemoryQuantity, Resources, SettingsModel


class InClusterDatabase(SettingsModel):
    """PostgreSQL as a StatefulSet in the apps namespace (minikube)."""

    mode: Literal["inCluster"]
    image: Annotated[str, StringConstraints(pattern=r"^[a-z0-9./-]+:[A-Za-z0-9_.-]+$")] = (
        "docker.io/library/postgres:17.6-alpine"
    )
    storage: MemoryQuantity = "2Gi"
    resources: Resources = Resources(
        cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="512Mi"
    )

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if value.endswith(":latest"):
            raise ValueError("must be pinned to a version tag, not ':latest'")
        return value


IN_CLUSTER_DATABASE_PORT = 5432
MANAGED_DATABASE_PORT = 25060  # DigitalOcean's PostgreSQL port
MANAGED_POOL_PORT = 25061
"""A DigitalOcean connection pool's port (API reference, connection pool `connection`:
`port: 25061`, https://docs.digitalocean.com/reference/api/digitalocean/#tag/Databases)."""
_SINGLE_NODE_DATABASE_SIZES = frozenset({"db-s-1vcpu-1gb"})
STATE_STORE_MAX_CONNECTIONS = 1
"""The Dapr state store's pool per sidecar (its `maxConns`)."""
ONE_OFF_CONNECTIONS = 2
"""The migrations Job and the grants Job."""


def managed_connection_limit(size: str) -> int | None:
    """Backend connections a DigitalOcean PostgreSQL plan accepts, shared by its pools and
    direct clients: "25 backend server connections are allowed for every 1GB of RAM. Three
    are reserved for maintenance. For example, a primary node with 1 GB of RAM allows for a
    maximum of 22 backend server connections while one with 4 GB would allow for 97. Note
    that these are shared across all connection pools in a cluster." (API reference,
    connection pool `size`; "How to Manage Connection Pools",
    https://docs.digitalocean.com/products/databases/postgresql/how-to/manage-connection-pools/)."""
    match = re.search(r"-([0-9]+)gb$", size)
    return 25 * int(match.group(1)) - 3 if match else None


class ConnectionPool(SettingsModel):
    """A DigitalOcean connection pool (PgBouncer) in front of the services' database."""

    size: Annotated[int, Field(ge=1, le=10000)]
    """Backend connections the pool may open: at least what the services may open at max
    replicas, at most what the plan leaves after the direct connections (rules.py)."""
    mode: Literal["transaction"] = "transaction"
    """PgBouncer's pool mode. Only `transaction`: the apps are set up for it
    (DB_TRANSACTION_POOLING: no server-side prepared statements, no session state)."""


class ManagedDatabase(SettingsModel):
    """DigitalOcean managed PostgreSQL, reachable only from the cluster."""

    mode: Literal["managed"]
    version: Literal["15", "16", "17"] = "17"
    size: DoDatabaseSize = "db-s-1vcpu-1gb"
    node_count: Annotated[int, Field(ge=1, le=3)] = 1
    """1 = primary only; 2 or 3 = primary plus standby nodes (automatic failover)."""
    pool: ConnectionPool | None = None
    """`pool: {size: N}`: the services connect through a connection pool of N; unset, they
    connect straight to the database."""

    @model_validator(mode="after")
    def _standby_size(self) -> Self:
        # DigitalOcean supports standby nodes only on plans with 2 GB of RAM or more.
        if self.node_count > 1 and self.size in _SINGLE_NODE_DATABASE_SIZES:
            raise ValueError(
                f"nodeCount {self.node_count} (standby nodes) needs a plan with >= 2 GB RAM; "
                f"size {self.size!r} allows only nodeCount 1"
            )
        return self


class ExternalDatabase(SettingsModel):
    """A PostgreSQL server run elsewhere; its URL is the secret `todo:databaseUrl`."""

    mode: Literal["external"]
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    """Egress to this port is allowed from the apps."""


class SharedDatabase(SettingsModel):
    """Own database and user on the base stack's managed PostgreSQL (ephemeral stacks)."""

    mode: Literal["shared"]


DatabaseSettings = Annotated[
    InClusterDatabase | ManagedDatabase | ExternalDatabase | SharedDatabase,
    Field(discriminator="mode"),
]
