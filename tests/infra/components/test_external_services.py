"""External PostgreSQL and Kafka: credentials only from secret config, fenced egress."""

from __future__ import annotations

import functools
from typing import Any

import yaml

from infra.tooling.plan.runner import PlanRun, config_from_mapping, run_program
from infra.tooling.repo import STACKS_DIR
from tests.infra.components.plans import by_type, helm_installs, one

BROKERS = "b-1.kafka.example.net:9096,b-2.kafka.example.net:9096"


@functools.cache
def _run() -> PlanRun:
    document = yaml.safe_load((STACKS_DIR / "Pulumi.minikube.yaml").read_text())
    config: dict[str, Any] = dict(document["config"])
    config["todo:database"] = {"mode": "external", "port": 6432}
    config["todo:kafka"] = {
        "mode": "external",
        "brokers": BROKERS,
        "username": "todo-svc",
        "saslMechanism": "SCRAM-SHA-256",
        "tls": True,
    }
    # Encrypted values in a real stack file; the plan turns them into secret placeholders.
    config["todo:databaseUrl"] = {"secure": "v1:encrypted-database-url"}
    config["todo:kafkaPassword"] = {"secure": "v1:encrypted-kafka-password"}
    config["todo:authJwtSecret"] = {"secure": "v1:encrypted-jwt-key"}
    return run_program("minikube", config_from_mapping(config))


def _metadata(run: PlanRun, component: str) -> dict[str, Any]:
    (resource,) = [
        r
        for r in by_type(run, "kubernetes:dapr.io/v1alpha1:Component")
        if r.raw_inputs["metadata"]["name"] == component
    ]
    return {
        m["name"]: m.get("value", m.get("secretKeyRef"))
        for m in resource.raw_inputs["spec"]["metadata"]
    }


def test_no_in_cluster_kafka_or_database() -> None:
    run = _run()
    assert not [r for r in run.resources.values() if "strimzi" in r.type]
    assert not by_type(run, "kubernetes:apps/v1:StatefulSet")
    releases = [r.raw_inputs["chart"] for r in helm_installs(run)]
    # Monitoring (with tracing) and the edge stay; only the Strimzi operator is gone.
    assert sorted(releases) == [
        "dapr",
        "kube-prometheus-stack",
        "oci://docker.io/envoyproxy/gateway-crds-helm",
        "oci://docker.io/envoyproxy/gateway-helm",
        "opentelemetry-collector",
        "tempo",
    ]
    namespaces = [
        r.raw_inputs["metadata"]["name"] for r in by_type(run, "kubernetes:core/v1:Namespace")
    ]
    assert "kafka" not in namespaces


def test_secrets_come_from_config_and_stay_secret() -> None:
    run = _run()
    database = one(run, "database-url")
    assert database.inputs["stringData"] == "[secret]"
    assert database.raw_inputs["stringData"]["url"].startswith("plan-placeholder-todo-databaseUrl")
    kafka = one(run, "kafka-credentials")
    assert kafka.inputs["stringData"] == "[secret]"
    credentials = kafka.raw_inputs["stringData"]
    assert credentials["username"] == "todo-svc"
    assert credentials["password"].startswith("plan-placeholder-todo-kafkaPassword")
    auth = one(run, "app-secrets-auth")
    jwt = auth.raw_inputs["stringData"]["jwt-secret"]
    assert jwt.startswith("plan-placeholder-todo-authJwtSecret")
    assert not [r for r in run.resources.values() if r.name == "app-secrets-jwt"]


def test_pubsub_speaks_tls_and_the_configured_mechanism() -> None:
    meta = _metadata(_run(), "pubsub")
    assert meta["brokers"] == BROKERS
    assert meta["saslMechanism"] == "SHA-256" and meta["disableTls"] == "false"
    assert meta["saslUsername"] == {"name": "kafka-credentials", "key": "username"}


def test_egress_opens_only_the_external_ports() -> None:
    run = _run()
    policies = {
        r.raw_inputs["metadata"]["name"]: r.raw_inputs["spec"]
        for r in by_type(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    kafka = policies["allow-kafka"]["egress"][0]
    assert kafka["ports"] == [{"protocol": "TCP", "port": 9096}]
    database = policies["allow-database"]["egress"][0]
    assert database["ports"] == [{"protocol": "TCP", "port": 6432}]
    assert "database-ingress" not in policies
