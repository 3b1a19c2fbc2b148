"""Egress rules the platform namespaces' policies share (monitoring, gateway, cert-manager).

Those namespaces run upstream charts whose pods each need a few destinations: the cluster's
DNS, the API server, the kubelets, a backend. Each component fences its own namespace with
these building blocks, in the same shapes `namespaces.py` uses for the apps, Dapr and Kafka
namespaces, so that the two CNIs the program supports are handled in one place:

- generic CNI (minikube): the API server and the node are an address, matched by `ipBlock`;
- Cilium (DOKS, the kind proving ground): Cilium does not match cluster nodes or the API
  server by `ipBlock` ("CIDR rules do not apply to traffic where both sides are managed by
  Cilium or use an IP belonging to a node in the cluster", Cilium docs, Layer 3 policy), so
  a CiliumNetworkPolicy allows the `kube-apiserver`, `host` and `remote-node` entities
  instead (https://docs.cilium.io/en/stable/security/policy/language/#entities-based).
  Cilium adds up the allows of every policy that selects a pod, Kubernetes' and its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from infra.components.cluster import ApiServerAccess
from infra.components.kube import PART_OF, KubernetesObject
from infra.components.namespaces import API_SERVER_PORTS, CILIUM_API, DNS_PORTS

KUBELET_PORT = 10250
"""The kubelet's authenticated port, where Prometheus scrapes /metrics and /metrics/cadvisor
(kube-prometheus-stack `kubelet.serviceMonitor`, scheme https)."""
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]
"""The VPC, node, pod and link-local (metadata service) ranges: never public internet."""
NODE_ENTITIES = ("host", "remote-node")
"""Cilium's entities for the node a pod runs on and every other node of the cluster."""


def tcp_ports(*ports: pulumi.Input[int]) -> list[dict[str, Any]]:
    """NetworkPolicy ports: each TCP port once, in the order given."""
    return [{"protocol": "TCP", "port": port} for port in ports]


def dns_rule() -> dict[str, Any]:
    """Egress to the cluster's DNS (the shape of `namespaces.py`'s `allow-dns`)."""
    return {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": DNS_PORTS,
    }


def public_internet_rule(*ports: int) -> dict[str, Any]:
    """Egress to public addresses only: never the VPC (a managed database), the nodes, the
    pods or the link-local metadata service (the notification service's `public-egress`)."""
    return {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}],
        "ports": tcp_ports(*ports),
    }


def namespace_peer(
    namespace: pulumi.Input[str], pods: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Pods of one namespace: those with `pods` labels, or all of them."""
    peer: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    if pods:
        peer["podSelector"] = {"matchLabels": dict(pods)}
    return peer


def api_server_egress(
    resource_name: str,
    access: ApiServerAccess,
    *,
    namespace: pulumi.Input[str],
    role: str,
    pod_selector: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> list[dict[str, Any]]:
    """Egress rules to the API server for the selected pods.

    Generic CNI: the rule is returned for the caller's NetworkPolicy. Cilium: a
    CiliumNetworkPolicy `<role>-to-api-server` allows the `kube-apiserver` entity on the
    ports the API server may listen on after DNAT, and no rule is returned.
    """
    if access.cni == "generic":
        assert access.cidr is not None and access.port is not None
        return [{"to": [{"ipBlock": {"cidr": access.cidr}}], "ports": tcp_ports(access.port)}]
    _entity_policy(
        resource_name,
        namespace=namespace,
        policy_name=f"{role}-to-api-server",
        pod_selector=pod_selector,
        entities=("kube-apiserver",),
        ports=API_SERVER_PORTS,
        opts=opts,
    )
    return []


def kubelet_egress(
    resource_name: str,
    access: ApiServerAccess,
    *,
    namespace: pulumi.Input[str],
    role: str,
    pod_selector: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> list[dict[str, Any]]:
    """Egress rules to the kubelets (port 10250 on every node) for the selected pods.

    Generic CNI: the cluster is minikube's single node, which also serves the API server,
    so the node's address is `access.cidr`. Cilium: a CiliumNetworkPolicy
    `<role>-to-kubelets` allows the `host` and `remote-node` entities on the kubelet port.
    """
    if access.cni == "generic":
        assert access.cidr is not None
        return [{"to": [{"ipBlock": {"cidr": access.cidr}}], "ports": tcp_ports(KUBELET_PORT)}]
    _entity_policy(
        resource_name,
        namespace=namespace,
        policy_name=f"{role}-to-kubelets",
        pod_selector=pod_selector,
        entities=NODE_ENTITIES,
        ports=(KUBELET_PORT,),
        opts=opts,
    )
    return []


def _entity_policy(
    resource_name: str,
    *,
    namespace: pulumi.Input[str],
    policy_name: str,
    pod_selector: dict[str, Any],
    entities: Sequence[str],
    ports: Sequence[int],
    opts: pulumi.ResourceOptions,
) -> KubernetesObject:
    return KubernetesObject(
        resource_name,
        CILIUM_API,
        "CiliumNetworkPolicy",
        metadata={
            "name": policy_name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": PART_OF},
        },
        spec={
            "endpointSelector": pod_selector,
            "egress": [
                {
                    "toEntities": list(entities),
                    "toPorts": [
                        {"ports": [{"port": str(port), "protocol": "TCP"} for port in ports]}
                    ],
                }
            ],
        },
        opts=opts,
    )
