"""managed mode: a DigitalOcean PostgreSQL cluster of the stack's own, in its VPC.

Standby nodes when `nodeCount` > 1; a firewall that admits only the DOKS cluster; the
apps connect through the private URI with a database and user of their own (tenant.py).

With `pool`, a DigitalOcean connection pool (PgBouncer) in transaction mode sits in front
of that database for the services: `digitalocean.DatabaseConnectionPool` (inputs
`cluster_id`, `name`, `mode`, `size`, `db_name`, `user`; outputs `host`, `private_host`,
`port`, `uri`, `private_uri`, `password`: the SDK's docstrings and
https://docs.digitalocean.com/reference/terraform/reference/resources/database_connection_pool/).
Its URI names the pool as the database and port 25061 (DigitalOcean API reference, the
connection pool's `connection`: `postgres://…@host:25061/backend-pool?sslmode=require`,
`database: backend-pool`). With `user` set, "all sessions connect to the database as"
that user rather than "as the inbound user": the pool logs in as the app's user.
"""

from __future__ import annotations

from urllib.parse import quote

import pulumi

from infra.components.database.args import DatabaseArgs, Source
from infra.components.database.tenant import Tenant, create_database_and_user
from infra.components.kube import child_of
from infra.settings import MANAGED_DATABASE_PORT, MANAGED_POOL_PORT, ManagedDatabase

MANAGED_PORT = MANAGED_DATABASE_PORT
POOL_PORT = MANAGED_POOL_PORT


def create_managed(
    parent: pulumi.Resource, name: str, args: DatabaseArgs, settings: ManagedDatabase
) -> Source:
    """The cluster, its firewall, and the app's database and user on it."""
    import pulumi_digitalocean as do

    if args.region is None or args.vpc_id is None or args.kubernetes_cluster_id is None:
        raise ValueError("a managed database needs region, vpc_id and kubernetes_cluster_id")
    cluster = do.DatabaseCluster(
        f"{name}-pg",
        name=f"{args.resource_prefix}-pg",
        engine="pg",
        version=settings.version,
        size=settings.size,
        region=args.region,
        node_count=settings.node_count,
        private_network_uuid=args.vpc_id,
        maintenance_windows=[{"day": "sunday", "hour": "04:00:00"}],
        tags=[args.resource_prefix, "todo"],
        opts=child_of(parent),
    )
    do.DatabaseFirewall(
        f"{name}-firewall",
        cluster_id=cluster.id,
        rules=[{"type": "k8s", "value": args.kubernetes_cluster_id}],
        opts=child_of(parent),
    )
    admin_url: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(cluster.user, cluster.password, cluster.private_host, cluster.port).apply(
            lambda v: (
                f"postgresql://{quote(str(v[0]), safe='')}:{quote(str(v[1]), safe='')}"
                f"@{v[2]}:{v[3]}/defaultdb?sslmode=require"
            )
        )
    )
    tenant = create_database_and_user(parent, name, args, cluster.id, admin_url)
    pooled_url = (
        _create_pool(parent, name, args, settings, cluster.id, tenant) if settings.pool else None
    )
    return Source(
        url=tenant.url,
        ports=(MANAGED_PORT, POOL_PORT) if pooled_url is not None else (MANAGED_PORT,),
        pooled_url=pooled_url,
        ready=tenant.ready,
        cluster_id=cluster.id,
        admin_url=admin_url,
    )


def _create_pool(
    parent: pulumi.Resource,
    name: str,
    args: DatabaseArgs,
    settings: ManagedDatabase,
    cluster_id: pulumi.Output[str],
    tenant: Tenant,
) -> pulumi.Output[str]:
    """The services' connection pool on the app's database, as the app's user; its
    private URI (secret: it carries the user's password)."""
    import pulumi_digitalocean as do

    assert settings.pool is not None
    pool = do.DatabaseConnectionPool(
        f"{name}-pool",
        cluster_id=cluster_id,
        # "A unique name for the connection pool. Must be between 3 and 60 characters."
        name=f"{args.database_name}-pool",
        mode=settings.pool.mode,
        size=settings.pool.size,
        db_name=tenant.database_name,
        user=tenant.user_name,
        opts=child_of(parent),
    )
    # Unset only if DigitalOcean gave no private address: then an empty URL, which the
    # apps refuse at startup naming DATABASE_URL, rather than a public route.
    return pulumi.Output.secret(pool.private_uri.apply(lambda uri: postgresql_scheme(uri or "")))


def postgresql_scheme(uri: str) -> str:
    """DigitalOcean hands out `postgres://` URIs; the apps' DATABASE_URL is `postgresql://`
    (architecture §10). libpq takes either as the same URI scheme."""
    if uri.startswith("postgres://"):
        return "postgresql://" + uri.removeprefix("postgres://")
    return uri
