"""The service's own network paths: who may call it, and where it may call out.

Paths every app shares (DNS, sidecars, Kafka, the database) are the Namespaces
component's; these are one service's: Prometheus scrapes of the app and its sidecar,
the gateway's Envoy proxies for a public API, public webhooks out, and traces (from the app
and its sidecar) to the OpenTelemetry Collector.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from apps.contracts.services import APP_PORT
from infra.components.fastapi_service.args import FastApiServiceArgs
from infra.components.fastapi_service.pod import SIDECAR_METRICS_PORT
from infra.components.kube import child_of
from infra.components.platform_egress import namespace_peer, public_internet_rule, tcp_ports


def create_network_policies(
    parent: pulumi.Resource,
    name: str,
    args: FastApiServiceArgs,
    labels: dict[str, str],
    selector: dict[str, str],
) -> None:
    """An ingress policy for the callers it has, and an egress one for public webhooks."""
    peers: list[dict[str, Any]] = []
    if args.monitoring_namespace is not None:
        peers.append(
            {
                "from": [namespace_peer(args.monitoring_namespace, args.monitoring_pod_labels)],
                "ports": tcp_ports(APP_PORT, SIDECAR_METRICS_PORT),
            }
        )
    if args.ingress_namespaces:
        peers.append(
            {
                "from": [
                    namespace_peer(ns, args.ingress_pod_labels) for ns in args.ingress_namespaces
                ],
                "ports": tcp_ports(APP_PORT),
            }
        )
    if peers:
        _network_policy(parent, name, args, labels, selector, "ingress", "Ingress", peers)
    if args.public_egress_ports:
        egress = [public_internet_rule(*args.public_egress_ports)]
        _network_policy(parent, name, args, labels, selector, "public-egress", "Egress", egress)
    if args.otlp is not None:
        # The app and its Dapr sidecar share the pod: one path covers both senders.
        otlp = args.otlp
        egress = [
            {
                "to": [namespace_peer(otlp.collector_namespace, otlp.collector_pod_labels)],
                "ports": tcp_ports(*otlp.ports),
            }
        ]
        _network_policy(parent, name, args, labels, selector, "otlp-egress", "Egress", egress)


def _network_policy(
    parent: pulumi.Resource,
    name: str,
    args: FastApiServiceArgs,
    labels: dict[str, str],
    selector: dict[str, str],
    role: str,
    policy_type: str,
    rules: list[dict[str, Any]],
) -> None:
    """A NetworkPolicy `<app id>-<role>` for this app's pods: `rules` in one direction."""
    k8s.networking.v1.NetworkPolicy(
        f"{name}-{role}",
        metadata=cast(
            Any, {"name": f"{args.app_id}-{role}", "namespace": args.namespace, "labels": labels}
        ),
        spec=cast(
            Any,
            {
                "podSelector": {"matchLabels": selector},
                "policyTypes": [policy_type],
                policy_type.lower(): rules,
            },
        ),
        opts=child_of(parent),
    )
