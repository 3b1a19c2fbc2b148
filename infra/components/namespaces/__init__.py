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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from infra.components.cluster import ApiServerAccess
from infra.components.kube import (
    DAPR_APPS_NAMESPACE_LABEL,
    KAFKA_CLIENTS_NAMESPACE_LABEL,
    PART_OF,
)
from infra.components.namespaces.fence import API_SERVER_PORTS, CILIUM_API, DNS_PORTS, Fence
from infra.components.namespaces.paths import (
    DAPR_METRICS_PORT,
    KAFKA_METRICS_PORT,
    STRIMZI_OPERATOR_METRICS_PORT,
    create_apps_policies,
    create_dapr_policies,
    create_kafka_policies,
)
from infra.settings import ExternalKafka, StrimziKafka

__all__ = [
    "API_SERVER_PORTS",
    "CILIUM_API",
    "DAPR_METRICS_PORT",
    "DNS_PORTS",
    "KAFKA_METRICS_PORT",
    "STRIMZI_OPERATOR_METRICS_PORT",
    "Namespaces",
    "NamespacesArgs",
]


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
    database_ports: Sequence[int]
    """The ports database clients connect to (the server's; a connection pool's)."""
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
        self._fence = Fence(
            name, self, args.api_server, monitoring_pod_labels=args.monitoring_pod_labels
        )
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
        create_apps_policies(self._fence, args, self.apps, kafka_here)
        if args.create_system_namespaces:
            if not isinstance(args.dapr, str) or not isinstance(args.kafka, str):
                raise TypeError("namespaces created here need plain names")
            dapr_ns = self._namespace("dapr", args.dapr, enforce="baseline")
            self.dapr = dapr_ns.metadata.apply(lambda m: m["name"])
            create_dapr_policies(self._fence, args, self.dapr)
            if strimzi_in_cluster and not kafka_here:
                kafka_ns = self._namespace("kafka", args.kafka, enforce="restricted")
                self.kafka = kafka_ns.metadata.apply(lambda m: m["name"])
                create_kafka_policies(self._fence, args, "kafka", self.kafka, whole_namespace=True)
            else:
                self.kafka = pulumi.Output.from_input(args.kafka)
        else:
            self.dapr = pulumi.Output.from_input(args.dapr)
            self.kafka = self.apps if kafka_here else pulumi.Output.from_input(args.kafka)
        if kafka_here and strimzi_in_cluster:
            create_kafka_policies(self._fence, args, "apps-kafka", self.apps, whole_namespace=False)
        self.register_outputs({"apps": self.apps, "dapr": self.dapr, "kafka": self.kafka})

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
            opts=pulumi.ResourceOptions(parent=self),
        )
