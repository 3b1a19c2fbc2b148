"""The Kubernetes cluster and the provider that everything in it is created with.

Three ways to get one: a DOKS cluster of our own (cloud stacks), an existing DOKS cluster
by name (ephemeral stacks, on the base stack's cluster), or an existing kubeconfig context
(minikube: no cloud resource at all).

DOKS kubeconfig tokens expire after seven days, so the kubeconfig stored in the cluster
resource's state goes stale between runs. The provider is therefore built from the
`get_kubernetes_cluster` data source, which returns a fresh credential on every run.

`pulumi_digitalocean` is imported only on the DOKS paths: importing it costs about two
seconds, which a minikube plan should not pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from infra.settings import DoksCluster, LocalCluster

if TYPE_CHECKING:
    import pulumi_digitalocean as do


@dataclass(frozen=True)
class ClusterArgs:
    """How to reach (or create) the cluster."""

    resource_prefix: str
    """Prefix of cloud resource names, unique per stack (`todo-prod`)."""
    local: LocalCluster | None = None
    """Use an existing kubeconfig context."""
    doks: DoksCluster | None = None
    """Create a DOKS cluster in its own VPC."""
    existing_cluster_name: pulumi.Input[str] | None = None
    """Use an existing DOKS cluster by name (an ephemeral stack on the base stack's)."""
    api_server_cidr: pulumi.Input[str] | None = None
    """Where the API server is, for egress NetworkPolicies (local and existing clusters)."""

    def __post_init__(self) -> None:
        sources = [self.local, self.doks, self.existing_cluster_name]
        if sum(source is not None for source in sources) != 1:
            raise ValueError("ClusterArgs needs exactly one of local, doks, existing_cluster_name")


class Cluster(pulumi.ComponentResource):
    """A Kubernetes cluster and an explicit provider for it."""

    provider: k8s.Provider
    """The provider every in-cluster resource must use."""
    kubeconfig: pulumi.Output[str] | None
    """A fresh kubeconfig (secret); None for a local context."""
    cluster_id: pulumi.Output[str] | None
    """The DOKS cluster id (the database firewall admits it); None for a local context."""
    cluster_name: pulumi.Output[str] | None
    """The DOKS cluster name (ephemeral stacks look it up); None for a local context."""
    vpc_id: pulumi.Output[str] | None
    """The VPC the managed database joins; None unless this stack created the cluster."""
    vpc_ip_range: pulumi.Output[str] | None
    """The VPC range (egress to the managed database); None for a local context."""
    api_server_cidr: pulumi.Output[str]
    """The API server address as a CIDR, for egress NetworkPolicies."""
    api_server_port: int
    """The port pods reach the API server on (after the Service's DNAT)."""

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:cluster:Cluster", name, None, opts)
        self.kubeconfig = None
        self.cluster_id = None
        self.cluster_name = None
        self.vpc_id = None
        self.vpc_ip_range = None
        self.api_server_port = 443
        if args.local is not None:
            self.provider = k8s.Provider(
                f"{name}-k8s",
                context=args.local.kube_context,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.api_server_cidr = pulumi.Output.from_input(
                args.api_server_cidr or args.local.api_server_cidr
            )
            self.api_server_port = args.local.api_server_port
        elif args.doks is not None:
            self._create_doks(name, args.resource_prefix, args.doks)
        else:
            assert args.existing_cluster_name is not None
            self._use_existing(name, args.existing_cluster_name, args.api_server_cidr)
        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "cluster_id": self.cluster_id,
                "cluster_name": self.cluster_name,
                "vpc_ip_range": self.vpc_ip_range,
                "api_server_cidr": self.api_server_cidr,
            }
        )

    def _create_doks(self, name: str, prefix: str, settings: DoksCluster) -> None:
        import pulumi_digitalocean as do

        child = pulumi.ResourceOptions(parent=self)
        vpc = do.Vpc(
            f"{name}-vpc",
            name=f"{prefix}-vpc",
            region=settings.region,
            ip_range=settings.vpc_ip_range,
            description=f"{prefix}: cluster and database traffic stays private",
            opts=child,
        )
        versions = do.get_kubernetes_versions_output(
            version_prefix=settings.version_prefix, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        cluster = do.KubernetesCluster(
            f"{name}-doks",
            name=prefix,
            region=settings.region,
            version=versions.latest_version,
            vpc_uuid=vpc.id,
            ha=settings.ha,
            auto_upgrade=settings.auto_upgrade,
            # New nodes come up before old ones drain, so upgrades keep capacity.
            surge_upgrade=True,
            maintenance_policy={
                "day": settings.maintenance.day,
                "start_time": settings.maintenance.start_time,
            },
            node_pool={
                "name": f"{prefix}-default",
                "size": settings.node_pool.size,
                "auto_scale": True,
                "min_nodes": settings.node_pool.min_nodes,
                "max_nodes": settings.node_pool.max_nodes,
                "labels": {"todo.dev/pool": "default"},
                "tags": [prefix],
            },
            tags=[prefix, "todo"],
            opts=child,
        )
        self.cluster_id = cluster.id
        self.cluster_name = cluster.name
        self.vpc_id = vpc.id
        self.vpc_ip_range = vpc.ip_range
        self.api_server_cidr = cluster.ipv4_address.apply(lambda ip: f"{ip}/32")
        # The data source runs after the cluster exists and hands out a fresh token.
        credentials = do.get_kubernetes_cluster_output(
            name=cluster.name,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[cluster]),
        )
        self._provider_from(name, credentials)

    def _use_existing(
        self, name: str, cluster_name: pulumi.Input[str], api_server_cidr: pulumi.Input[str] | None
    ) -> None:
        import pulumi_digitalocean as do

        credentials = do.get_kubernetes_cluster_output(
            name=cluster_name, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.cluster_id = credentials.id
        self.cluster_name = credentials.name
        self.api_server_cidr = (
            pulumi.Output.from_input(api_server_cidr)
            if api_server_cidr is not None
            else credentials.ipv4_address.apply(lambda ip: f"{ip}/32")
        )
        self._provider_from(name, credentials)

    def _provider_from(
        self, name: str, credentials: pulumi.Output[do.GetKubernetesClusterResult]
    ) -> None:
        self.kubeconfig = pulumi.Output.secret(
            credentials.kube_configs.apply(lambda configs: configs[0].raw_config)
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self),
        )
