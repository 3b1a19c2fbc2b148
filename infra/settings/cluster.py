"""`todo:cluster`: an existing local cluster, or a DOKS cluster the stack creates."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from infra.settings.types import CONFIG_NAMESPACE, DoDropletSize, DoRegion, SettingsModel

MIN_DOKS_MINOR = 33
"""The oldest DOKS minor version the program deploys to (Gateway API CRDs, §9)."""


_RFC1918 = tuple(
    ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def _private_ipv4_network(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"not an IPv4 network in CIDR form ({error})") from None
    # RFC 1918 exactly: `is_private` would also pass documentation and other reserved
    # ranges (203.0.113.0/24 ...), which DigitalOcean does not accept for a VPC.
    private = any(network.subnet_of(block) for block in _RFC1918)
    if not private or network.prefixlen > 24 or network.prefixlen < 8:
        raise ValueError("must be a private (RFC 1918) range between /8 and /24")
    return str(network)


Ipv4Network = Annotated[str, AfterValidator(_private_ipv4_network)]


class LocalCluster(SettingsModel):
    """An existing cluster reached through a kubeconfig context (minikube, kind)."""

    kube_context: Annotated[str, StringConstraints(min_length=1)] = "minikube"
    cni: Literal["generic", "cilium"] = "generic"
    """How NetworkPolicies reach the API server and admit its webhook calls.

    `generic`: Kubernetes NetworkPolicy `ipBlock`s on apiServerCidr/apiServerPort (minikube's
    default CNI matches host traffic by address). `cilium`: a CiliumNetworkPolicy allowing
    the `kube-apiserver` entity, because Cilium does not match cluster nodes or the API
    server by `ipBlock` (DOKS always runs Cilium; so does the kind proving ground).
    """
    api_server_cidr: Annotated[
        str, StringConstraints(pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$")
    ] = "192.168.49.2/32"
    """The API server as pods reach it after DNAT (minikube's docker driver default)."""
    api_server_port: Annotated[int, Field(ge=1, le=65535)] = 8443


class NodePool(SettingsModel):
    """The autoscaling worker pool."""

    size: DoDropletSize = "s-2vcpu-4gb"
    min_nodes: Annotated[int, Field(ge=1, le=20)] = 2
    max_nodes: Annotated[int, Field(ge=1, le=50)] = 4

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"maxNodes ({self.max_nodes}) must be >= minNodes ({self.min_nodes})")
        return self


class MaintenanceWindow(SettingsModel):
    """When DigitalOcean may upgrade the control plane and nodes."""

    day: Literal[
        "any", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "sunday"
    start_time: Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):00$")] = "03:00"


class DoksCluster(SettingsModel):
    """A DigitalOcean Kubernetes cluster in its own VPC."""

    region: DoRegion
    version_prefix: Annotated[str, StringConstraints(pattern=r"^1\.[0-9]{2}\.$")]
    """Minor version to track, e.g. `1.34.`: the newest patch DOKS offers is used."""
    vpc_ip_range: Annotated[
        str, StringConstraints(pattern=r"^10\.[0-9]{1,3}\.[0-9]{1,3}\.0/(1[6-9]|2[0-4])$")
    ]
    cluster_subnet: Ipv4Network
    """The pods' range of a VPC-native cluster (`10.124.0.0/16`): fixed at creation."""
    service_subnet: Ipv4Network
    """The Services' range of a VPC-native cluster (`10.125.0.0/20`): fixed at creation."""
    ha: bool = False
    """HA control plane (recommended for prod)."""
    auto_upgrade: bool = True
    node_pool: NodePool = NodePool()
    maintenance: MaintenanceWindow = MaintenanceWindow()

    @field_validator("version_prefix")
    @classmethod
    def _gateway_api(cls, value: str) -> str:
        # DOKS provides the Gateway API CRDs (which the edge relies on in the cloud) only
        # on VPC-native clusters from 1.33 (architecture §9).
        if int(value.split(".")[1]) < MIN_DOKS_MINOR:
            raise ValueError(
                f"must be 1.{MIN_DOKS_MINOR}. or newer: DOKS provides the Gateway API CRDs "
                "the edge needs only on VPC-native clusters from 1.33"
            )
        return value

    @model_validator(mode="after")
    def _vpc_native(self) -> Self:
        # A VPC-native cluster's pod and Service ranges may not overlap the VPC or each
        # other (DigitalOcean: "create with VPC-native", linked from pulumi-digitalocean's
        # KubernetesCluster.cluster_subnet docs).
        ranges = {
            "vpcIpRange": ipaddress.ip_network(self.vpc_ip_range),
            "clusterSubnet": ipaddress.ip_network(self.cluster_subnet),
            "serviceSubnet": ipaddress.ip_network(self.service_subnet),
        }
        names = list(ranges)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if ranges[first].overlaps(ranges[second]):
                    raise ValueError(
                        f"{CONFIG_NAMESPACE}:cluster.{second} ({ranges[second]}) overlaps "
                        f"{CONFIG_NAMESPACE}:cluster.{first} ({ranges[first]}): a VPC-native "
                        "cluster needs three disjoint ranges"
                    )
        return self


def _cluster_type(value: Any) -> str:
    # A DOKS cluster is recognised by any of its own keys; anything else is a local one.
    if isinstance(value, DoksCluster):
        return "doks"
    if isinstance(value, Mapping) and set(value) & _DOKS_KEYS:
        return "doks"
    return "local"


_DOKS_KEYS = frozenset(  # keys only a DOKS cluster has
    {
        "region",
        "versionPrefix",
        "vpcIpRange",
        "clusterSubnet",
        "serviceSubnet",
        "ha",
        "autoUpgrade",
        "nodePool",
        "maintenance",
    }
)

ClusterSettings = Annotated[
    Annotated[LocalCluster, Tag("local")] | Annotated[DoksCluster, Tag("doks")],
    Discriminator(_cluster_type),
]
