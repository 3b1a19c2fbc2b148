"""The Kubernetes cluster and the provider that everything in it is created with.

Three ways to get one: a DOKS cluster of our own (cloud stacks), an existing DOKS cluster
by name (ephemeral stacks, on the base stack's cluster), or an existing kubeconfig context
(minikube, kind: no cloud resource at all).

DOKS kubeconfig tokens expire after seven days, so the kubeconfig stored in the cluster
resource's state goes stale between runs. The provider is therefore built from the
`get_kubernetes_cluster` data source, which returns a fresh credential on every run
(and `destroy` runs the program for the same reason: `pulumi destroy --run-program`).

Nothing here reads the cluster's `ipv4_address`: pulumi-digitalocean documents that it
"will not be set if high availability is configured", and DOKS (Cilium) does not match
the API server by address anyway. NetworkPolicies reach the API server through
`ApiServerAccess` instead: Cilium entities on DOKS, an address only on a local cluster.

`pulumi_digitalocean` is imported only on the DOKS paths: importing it costs about two
seconds, which a minikube plan should not pay.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from infra.settings import CONFIG_NAMESPACE, DoksCluster, LocalCluster, SettingsError

if TYPE_CHECKING:
    import pulumi_digitalocean as do

CLUSTER_VERSION_OUTPUT = "clusterVersion"
"""The stack output that remembers the version the cluster runs (read back next run)."""


@dataclass(frozen=True)
class ApiServerAccess:
    """How pods reach the API server, and how its admission-webhook calls reach pods."""

    cni: Literal["generic", "cilium"]
    """`cilium`: CiliumNetworkPolicy entities; `generic`: Kubernetes `ipBlock`s."""
    cidr: str | None = None
    """The API server as pods reach it after DNAT (generic only)."""
    port: int | None = None
    """Its port after DNAT (generic only)."""

    def __post_init__(self) -> None:
        if self.cni == "generic" and (not self.cidr or self.port is None):
            raise ValueError("generic API-server access needs the API server's CIDR and port")


CILIUM = ApiServerAccess(cni="cilium")


@dataclass(frozen=True)
class ClusterArgs:
    """How to reach (or create) the cluster."""

    resource_prefix: str
    """Prefix of cloud resource names, unique per stack (`todo-prod`)."""
    settings: LocalCluster | DoksCluster | None = None
    """The stack's own cluster: an existing kubeconfig context, or a DOKS cluster to create
    in its own VPC."""
    existing_cluster_name: pulumi.Input[str] | None = None
    """Use an existing DOKS cluster by name (an ephemeral stack on the base stack's)."""

    def __post_init__(self) -> None:
        if (self.settings is None) == (self.existing_cluster_name is None):
            raise ValueError("ClusterArgs needs exactly one of settings, existing_cluster_name")


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
    version: pulumi.Output[str] | None
    """The Kubernetes version this stack asked DOKS for; None unless it created the cluster."""
    vpc_id: pulumi.Output[str] | None
    """The VPC the managed database joins; None unless this stack created the cluster."""
    vpc_ip_range: pulumi.Output[str] | None
    """The VPC range (egress to the managed database); None for a local context."""
    api_server: ApiServerAccess
    """How NetworkPolicies reach the API server."""

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:cluster:Cluster", name, None, opts)
        self.kubeconfig = None
        self.cluster_id = None
        self.cluster_name = None
        self.version = None
        self.vpc_id = None
        self.vpc_ip_range = None
        # DOKS runs Cilium; a local cluster says which CNI it has.
        self.api_server = CILIUM
        if isinstance(args.settings, LocalCluster):
            self.provider = k8s.Provider(
                f"{name}-k8s",
                context=args.settings.kube_context,
                opts=pulumi.ResourceOptions(parent=self),
            )
            if args.settings.cni == "generic":
                self.api_server = ApiServerAccess(
                    cni="generic",
                    cidr=args.settings.api_server_cidr,
                    port=args.settings.api_server_port,
                )
        elif isinstance(args.settings, DoksCluster):
            self._create_doks(name, args.resource_prefix, args.settings)
        else:
            assert args.existing_cluster_name is not None
            self._use_existing(name, args.existing_cluster_name)
        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "cluster_id": self.cluster_id,
                "cluster_name": self.cluster_name,
                "version": self.version,
                "vpc_ip_range": self.vpc_ip_range,
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
        cluster = do.KubernetesCluster(
            f"{name}-doks",
            name=prefix,
            region=settings.region,
            version=self._kubernetes_version(name, prefix, settings.version_prefix),
            vpc_uuid=vpc.id,
            # VPC-native: pods and Services get ranges of their own, routable in the VPC.
            # DOKS provides the Gateway API CRDs only on such clusters (from 1.33).
            cluster_subnet=settings.cluster_subnet,
            service_subnet=settings.service_subnet,
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
        self.version = cluster.version
        self.vpc_id = vpc.id
        self.vpc_ip_range = vpc.ip_range
        # The data source runs after the cluster exists and hands out a fresh token.
        credentials = do.get_kubernetes_cluster_output(
            name=cluster.name,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[cluster]),
        )
        self._provider_from(name, credentials)

    def _kubernetes_version(self, name: str, cluster_name: str, prefix: str) -> pulumi.Output[str]:
        """The newest offered version with the prefix, never below the one running.

        `get_kubernetes_versions(version_prefix=...)` returns only versions DigitalOcean
        offers now, so a prefix it stopped offering yields none: that is refused here with
        the versions it does offer. A cluster DigitalOcean upgraded past the prefix (auto
        upgrades, forced end-of-life upgrades) keeps its version: DOKS cannot downgrade,
        and asking it to would fail the update. The running version is the one this stack
        exported last time, read back through a reference to the stack itself (the
        pattern in pulumi/pulumi#3722).
        """
        import pulumi_digitalocean as do

        invoke = pulumi.InvokeOutputOptions(parent=self)
        matching = do.get_kubernetes_versions_output(version_prefix=prefix, opts=invoke)
        offered = do.get_kubernetes_versions_output(opts=invoke)
        itself = pulumi.StackReference(
            f"{name}-previous",
            stack_name=f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}",
            opts=pulumi.ResourceOptions(parent=self),
        )

        def running_version(deployed: Any) -> pulumi.Output[str]:
            # A stack that deployed its cluster before asks DigitalOcean what it runs now
            # (the export is as old as the last update; a forced upgrade may be newer). A
            # new stack has no cluster yet, and the data source would fail on the name.
            if not deployed:
                return pulumi.Output.from_input("")
            return do.get_kubernetes_cluster_output(name=cluster_name, opts=invoke).version

        running: pulumi.Output[str] = itself.get_output(CLUSTER_VERSION_OUTPUT).apply(
            running_version
        )
        return pulumi.Output.all(matching.valid_versions, offered.valid_versions, running).apply(
            lambda values: choose_version(prefix, values[0] or [], values[1] or [], values[2])
        )

    def _use_existing(self, name: str, cluster_name: pulumi.Input[str]) -> None:
        import pulumi_digitalocean as do

        credentials = do.get_kubernetes_cluster_output(
            name=cluster_name, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.cluster_id = credentials.id
        self.cluster_name = credentials.name
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


_DOKS_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)-do\.(\d+)$")


def version_key(version: str) -> tuple[int, int, int, int]:
    """`1.34.1-do.2` → (1, 34, 1, 2), for ordering DOKS version slugs."""
    match = _DOKS_VERSION.match(version)
    if match is None:
        raise SettingsError(f"DigitalOcean returned a version slug of unknown form: {version!r}")
    major, minor, patch, revision = (int(part) for part in match.groups())
    return major, minor, patch, revision


def choose_version(
    prefix: str, matching: Sequence[str], offered: Sequence[str], running: Any
) -> str:
    """The version to ask DOKS for (see `Cluster._kubernetes_version`)."""
    if not matching:
        minors = sorted({".".join(v.split(".")[:2]) + "." for v in offered}, key=_minor_key)
        raise SettingsError(
            f"{CONFIG_NAMESPACE}:cluster.versionPrefix: got {prefix!r}; DigitalOcean offers no "
            f"Kubernetes version with it any more (it offers {minors or 'none'}): set "
            "versionPrefix to an offered minor version, at least the one the cluster runs"
        )
    newest = max(matching, key=version_key)
    if isinstance(running, str) and running and version_key(running) > version_key(newest):
        pulumi.log.warn(
            f"{CONFIG_NAMESPACE}:cluster.versionPrefix {prefix!r} is behind the version the "
            f"cluster runs ({running}, upgraded by DigitalOcean): keeping {running}, since "
            "DOKS cannot downgrade; raise versionPrefix to match"
        )
        return running
    return newest


def _minor_key(minor: str) -> tuple[int, ...]:
    return tuple(int(part) for part in minor.rstrip(".").split("."))
