"""What an ephemeral stack takes from its base stack (a StackReference, typed).

The base stack (staging) exports these names; see `infra/__main__.py`. An ephemeral stack
finds the cluster by name (and fetches its own fresh credential), creates its database
on the base stack's managed PostgreSQL, and reaches the base stack's Dapr control plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

# Output names of a base stack that ephemeral stacks read (the contract with __main__).
CLUSTER_NAME = "clusterName"
DATABASE_CLUSTER_ID = "databaseClusterId"
DATABASE_ADMIN_URL = "databaseAdminUrl"
VPC_IP_RANGE = "vpcIpRange"
NAMESPACES = "namespaces"


@dataclass(frozen=True)
class BaseStackArgs:
    """Which stack to read."""

    stack: str
    """Fully qualified name, `<org>/todo/staging`."""


class BaseStack(pulumi.ComponentResource):
    """The base stack's outputs an ephemeral stack builds on."""

    cluster_name: pulumi.Output[str]
    """Name of the DOKS cluster."""
    database_cluster_id: pulumi.Output[str]
    """The managed PostgreSQL cluster id."""
    database_admin_url: pulumi.Output[str]
    """Private admin URL of the managed PostgreSQL (secret)."""
    vpc_ip_range: pulumi.Output[str]
    """The VPC range the database is reached in."""
    dapr_namespace: pulumi.Output[str]
    """The Dapr control-plane namespace."""
    monitoring_namespace: pulumi.Output[str]
    """Prometheus's namespace."""
    gateway_namespace: pulumi.Output[str]
    """The ingress gateway's namespace."""

    def __init__(
        self, name: str, args: BaseStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:base_stack:BaseStack", name, None, opts)
        ref = pulumi.StackReference(
            f"{name}-ref", stack_name=args.stack, opts=pulumi.ResourceOptions(parent=self)
        )

        def required(key: str) -> pulumi.Output[Any]:
            def check(value: Any) -> Any:
                if value is None:
                    raise ValueError(
                        f"base stack {args.stack!r} has no output {key!r}: deploy it first, "
                        "with database.mode 'managed'"
                    )
                return value

            return ref.get_output(key).apply(check)

        self.cluster_name = required(CLUSTER_NAME)
        self.database_cluster_id = required(DATABASE_CLUSTER_ID)
        # Secret in the base stack; kept secret here whatever the reference reports.
        self.database_admin_url = pulumi.Output.secret(required(DATABASE_ADMIN_URL))
        self.vpc_ip_range = required(VPC_IP_RANGE)
        namespaces = required(NAMESPACES)
        self.dapr_namespace = namespaces.apply(lambda ns: str(ns["dapr"]))
        self.monitoring_namespace = namespaces.apply(lambda ns: str(ns["monitoring"]))
        self.gateway_namespace = namespaces.apply(lambda ns: str(ns["gateway"]))
        self.register_outputs({"cluster_name": self.cluster_name})
