"""Namespaces, Pod Security labels and the NetworkPolicies that fence them.

Every namespace here starts from default-deny (ingress and egress) and then opens only
the paths the system uses:

- apps: DNS; sidecar to sidecar (service invocation, port 50002); sidecars to the Dapr
  control plane (sentry 50001, operator 6500) and to the API server (the Kubernetes
  secret store); sidecars to Kafka; database clients to the database. Paths of one
  service only (Prometheus scrapes, gateway to backend, webhooks out) are its own
  FastApiService's policies.
- Dapr control plane: its own pods to each other; the API server to its admission
  webhooks; sidecars from labelled app namespaces; Prometheus.
- Kafka: its own pods to each other and the operator to Kafka pods in any namespace
  (ephemeral stacks run their own small cluster); the listener port is opened by
  Strimzi's own policies, limited to labelled client namespaces (`networkPolicyPeers`).

App namespaces enforce the `restricted` Pod Security profile. The Dapr control plane
namespace enforces `baseline` and warns/audits `restricted`: its chart's pods are not
all restricted-clean, and a rejected control plane would take every sidecar down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from infra.components.cluster import ApiServerAccess
from infra.components.kube import (
    DAPR_APPS_NAMESPACE_LABEL,
    DAPR_POD_LABEL,
    DB_CLIENT_LABEL,
    KAFKA_CLIENTS_NAMESPACE_LABEL,
    PART_OF,
    KubernetesObject,
)
from infra.settings import ExternalKafka, StrimziKafka

DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
CILIUM_API = "cilium.io/v2"
# The API server's port after the `kubernetes` Service's DNAT (Cilium enforces after it):
# 443 on DOKS, 6443 on kubeadm clusters (kind), 16443 where DOKS' HA control plane proxy
# (cpc-bridge-proxy) moved off 443 (DigitalOcean, "Kubernetes Limits").
API_SERVER_PORTS = (443, 6443, 16443)
SIDECAR_INTERNAL_GRPC = 50002
SENTRY_PORT = 50001
OPERATOR_API_PORT = 6500
INJECTOR_WEBHOOK_PORT = 4000
OPERATOR_WEBHOOK_PORT = 19443
DAPR_METRICS_PORT = 9090
KAFKA_PORT = 9092
KAFKA_METRICS_PORT = 9404
STRIMZI_OPERATOR_METRICS_PORT = 8080
# Ports the Strimzi operator uses on Kafka pods: controller, replication, agent.
STRIMZI_OPERATOR_TO_KAFKA_PORTS = (9090, 9091, 8443)


@dataclass(frozen=True)
class NamespacesArgs:
    """Which namespaces to create and which paths between them to allow."""

    apps: str
    """The apps namespace (always created here)."""
    dapr: pulumi.Input[str]
    """The Dapr control-plane namespace (a plain name when created here)."""
    kafka: pulumi.Input[str]
    """Where Kafka runs; the apps namespace itself for ephemeral stacks."""
    api_server: ApiServerAccess
    """How pods reach the API server (Cilium entities, or an address on a local cluster)."""
    database_port: int
    """The port database clients connect to."""
    kafka_settings: StrimziKafka | ExternalKafka
    """Which Kafka: Strimzi in the cluster, or an external Kafka-compatible service (whose
    broker ports are opened for sidecars)."""
    database_cidr: pulumi.Input[str] | None = None
    """Where the database is; None = the in-cluster PostgreSQL in the apps namespace."""
    create_system_namespaces: bool = True
    """Create the Dapr and Kafka namespaces (False: ephemeral stacks reuse the base's)."""
    monitoring: pulumi.Input[str] | None = None
    """Prometheus's namespace: allowed to scrape the Dapr control plane and Kafka."""
    monitoring_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of the Prometheus pods there; empty admits the whole namespace."""


class Namespaces(pulumi.ComponentResource):
    """The namespaces of one stack, fenced by NetworkPolicies."""

    apps: pulumi.Output[str]
    """The apps namespace's name (depends on its creation)."""
    dapr: pulumi.Output[str]
    """The Dapr control-plane namespace's name."""
    kafka: pulumi.Output[str]
    """The Kafka namespace's name."""

    def __init__(
        self, name: str, args: NamespacesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:namespaces:Namespaces", name, None, opts)
        self._name = name
        self._args = args
        kafka_here = args.kafka == args.apps
        strimzi_in_cluster = isinstance(args.kafka_settings, StrimziKafka)
        apps_ns = self._namespace(
            "apps",
            args.apps,
            enforce="restricted",
            extra_labels={
                DAPR_APPS_NAMESPACE_LABEL: "true",
                KAFKA_CLIENTS_NAMESPACE_LABEL: "true",
            },
        )
        self.apps = apps_ns.metadata.apply(lambda m: m["name"])
        self._create_apps_policies(self.apps, kafka_here)
        if args.create_system_namespaces:
            if not isinstance(args.dapr, str) or not isinstance(args.kafka, str):
                raise TypeError("namespaces created here need plain names")
            dapr_ns = self._namespace("dapr", args.dapr, enforce="baseline")
            self.dapr = dapr_ns.metadata.apply(lambda m: m["name"])
            self._create_dapr_policies(self.dapr)
            if strimzi_in_cluster and not kafka_here:
                kafka_ns = self._namespace("kafka", args.kafka, enforce="restricted")
                self.kafka = kafka_ns.metadata.apply(lambda m: m["name"])
                self._create_kafka_policies("kafka", self.kafka, whole_namespace=True)
            else:
                self.kafka = pulumi.Output.from_input(args.kafka)
        else:
            self.dapr = pulumi.Output.from_input(args.dapr)
            self.kafka = self.apps if kafka_here else pulumi.Output.from_input(args.kafka)
        if kafka_here and strimzi_in_cluster:
            self._create_kafka_policies("apps-kafka", self.apps, whole_namespace=False)
        self.register_outputs({"apps": self.apps, "dapr": self.dapr, "kafka": self.kafka})

    # ------------------------------------------------------------------ helpers

    def _opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _namespace(
        self, role: str, ns_name: str, *, enforce: str, extra_labels: dict[str, str] | None = None
    ) -> k8s.core.v1.Namespace:
        labels = {
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "pulumi",
            "pod-security.kubernetes.io/enforce": enforce,
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": "latest",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/audit-version": "latest",
            **(extra_labels or {}),
        }
        return k8s.core.v1.Namespace(
            f"{self._name}-{role}",
            metadata=cast(Any, {"name": ns_name, "labels": labels}),
            opts=self._opts(),
        )

    def _policy(
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
            f"{self._name}-{role}",
            metadata=metadata,
            spec=manifest,
            opts=self._opts(),
        )

    @staticmethod
    def _ports(*ports: int) -> list[dict[str, Any]]:
        return [{"protocol": "TCP", "port": port} for port in ports]

    @staticmethod
    def _namespace_peer(namespace: pulumi.Input[str]) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}

    def _prometheus_peer(self, namespace: pulumi.Input[str]) -> dict[str, Any]:
        """The Prometheus pods of the monitoring namespace (all its pods without labels)."""
        peer = self._namespace_peer(namespace)
        if self._args.monitoring_pod_labels:
            peer["podSelector"] = {"matchLabels": dict(self._args.monitoring_pod_labels)}
        return peer

    def _baseline(self, prefix: str, namespace: pulumi.Input[str]) -> None:
        """Default-deny everything, then let every pod resolve names."""
        self._policy(
            f"{prefix}-default-deny",
            namespace,
            {},
            ingress=[],
            egress=[],
            policy_name="default-deny",
        )
        self._policy(
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

    def _api_server_egress(
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
        access = self._args.api_server
        if access.cni == "generic":
            assert access.cidr is not None and access.port is not None
            return [{"to": [{"ipBlock": {"cidr": access.cidr}}], "ports": self._ports(access.port)}]
        KubernetesObject(
            f"{self._name}-{role}-api-server",
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

    # ------------------------------------------------------------------ apps

    def _create_apps_policies(self, ns: pulumi.Output[str], kafka_here: bool) -> None:
        args = self._args
        dapr_pods = {"matchLabels": {DAPR_POD_LABEL: "true"}}
        self._baseline("apps", ns)
        self._policy(
            "apps-allow-dapr-sidecars",
            ns,
            dapr_pods,
            ingress=[
                {"from": [{"podSelector": dapr_pods}], "ports": self._ports(SIDECAR_INTERNAL_GRPC)}
            ],
            egress=[
                {"to": [{"podSelector": dapr_pods}], "ports": self._ports(SIDECAR_INTERNAL_GRPC)},
                {
                    "to": [self._namespace_peer(args.dapr)],
                    "ports": self._ports(SENTRY_PORT, OPERATOR_API_PORT),
                },
                # The `secretstore` component (Kubernetes secret store) reads Secrets
                # through the API server when an app asks it; start-up does not need it.
                *self._api_server_egress("sidecars", ns, dapr_pods),
            ],
            policy_name="allow-dapr-sidecars",
        )
        self._create_kafka_egress(ns, dapr_pods, kafka_here)
        self._create_database_paths(ns)

    def _create_kafka_egress(
        self, ns: pulumi.Output[str], dapr_pods: dict[str, Any], kafka_here: bool
    ) -> None:
        args = self._args
        if isinstance(args.kafka_settings, StrimziKafka):
            kafka_pods = {"podSelector": {"matchLabels": {"strimzi.io/kind": "Kafka"}}}
            peer = kafka_pods if kafka_here else {**self._namespace_peer(args.kafka), **kafka_pods}
            egress = [{"to": [peer], "ports": self._ports(KAFKA_PORT)}]
        else:
            egress = [
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                    "ports": self._ports(*args.kafka_settings.ports),
                }
            ]
        self._policy("apps-allow-kafka", ns, dapr_pods, egress=egress, policy_name="allow-kafka")

    def _create_database_paths(self, ns: pulumi.Output[str]) -> None:
        args = self._args
        clients = {"matchLabels": {DB_CLIENT_LABEL: "true"}}
        if args.database_cidr is None:
            postgres = {"matchLabels": {"app.kubernetes.io/name": "postgresql"}}
            self._policy(
                "apps-allow-database",
                ns,
                clients,
                egress=[
                    {"to": [{"podSelector": postgres}], "ports": self._ports(args.database_port)}
                ],
                policy_name="allow-database",
            )
            self._policy(
                "apps-database-ingress",
                ns,
                postgres,
                ingress=[
                    {"from": [{"podSelector": clients}], "ports": self._ports(args.database_port)}
                ],
                policy_name="database-ingress",
            )
        else:
            self._policy(
                "apps-allow-database",
                ns,
                clients,
                egress=[
                    {
                        "to": [{"ipBlock": {"cidr": args.database_cidr}}],
                        "ports": self._ports(args.database_port),
                    }
                ],
                policy_name="allow-database",
            )

    # ------------------------------------------------------------------ dapr

    def _create_dapr_policies(self, ns: pulumi.Output[str]) -> None:
        args = self._args
        self._baseline("dapr", ns)
        same_namespace: list[dict[str, Any]] = [{"podSelector": {}}]
        self._policy(
            "dapr-internal",
            ns,
            {},
            ingress=[{"from": same_namespace}],
            egress=[{"to": same_namespace}, *self._api_server_egress("dapr", ns, {})],
            policy_name="allow-internal-and-api-server",
        )
        # Admission webhooks are called by the API server, which is outside the pod network
        # and which no peer selector matches on every CNI (Cilium sees it as the
        # `kube-apiserver`, `host` or `remote-node` entity, never as an ipBlock). A rule
        # without `from` "matches all sources" (NetworkPolicy API), whichever CNI enforces
        # it; only the webhook ports are open. The injector's failure policy is `Fail` for
        # app pods (Dapr component), so an unreachable injector stops a rollout instead of
        # starting pods without a sidecar.
        self._policy(
            "dapr-webhooks",
            ns,
            {},
            ingress=[{"ports": self._ports(INJECTOR_WEBHOOK_PORT, OPERATOR_WEBHOOK_PORT)}],
            policy_name="allow-admission-webhooks",
        )
        self._policy(
            "dapr-sidecars",
            ns,
            {},
            ingress=[
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {DAPR_APPS_NAMESPACE_LABEL: "true"}
                            },
                            "podSelector": {"matchLabels": {DAPR_POD_LABEL: "true"}},
                        }
                    ],
                    "ports": self._ports(SENTRY_PORT, OPERATOR_API_PORT),
                }
            ],
            policy_name="allow-sidecars",
        )
        if args.monitoring is not None:
            self._policy(
                "dapr-monitoring",
                ns,
                {},
                ingress=[
                    {
                        "from": [self._prometheus_peer(args.monitoring)],
                        "ports": self._ports(DAPR_METRICS_PORT),
                    }
                ],
                policy_name="allow-monitoring-scrape",
            )

    # ------------------------------------------------------------------ kafka

    def _create_kafka_policies(
        self, prefix: str, ns: pulumi.Output[str], *, whole_namespace: bool
    ) -> None:
        """Paths Strimzi's own policies do not open: egress, and the operator's reach."""
        args = self._args
        selector: dict[str, Any] = (
            {}
            if whole_namespace
            else {"matchExpressions": [{"key": "strimzi.io/cluster", "operator": "Exists"}]}
        )
        peers = [{"podSelector": selector}]
        if whole_namespace:
            self._baseline(prefix, ns)
        self._policy(
            f"{prefix}-internal",
            ns,
            selector,
            ingress=[{"from": peers}],
            egress=[{"to": peers}, *self._api_server_egress(prefix, ns, selector)],
            policy_name="kafka-internal",
        )
        if whole_namespace:
            # The operator reconciles Kafka clusters in other namespaces too (ephemeral stacks).
            self._policy(
                f"{prefix}-operator",
                ns,
                {"matchLabels": {"strimzi.io/kind": "cluster-operator"}},
                egress=[
                    {
                        "to": [
                            {
                                "namespaceSelector": {},
                                "podSelector": {"matchLabels": {"strimzi.io/kind": "Kafka"}},
                            }
                        ],
                        "ports": self._ports(*STRIMZI_OPERATOR_TO_KAFKA_PORTS),
                    }
                ],
                policy_name="strimzi-operator-to-kafka",
            )
        if args.monitoring is not None:
            self._policy(
                f"{prefix}-monitoring",
                ns,
                selector,
                ingress=[
                    {
                        "from": [self._prometheus_peer(args.monitoring)],
                        "ports": self._ports(KAFKA_METRICS_PORT, STRIMZI_OPERATOR_METRICS_PORT),
                    }
                ],
                policy_name="kafka-allow-monitoring-scrape",
            )
