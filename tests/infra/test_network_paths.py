"""The paths monitoring and the edge need, through every stack's rendered NetworkPolicies.

Pods are described by the labels their upstream projects give them (prometheus-operator,
Grafana's chart, Envoy Gateway, Strimzi, Dapr, cert-manager), not by our own constants,
so a policy that admits the wrong pods, or whole namespaces, shows up here. Grafana is
reachable from the internet (through the Gateway): it must not reach the services, and
neither must any other pod of the monitoring or gateway namespaces but the ones that
need to.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.plan.build import Plan
from tests.infra.conftest import EPHEMERAL_STACK, STACKS
from tests.infra.network_paths import Pod, Policies

APPS = ("backend", "notification", "recurring")
PUBLIC_APIS = APPS  # each serves part of the public API (PUBLIC_API_PREFIXES)
PROMETHEUS = Pod(
    "monitoring",
    {
        "app.kubernetes.io/name": "prometheus",
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "app.kubernetes.io/instance": "kube-prometheus-stack-prometheus",
        "prometheus": "kube-prometheus-stack-prometheus",
    },
    "prometheus",
)
GRAFANA = Pod(
    "monitoring",
    {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"},
    "grafana",
)
KUBE_STATE_METRICS = Pod(
    "monitoring", {"app.kubernetes.io/name": "kube-state-metrics"}, "kube-state-metrics"
)
ENVOY = Pod(
    "envoy-gateway-system",
    {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/managed-by": "envoy-gateway",
        "gateway.envoyproxy.io/owning-gateway-name": "todo",
    },
    "envoy",
)
GATEWAY_CONTROLLER = Pod(
    "envoy-gateway-system",
    {"control-plane": "envoy-gateway", "app.kubernetes.io/name": "gateway-helm"},
    "envoy-gateway",
)
ACME_SOLVER = Pod(
    "envoy-gateway-system", {"acme.cert-manager.io/http01-solver": "true"}, "acme-solver"
)
DAPR_OPERATOR = Pod(
    "dapr-system",
    {"app": "dapr-operator", "app.kubernetes.io/name": "dapr"},
    "dapr-operator",
)
STRIMZI_OPERATOR = Pod(
    "kafka",
    {"name": "strimzi-cluster-operator", "strimzi.io/kind": "cluster-operator"},
    "strimzi-cluster-operator",
)


def _app_pods(plan: Plan) -> dict[str, Pod]:
    pods = {}
    for obj in plan.objects:
        if obj.kind == "Deployment" and obj.name in APPS:
            labels = obj.body["spec"]["template"]["metadata"]["labels"]
            pods[obj.name] = Pod(str(obj.namespace), labels, obj.name)
    assert set(pods) == set(APPS)
    return pods


def _kafka_exporter(plan: Plan) -> Pod:
    (kafka,) = [o for o in plan.objects if o.kind == "Kafka"]
    cluster = kafka.name
    labels = {
        "strimzi.io/cluster": cluster,
        "strimzi.io/kind": "Kafka",
        "strimzi.io/name": f"{cluster}-kafka-exporter",
    }
    return Pod(str(kafka.namespace), labels, "kafka-exporter")


def _closed(policies: Policies, paths: list[tuple[Pod, Pod, int]]) -> list[str]:
    """The paths among `paths` that the policies do not allow."""
    return [
        f"{source.name} -> {destination.name}:{port} {policies.verdict(source, destination, port)}"
        for source, destination, port in paths
        if not policies.verdict(source, destination, port).allowed
    ]


def _open(policies: Policies, paths: list[tuple[Pod, Pod, int]]) -> list[str]:
    return [
        f"{source.name} -> {destination.name}:{port}"
        for source, destination, port in paths
        if policies.verdict(source, destination, port).allowed
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_monitoring_and_the_edge_reach_what_they_need(planned: Any, stack: str) -> None:
    plan = planned(stack)
    policies = Policies.of(plan.objects)
    apps = _app_pods(plan)
    needed = [
        *((PROMETHEUS, apps[app], port) for app in APPS for port in (8000, 9090)),
        *((ENVOY, apps[app], 8000) for app in PUBLIC_APIS),
        (PROMETHEUS, _kafka_exporter(plan), 9404),
        (PROMETHEUS, STRIMZI_OPERATOR, 8080),
        (PROMETHEUS, DAPR_OPERATOR, 9090),
        (PROMETHEUS, ENVOY, 19001),
        (ENVOY, GRAFANA, 3000),
        (GRAFANA, PROMETHEUS, 9090),
        (ENVOY, GATEWAY_CONTROLLER, 18000),  # xDS
    ]
    if stack != "minikube":
        needed.append((ENVOY, ACME_SOLVER, 8089))  # HTTP-01 challenges
    assert _closed(policies, needed) == []


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_else_in_monitoring_or_the_gateway_reaches_the_services(
    planned: Any, stack: str
) -> None:
    plan = planned(stack)
    policies = Policies.of(plan.objects)
    apps = _app_pods(plan)
    others = (GRAFANA, KUBE_STATE_METRICS, GATEWAY_CONTROLLER, ACME_SOLVER)
    unwanted = [
        *((pod, apps[app], port) for pod in others for app in APPS for port in (8000, 9090)),
        *((ENVOY, apps[app], 9090) for app in APPS),  # the sidecar's metrics stay inside
        (GRAFANA, _kafka_exporter(plan), 9404),
        (GRAFANA, DAPR_OPERATOR, 9090),
        (GRAFANA, ENVOY, 19001),
        (GATEWAY_CONTROLLER, GRAFANA, 3000),
        (KUBE_STATE_METRICS, STRIMZI_OPERATOR, 8080),
    ]
    assert _open(policies, unwanted) == []


def test_the_base_stacks_prometheus_scrapes_an_ephemeral_stack(planned: Any) -> None:
    plan = planned(EPHEMERAL_STACK)
    policies = Policies.of(plan.objects)
    apps = _app_pods(plan)
    exporter = _kafka_exporter(plan)
    assert exporter.namespace == apps["backend"].namespace == "todo-dev-alice"
    needed = [
        *((PROMETHEUS, apps[app], port) for app in APPS for port in (8000, 9090)),
        (PROMETHEUS, exporter, 9404),
    ]
    assert _closed(policies, needed) == []
    unwanted = [(GRAFANA, apps["backend"], 8000), (GRAFANA, exporter, 9404)]
    assert _open(policies, unwanted) == []
