"""Writing one namespace's NetworkPolicies: default-deny, DNS, the API server, peers.

A `Fence` creates policies as children of the component that owns it, with the names
that component has always given them (`<component>-<role>`), so that where the code
lives does not change a URN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.cluster import ApiServerAccess
from infra.components.kube import KubernetesObject

DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
CILIUM_API = "cilium.io/v2"
# The API server's port after the `kubernetes` Service's DNAT (Cilium enforces after it):
# 443 on DOKS, 6443 on kubeadm clusters (kind), 16443 where DOKS' HA control plane proxy
# (cpc-bridge-proxy) moved off 443 (DigitalOcean, "Kubernetes Limits").
API_SERVER_PORTS = (443, 6443, 16443)


def tcp_ports(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def namespace_peer(namespace: pulumi.Input[str]) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


@dataclass(frozen=True)
class Fence:
    """Creates NetworkPolicies (and Cilium's API-server policies) under `parent`."""

    name: str
    """The owning component's name: every policy is `<name>-<role>`."""
    parent: pulumi.Resource
    api_server: ApiServerAccess
    monitoring_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of the Prometheus pods; empty admits the monitoring namespace's every pod."""

    def _opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent)

    def policy(
        self,
        role: str,
        namespace: pulumi.Input[str],
        pod_selector: dict[str, Any],
        *,
        ingress: list[dict[str, Any]] | None = None,
        egress: list[dict[str, Any]] | None = None,
        policy_name: str | None = None,
    ) -> k8s.networking.v1.NetworkPolicy:
        types = []
        spec: dict[str, Any] = {"podSelector": pod_selector}
        if ingress is not None:
            types.append("Ingress")
            spec["ingress"] = ingress
        if egress is not None:
            types.append("Egress")
            spec["egress"] = egress
        spec["policyTypes"] = types
        metadata: Any = {"name": policy_name or role, "namespace": namespace}
        manifest: Any = spec
        return k8s.networking.v1.NetworkPolicy(
            f"{self.name}-{role}",
            metadata=metadata,
            spec=manifest,
            opts=self._opts(),
        )

    def prometheus_peer(self, namespace: pulumi.Input[str]) -> dict[str, Any]:
        """The Prometheus pods of the monitoring namespace (all its pods without labels)."""
        peer = namespace_peer(namespace)
        if self.monitoring_pod_labels:
            peer["podSelector"] = {"matchLabels": dict(self.monitoring_pod_labels)}
        return peer

    def baseline(self, prefix: str, namespace: pulumi.Input[str]) -> None:
        """Default-deny everything, then let every pod resolve names."""
        self.policy(
            f"{prefix}-default-deny",
            namespace,
            {},
            ingress=[],
            egress=[],
            policy_name="default-deny",
        )
        self.policy(
            f"{prefix}-allow-dns",
            namespace,
            {},
            egress=[
                {
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
            ],
            policy_name="allow-dns",
        )

    def api_server_egress(
        self, role: str, namespace: pulumi.Input[str], pod_selector: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Egress rules to the API server for the selected pods.

        On a generic CNI: a rule for the caller's NetworkPolicy (the API server's address
        after DNAT). On Cilium (DOKS, kind): Cilium does not match the API server or any
        cluster node by `ipBlock` ("CIDR rules do not apply to traffic where both sides are
        managed by Cilium or use an IP belonging to a node in the cluster", Cilium docs,
        Layer 3 policy; cilium/cilium#14724), so a CiliumNetworkPolicy allows the
        `kube-apiserver` entity instead, and the caller's policy gets no rule. Cilium adds
        up the allows of every policy that selects a pod, Kubernetes' and its own.
        """
        access = self.api_server
        if access.cni == "generic":
            assert access.cidr is not None and access.port is not None
            return [{"to": [{"ipBlock": {"cidr": access.cidr}}], "ports": tcp_ports(access.port)}]
        KubernetesObject(
            f"{self.name}-{role}-api-server",
            CILIUM_API,
            "CiliumNetworkPolicy",
            metadata={"name": f"{role}-to-api-server", "namespace": namespace},
            spec={
                "endpointSelector": pod_selector,
                "egress": [
                    {
                        "toEntities": ["kube-apiserver"],
                        "toPorts": [
                            {
                                "ports": [
                                    {"port": str(port), "protocol": "TCP"}
                                    for port in API_SERVER_PORTS
                                ]
                            }
                        ],
                    }
                ],
            },
            opts=self._opts(),
        )
        return []
