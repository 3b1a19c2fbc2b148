"""shared mode: a database and user of their own on a base stack's managed cluster.

Ephemeral stacks use it: the base stack exports its cluster's id and admin URL.
"""

from __future__ import annotations

import pulumi

from infra.components.database.args import DatabaseArgs, Source
from infra.components.database.managed import MANAGED_PORT
from infra.components.database.tenant import create_database_and_user


def create_shared(parent: pulumi.Resource, name: str, args: DatabaseArgs) -> Source:
    """The app's database and user on the base stack's server."""
    server = args.shared_server
    if server is None:
        raise ValueError("database mode shared needs shared_server")
    tenant = create_database_and_user(
        parent, name, args, server.cluster_id, pulumi.Output.secret(server.admin_url)
    )
    return Source(url=tenant.url, ports=(MANAGED_PORT,), ready=tenant.ready)
