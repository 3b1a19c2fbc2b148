"""Namespaces: restricted Pod Security, default-deny, and only the paths the system uses."""

from __future__ import annotations

from typing import Any

from infra.plan.runner import PlanRun
from tests.infra.components.plans import EPHEMERAL, by_type, plan

NAMESPACE = "kubernetes:core/v1:Namespace"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
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
    assert {50002} in egress_ports and {50001, 6500} in egress_ports
    api = sidecars["egress"][-1]
    assert api["to"] == [{"ipBlock": {"cidr": "203.0.113.10/32"}}] and _ports(api) == {443}
    kafka = _policies(run, "todo")["allow-kafka"]["egress"][0]
    assert _ports(kafka) == {9092}
    assert kafka["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kafka"
    }


def test_database_egress_matches_where_the_database_is() -> None:
    cloud = _policies(plan("staging"), "todo")["allow-database"]["egress"][0]
    assert cloud["to"] == [{"ipBlock": {"cidr": "10.110.0.0/20"}}] and _ports(cloud) == {25060}
    local = _policies(plan("minikube"), "todo")
    egress = local["allow-database"]["egress"][0]
    assert egress["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "postgresql"}
    assert _ports(local["database-ingress"]["ingress"][0]) == {5432}


def test_dapr_control_plane_admits_webhooks_and_labelled_sidecars_only() -> None:
    policies = _policies(plan("prod"), "dapr-system")
    assert _ports(policies["allow-admission-webhooks"]["ingress"][0]) == {4000, 19443}
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
