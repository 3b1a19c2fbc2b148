"""Namespaces: restricted Pod Security, default-deny, and only the paths the system uses."""

from __future__ import annotations

from typing import Any

import pytest

from infra.tooling.plan.runner import PlanRun
from tests.infra.components.plans import EPHEMERAL, by_type, plan

NAMESPACE = "kubernetes:core/v1:Namespace"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CILIUM_POLICY = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"
PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def _policies(run: PlanRun, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        res.raw_inputs["metadata"]["name"]: res.raw_inputs["spec"]
        for res in by_type(run, POLICY)
        if res.raw_inputs["metadata"]["namespace"] == namespace
    }


def _ports(rule: dict[str, Any]) -> set[int]:
    return {port["port"] for port in rule.get("ports", [])}


def test_pod_security_labels() -> None:
    run = plan("prod")
    labels = {
        res.raw_inputs["metadata"]["name"]: res.raw_inputs["metadata"]["labels"]
        for res in by_type(run, NAMESPACE)
    }
    # Monitoring, the gateway and cert-manager get theirs from their own components.
    assert set(labels) == {
        "todo",
        "dapr-system",
        "kafka",
        "monitoring",
        "envoy-gateway-system",
        "cert-manager",
    }
    assert labels["todo"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["kafka"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["dapr-system"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert all(v["pod-security.kubernetes.io/warn"] == "restricted" for v in labels.values())


def test_every_namespace_starts_from_default_deny() -> None:
    run = plan("prod")
    for namespace in ("todo", "dapr-system", "kafka"):
        deny = _policies(run, namespace)["default-deny"]
        assert deny == {
            "podSelector": {},
            "ingress": [],
            "egress": [],
            "policyTypes": ["Ingress", "Egress"],
        }
        assert "allow-dns" in _policies(run, namespace)


def test_sidecar_paths() -> None:
    run = plan("prod")
    sidecars = _policies(run, "todo")["allow-dapr-sidecars"]
    assert sidecars["podSelector"] == {"matchLabels": {"todo.dev/dapr": "true"}}
    egress_ports = [_ports(rule) for rule in sidecars["egress"]]
    assert egress_ports == [{50002}, {50001, 6500}]
    kafka = _policies(run, "todo")["allow-kafka"]["egress"][0]
    assert _ports(kafka) == {9092}
    assert kafka["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kafka"
    }


def _cilium_policies(run: PlanRun) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (
            res.raw_inputs["metadata"]["namespace"],
            res.raw_inputs["metadata"]["name"],
        ): res.raw_inputs
        for res in by_type(run, CILIUM_POLICY)
    }


@pytest.mark.parametrize("stack", ["staging", "prod", EPHEMERAL])
def test_doks_stacks_reach_the_api_server_as_a_cilium_entity(stack: str) -> None:
    # DOKS runs Cilium, and an HA cluster has no `ipv4_address` (pulumi-digitalocean
    # KubernetesCluster docs): no NetworkPolicy may name the API server by address.
    run = plan(stack)
    blocks = [
        peer["ipBlock"]["cidr"]
        for res in by_type(run, POLICY)
        for direction in ("ingress", "egress")
        for rule in res.raw_inputs["spec"].get(direction, [])
        for peer in rule.get("to", rule.get("from", []))
        if "ipBlock" in peer
    ]
    assert all(not cidr.endswith("/32") for cidr in blocks), blocks
    apps = "todo-dev-alice" if stack == EPHEMERAL else "todo"
    # This component's namespaces; the platform namespaces' own Cilium policies are
    # checked with their components (test_observability.py, test_edge.py).
    policies = {
        key: policy
        for key, policy in _cilium_policies(run).items()
        if key[0] in (apps, "dapr-system", "kafka")
    }
    expected = {(apps, "sidecars-to-api-server")}
    if stack != EPHEMERAL:
        expected |= {("dapr-system", "dapr-to-api-server"), ("kafka", "kafka-to-api-server")}
    else:
        expected |= {(apps, "apps-kafka-to-api-server")}
    assert set(policies) == expected
    sidecars = policies[(apps, "sidecars-to-api-server")]
    assert sidecars["apiVersion"] == "cilium.io/v2"
    assert sidecars["spec"]["endpointSelector"] == {"matchLabels": {"todo.dev/dapr": "true"}}
    (rule,) = sidecars["spec"]["egress"]
    assert rule["toEntities"] == ["kube-apiserver"]
    assert {p["port"] for p in rule["toPorts"][0]["ports"]} == {"443", "6443", "16443"}


def test_minikube_reaches_the_api_server_by_its_address() -> None:
    run = plan("minikube")
    assert not by_type(run, CILIUM_POLICY)
    api = _policies(run, "todo")["allow-dapr-sidecars"]["egress"][-1]
    assert api["to"] == [{"ipBlock": {"cidr": "192.168.49.2/32"}}] and _ports(api) == {8443}


def test_database_egress_matches_where_the_database_is() -> None:
    cloud = _policies(plan("staging"), "todo")["allow-database"]["egress"][0]
    # The server's port and the connection pool's (the services' DATABASE_URL).
    assert cloud["to"] == [{"ipBlock": {"cidr": "10.110.0.0/20"}}]
    assert _ports(cloud) == {25060, 25061}
    developer = _policies(plan(EPHEMERAL), "todo-dev-alice")["allow-database"]["egress"][0]
    assert _ports(developer) == {25060}  # dev-/pr- stacks connect directly, no pool
    local = _policies(plan("minikube"), "todo")
    egress = local["allow-database"]["egress"][0]
    assert egress["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "postgresql"}
    assert _ports(local["database-ingress"]["ingress"][0]) == {5432}


def test_dapr_control_plane_admits_webhooks_and_labelled_sidecars_only() -> None:
    policies = _policies(plan("prod"), "dapr-system")
    webhooks = policies["allow-admission-webhooks"]["ingress"]
    assert [_ports(rule) for rule in webhooks] == [{4000, 19443}]
    # Ports only, no `from`: the API server calls the injector from the control plane,
    # which no pod or namespace selector matches and Cilium does not match by ipBlock; a
    # `from` would leave the injector unreachable and, failing closed, every app pod
    # unschedulable.
    assert "from" not in webhooks[0]
    sidecars = policies["allow-sidecars"]["ingress"][0]
    assert sidecars["from"][0]["namespaceSelector"]["matchLabels"] == {"todo.dev/dapr-apps": "true"}
    assert _ports(sidecars) == {50001, 6500}
    scrape = policies["allow-monitoring-scrape"]["ingress"][0]
    assert _ports(scrape) == {9090}
    assert scrape["from"] == [PROMETHEUS]


def test_kafka_metrics_admit_prometheus_only() -> None:
    scrape = _policies(plan("prod"), "kafka")["kafka-allow-monitoring-scrape"]["ingress"][0]
    assert _ports(scrape) == {9404, 8080} and scrape["from"] == [PROMETHEUS]
    dev = _policies(plan(EPHEMERAL), "todo-dev-alice")["kafka-allow-monitoring-scrape"]
    assert dev["ingress"][0]["from"] == [PROMETHEUS]
    assert dev["podSelector"]["matchExpressions"][0]["key"] == "strimzi.io/cluster"


def test_ephemeral_namespace_fences_its_own_kafka() -> None:
    run = plan(EPHEMERAL)
    namespaces = by_type(run, NAMESPACE)
    assert [ns.raw_inputs["metadata"]["name"] for ns in namespaces] == ["todo-dev-alice"]
    policies = _policies(run, "todo-dev-alice")
    assert {"default-deny", "allow-dns", "allow-dapr-sidecars", "kafka-internal"} <= set(policies)
    kafka = policies["allow-kafka"]["egress"][0]["to"][0]
    assert "namespaceSelector" not in kafka  # its own Kafka, same namespace
    internal = policies["kafka-internal"]
    assert internal["podSelector"]["matchExpressions"][0]["key"] == "strimzi.io/cluster"
