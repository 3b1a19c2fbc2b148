"""The paths each namespace opens after default-deny: the apps namespace's (sidecars,
Kafka, the database), the Dapr control plane's and Kafka's.

Functions of the component's `Fence` and args, so that the component itself stays the
wiring: which namespaces, which of these paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi

from infra.components.kube import (
    DAPR_APPS_NAMESPACE_LABEL,
    DAPR_POD_LABEL,
    DB_CLIENT_LABEL,
)
from infra.components.namespaces.fence import Fence, namespace_peer, tcp_ports
from infra.settings import StrimziKafka

if TYPE_CHECKING:
    from infra.components.namespaces import NamespacesArgs

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


def create_apps_policies(
    fence: Fence, args: NamespacesArgs, ns: pulumi.Output[str], kafka_here: bool
) -> None:
    dapr_pods = {"matchLabels": {DAPR_POD_LABEL: "true"}}
    fence.baseline("apps", ns)
    fence.policy(
        "apps-allow-dapr-sidecars",
        ns,
        dapr_pods,
        ingress=[{"from": [{"podSelector": dapr_pods}], "ports": tcp_ports(SIDECAR_INTERNAL_GRPC)}],
        egress=[
            {"to": [{"podSelector": dapr_pods}], "ports": tcp_ports(SIDECAR_INTERNAL_GRPC)},
            {
                "to": [namespace_peer(args.dapr)],
                "ports": tcp_ports(SENTRY_PORT, OPERATOR_API_PORT),
            },
            # The `secretstore` component (Kubernetes secret store) reads Secrets
            # through the API server when an app asks it; start-up does not need it.
            *fence.api_server_egress("sidecars", ns, dapr_pods),
        ],
        policy_name="allow-dapr-sidecars",
    )
    _create_kafka_egress(fence, args, ns, dapr_pods, kafka_here)
    _create_database_paths(fence, args, ns)


def _create_kafka_egress(
    fence: Fence,
    args: NamespacesArgs,
    ns: pulumi.Output[str],
    dapr_pods: dict[str, Any],
    kafka_here: bool,
) -> None:
    if isinstance(args.kafka_settings, StrimziKafka):
        kafka_pods = {"podSelector": {"matchLabels": {"strimzi.io/kind": "Kafka"}}}
        peer = kafka_pods if kafka_here else {**namespace_peer(args.kafka), **kafka_pods}
        egress = [{"to": [peer], "ports": tcp_ports(KAFKA_PORT)}]
    else:
        egress = [
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                "ports": tcp_ports(*args.kafka_settings.ports),
            }
        ]
    fence.policy("apps-allow-kafka", ns, dapr_pods, egress=egress, policy_name="allow-kafka")


def _create_database_paths(fence: Fence, args: NamespacesArgs, ns: pulumi.Output[str]) -> None:
    clients = {"matchLabels": {DB_CLIENT_LABEL: "true"}}
    if args.database_cidr is None:
        postgres = {"matchLabels": {"app.kubernetes.io/name": "postgresql"}}
        fence.policy(
            "apps-allow-database",
            ns,
            clients,
            egress=[{"to": [{"podSelector": postgres}], "ports": tcp_ports(*args.database_ports)}],
            policy_name="allow-database",
        )
        fence.policy(
            "apps-database-ingress",
            ns,
            postgres,
            ingress=[
                {"from": [{"podSelector": clients}], "ports": tcp_ports(*args.database_ports)}
            ],
            policy_name="database-ingress",
        )
    else:
        fence.policy(
            "apps-allow-database",
            ns,
            clients,
            egress=[
                {
                    "to": [{"ipBlock": {"cidr": args.database_cidr}}],
                    "ports": tcp_ports(*args.database_ports),
                }
            ],
            policy_name="allow-database",
        )


def create_dapr_policies(fence: Fence, args: NamespacesArgs, ns: pulumi.Output[str]) -> None:
    fence.baseline("dapr", ns)
    same_namespace: list[dict[str, Any]] = [{"podSelector": {}}]
    fence.policy(
        "dapr-internal",
        ns,
        {},
        ingress=[{"from": same_namespace}],
        egress=[{"to": same_namespace}, *fence.api_server_egress("dapr", ns, {})],
        policy_name="allow-internal-and-api-server",
    )
    # Admission webhooks are called by the API server, which is outside the pod network
    # and which no peer selector matches on every CNI (Cilium sees it as the
    # `kube-apiserver`, `host` or `remote-node` entity, never as an ipBlock). A rule
    # without `from` "matches all sources" (NetworkPolicy API), whichever CNI enforces
    # it; only the webhook ports are open. The injector's failure policy is `Fail` for
    # app pods (Dapr component), so an unreachable injector stops a rollout instead of
    # starting pods without a sidecar.
    fence.policy(
        "dapr-webhooks",
        ns,
        {},
        ingress=[{"ports": tcp_ports(INJECTOR_WEBHOOK_PORT, OPERATOR_WEBHOOK_PORT)}],
        policy_name="allow-admission-webhooks",
    )
    fence.policy(
        "dapr-sidecars",
        ns,
        {},
        ingress=[
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {DAPR_APPS_NAMESPACE_LABEL: "true"}},
                        "podSelector": {"matchLabels": {DAPR_POD_LABEL: "true"}},
                    }
                ],
                "ports": tcp_ports(SENTRY_PORT, OPERATOR_API_PORT),
            }
        ],
        policy_name="allow-sidecars",
    )
    if args.monitoring is not None:
        fence.policy(
            "dapr-monitoring",
            ns,
            {},
            ingress=[
                {
                    "from": [fence.prometheus_peer(args.monitoring)],
                    "ports": tcp_ports(DAPR_METRICS_PORT),
                }
            ],
            policy_name="allow-monitoring-scrape",
        )


def create_kafka_policies(
    fence: Fence,
    args: NamespacesArgs,
    prefix: str,
    ns: pulumi.Output[str],
    *,
    whole_namespace: bool,
) -> None:
    """Paths Strimzi's own policies do not open: egress, and the operator's reach."""
    selector: dict[str, Any] = (
        {}
        if whole_namespace
        else {"matchExpressions": [{"key": "strimzi.io/cluster", "operator": "Exists"}]}
    )
    peers = [{"podSelector": selector}]
    if whole_namespace:
        fence.baseline(prefix, ns)
    fence.policy(
        f"{prefix}-internal",
        ns,
        selector,
        ingress=[{"from": peers}],
        egress=[{"to": peers}, *fence.api_server_egress(prefix, ns, selector)],
        policy_name="kafka-internal",
    )
    if whole_namespace:
        # The operator reconciles Kafka clusters in other namespaces too (ephemeral stacks).
        fence.policy(
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
                    "ports": tcp_ports(*STRIMZI_OPERATOR_TO_KAFKA_PORTS),
                }
            ],
            policy_name="strimzi-operator-to-kafka",
        )
    if args.monitoring is not None:
        fence.policy(
            f"{prefix}-monitoring",
            ns,
            selector,
            ingress=[
                {
                    "from": [fence.prometheus_peer(args.monitoring)],
                    "ports": tcp_ports(KAFKA_METRICS_PORT, STRIMZI_OPERATOR_METRICS_PORT),
                }
            ],
            policy_name="kafka-allow-monitoring-scrape",
        )
