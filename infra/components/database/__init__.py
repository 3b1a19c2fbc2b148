"""PostgreSQL for the services, and the Kubernetes Secrets that carry its URLs.

Four sources, one result (a Secret with key `url` holding a direct `postgresql://` URL),
each in a module of its own:

- managed: a DigitalOcean cluster in the stack's VPC, a database and a user, a firewall
  that admits only the DOKS cluster, private URI; with `pool`, a connection pool in
  transaction mode and a second Secret (`<name>-pool-url`, key `url`) with its URL: the
  services' DATABASE_URL. The migration Job, the Dapr state store and what needs a
  session of its own (DATABASE_DIRECT_URL) keep the direct one.
- shared: a database and user of their own on a base stack's managed cluster
  (ephemeral stacks).
- in_cluster: a hardened single-replica StatefulSet (minikube, kind).
- external: a URL from the secret config key `todo:databaseUrl`.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from infra.components.database.args import DatabaseArgs, SharedServer, Source
from infra.components.database.external import use_external
from infra.components.database.in_cluster import create_in_cluster
from infra.components.database.managed import create_managed
from infra.components.database.shared import create_shared
from infra.components.kube import child_of, labels
from infra.settings import InClusterDatabase, ManagedDatabase, SharedDatabase

__all__ = ["Database", "DatabaseArgs", "SharedServer"]


class Database(pulumi.ComponentResource):
    """A PostgreSQL database and the Secret that hands its URL to the apps."""

    secret_name: pulumi.Output[str]
    """Name of the Secret whose key `url` is the direct URL (migrations, the Dapr state
    store, DATABASE_DIRECT_URL; the services' DATABASE_URL too when there is no pool)."""
    service_secret_name: pulumi.Output[str]
    """Name of the Secret whose key `url` is the services' DATABASE_URL: the connection
    pool's when there is one, else the same Secret as `secret_name`."""
    transaction_pooling: bool
    """Whether the services' URL goes through a transaction-mode pool (DB_TRANSACTION_POOLING)."""
    ready: list[pulumi.Resource]
    """What must exist before anything connects (server, grants)."""
    ports: tuple[int, ...]
    """The ports clients connect to (for egress NetworkPolicies)."""
    cluster_id: pulumi.Output[str] | None
    """The managed cluster's id (exported for ephemeral stacks)."""
    admin_url: pulumi.Output[str] | None
    """The managed cluster's private admin URL (secret; exported for ephemeral stacks)."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:database:Database", name, None, opts)
        source = self._create_source(name, args)
        self.ports = source.ports
        self.ready = source.ready
        self.cluster_id = source.cluster_id
        self.admin_url = source.admin_url
        secret = k8s.core.v1.Secret(
            f"{name}-url",
            metadata=cast(
                Any,
                {
                    "namespace": args.namespace,
                    "labels": labels("database", "connection"),
                },
            ),
            type="Opaque",
            string_data=cast(Any, {"url": source.url}),
            opts=child_of(self),
        )
        self.secret_name = secret.metadata.apply(lambda m: m["name"])
        self.transaction_pooling = source.pooled_url is not None
        self.service_secret_name = (
            self._create_pool_secret(name, args, source.pooled_url)
            if source.pooled_url is not None
            else self.secret_name
        )
        self.register_outputs(
            {
                "secret_name": self.secret_name,
                "service_secret_name": self.service_secret_name,
                "cluster_id": self.cluster_id,
                "admin_url": self.admin_url,
            }
        )

    def _create_pool_secret(
        self, name: str, args: DatabaseArgs, url: pulumi.Output[str]
    ) -> pulumi.Output[str]:
        """The Secret with the connection pool's URL (key `url`), for the services."""
        secret = k8s.core.v1.Secret(
            f"{name}-pool-url",
            metadata=cast(
                Any,
                {
                    "namespace": args.namespace,
                    "labels": labels("database", "pooled-connection"),
                },
            ),
            type="Opaque",
            string_data=cast(Any, {"url": url}),
            opts=child_of(self),
        )
        return secret.metadata.apply(lambda m: m["name"])

    def _create_source(self, name: str, args: DatabaseArgs) -> Source:
        """The server (or the part of one) that the settings' mode asks for."""
        settings = args.settings
        if isinstance(settings, ManagedDatabase):
            return create_managed(self, name, args, settings)
        if isinstance(settings, SharedDatabase):
            return create_shared(self, name, args)
        if isinstance(settings, InClusterDatabase):
            return create_in_cluster(self, name, args, settings)
        return use_external(args, settings)
