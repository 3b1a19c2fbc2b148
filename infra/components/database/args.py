"""The database's inputs, and what each mode hands back to the component."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from infra.settings import ExternalDatabase, InClusterDatabase, ManagedDatabase, SharedDatabase


@dataclass(frozen=True)
class SharedServer:
    """A base stack's managed PostgreSQL, as its stack outputs describe it."""

    cluster_id: pulumi.Input[str]
    """The DigitalOcean database cluster id."""
    admin_url: pulumi.Input[str]
    """`postgresql://doadmin:...@private-host:port/defaultdb?sslmode=require` (secret)."""


@dataclass(frozen=True)
class DatabaseArgs:
    """Where PostgreSQL comes from and where its URL goes."""

    namespace: pulumi.Input[str]
    """The apps namespace: the URL Secret (and an in-cluster server) live there."""
    settings: InClusterDatabase | ManagedDatabase | ExternalDatabase | SharedDatabase
    """Which source, and its sizing."""
    resource_prefix: str
    """Prefix of cloud resource names (`todo-prod`)."""
    database_name: str = "todo"
    """The database the services use."""
    user_name: str = "todo"
    """The role the services connect as."""
    region: str | None = None
    """DigitalOcean region (managed)."""
    vpc_id: pulumi.Input[str] | None = None
    """The VPC the managed cluster joins (managed)."""
    kubernetes_cluster_id: pulumi.Input[str] | None = None
    """The only client the managed cluster's firewall admits (managed)."""
    shared_server: SharedServer | None = None
    """The base stack's server (shared)."""
    external_url: pulumi.Input[str] | None = None
    """The URL of an external server (external; secret)."""


@dataclass(frozen=True)
class Source:
    """What one mode made: the URLs, the ports, and what must exist before use."""

    url: pulumi.Output[str]
    """The direct `postgresql://` URL (secret): migrations, the Dapr state store, sessions."""
    ports: tuple[int, ...]
    """The ports clients connect to (the server's; a connection pool's)."""
    pooled_url: pulumi.Output[str] | None = None
    """The services' URL through a transaction-mode connection pool (secret), if any."""
    ready: list[pulumi.Resource] = field(default_factory=list)
    """What must exist before anything connects (server, grants)."""
    cluster_id: pulumi.Output[str] | None = None
    """The managed cluster's id (managed only)."""
    admin_url: pulumi.Output[str] | None = None
    """The managed cluster's private admin URL (managed only; secret)."""
