"""managed mode: a DigitalOcean PostgreSQL cluster of the stack's own, in its VPC.

Standby nodes when `nodeCount` > 1; a firewall that admits only the DOKS cluster; the
apps connect through the private URI with a database and user of their own (tenant.py).
"""

from __future__ import annotations

from urllib.parse import quote

import pulumi

from infra.components.database.args import DatabaseArgs, Source
from infra.components.database.tenant import create_database_and_user
from infra.components.kube import child_of
from infra.settings import MANAGED_DATABASE_PORT, ManagedDatabase

MANAGED_PORT = MANAGED_DATABASE_PORT


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
    url, ready = create_database_and_user(parent, name, args, cluster.id, admin_url)
    return Source(
        url=url, port=MANAGED_PORT, ready=ready, cluster_id=cluster.id, admin_url=admin_url
    )
