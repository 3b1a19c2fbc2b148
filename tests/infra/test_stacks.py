"""Each stack's whole program under mocks: graph order, pinning, hardening and exports."""

from __future__ import annotations

from typing import Any

import pytest

from infra.plan.runner import PlanRun
from tests.infra.components.plans import EPHEMERAL, by_type, one, plan, pod_spec

WORKLOADS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:batch/v1:Job",
)
# Which release installs the CRDs of which API group.
CRD_OWNERS = {"kafka.strimzi.io": "kafka-operator", "dapr.io": "dapr-control-plane"}
ALL = ["minikube", "staging", "prod", EPHEMERAL]


def _workloads(run: PlanRun) -> list[Any]:
    return [res for res in run.resources.values() if res.type in WORKLOADS]


@pytest.mark.parametrize("stack", ["minikube", "staging", "prod"])
def test_custom_resources_follow_the_release_that_installs_their_crd(stack: str) -> None:
    run = plan(stack)
    checked = 0
    for res in run.resources.values():
        group = res.type.split(":")[1].split("/")[0]
        owner = CRD_OWNERS.get(group)
        if owner is not None:
            assert one(run, owner).urn in res.dependencies, res.name
            checked += 1
    assert checked >= 16


@pytest.mark.parametrize("stack", ["minikube", "staging", "prod"])
def test_releases_are_pinned_and_independent(stack: str) -> None:
    run = plan(stack)
    releases = {r.name: r for r in by_type(run, "kubernetes:helm.sh/v3:Release")}
    assert {n: r.raw_inputs["version"] for n, r in releases.items()} == {
        "kafka-operator": "1.2.0",
        "dapr-control-plane": "1.18.3",
    }
    # Neither release waits for the other, nor for the database: they install in parallel.
    for release in releases.values():
        others = {r.urn for r in releases.values() if r is not release}
        assert not others & set(release.dependencies)
        assert not [d for d in release.dependencies if "database" in d]


@pytest.mark.parametrize("stack", ALL)
def test_every_workload_is_hardened(stack: str) -> None:
    run = plan(stack)
    workloads = _workloads(run)
    assert len(workloads) >= 4
    for res in workloads:
        spec = pod_spec(res)
        assert spec["automountServiceAccountToken"] is False, res.name
        assert spec["securityContext"]["runAsNonRoot"] is True, res.name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, res.name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, res.name
            assert context["allowPrivilegeEscalation"] is False, res.name
            assert context["capabilities"] == {"drop": ["ALL"]}, res.name
            assert set(container["resources"]) == {"requests", "limits"}, res.name
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


@pytest.mark.parametrize("stack", ALL)
def test_every_resource_is_parented_by_a_component(stack: str) -> None:
    run = plan(stack)
    top_level = {r.type for r in run.resources.values() if r.parent == run.stack_urn}
    assert all(t.startswith("todo:") for t in top_level), top_level


def test_exports_per_stack() -> None:
    minikube = plan("minikube").outputs
    assert minikube["backendUrl"] == "http://backend.todo.svc.cluster.local:8000"
    assert "kubeconfig" not in minikube and "databaseAdminUrl" not in minikube
    staging = plan("staging").outputs
    assert staging["kubeconfig"] == "[secret]" and staging["databaseAdminUrl"] == "[secret]"
    assert {"clusterName", "apiServerCidr", "databaseClusterId", "vpcIpRange"} <= set(staging)
    dev = plan(EPHEMERAL).outputs
    assert dev["appsNamespace"] == "todo-dev-alice" and dev["owner"] == "alice"
    assert dev["expiresAt"] == "2026-01-04T18:00:00+00:00"


def _cpu(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def _memory_mi(value: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(value[:-2]) * units[value[-2:]]


def test_minikube_footprint_fits_a_4_cpu_8_gib_node() -> None:
    run = plan("minikube")
    cpu = memory = 0.0
    for res in _workloads(run):
        replicas = 1
        if res.type.endswith("Deployment"):
            app = res.raw_inputs["metadata"]["name"]
            replicas = one(run, f"{app}-hpa").raw_inputs["spec"]["minReplicas"]
            annotations = res.raw_inputs["spec"]["template"]["metadata"]["annotations"]
            cpu += replicas * _cpu(annotations["dapr.io/sidecar-cpu-request"])
            memory += replicas * _memory_mi(annotations["dapr.io/sidecar-memory-request"])
        for container in pod_spec(res)["containers"]:
            cpu += replicas * _cpu(container["resources"]["requests"]["cpu"])
            memory += replicas * _memory_mi(container["resources"]["requests"]["memory"])
    pool = by_type(run, "kubernetes:kafka.strimzi.io/v1:KafkaNodePool")[0].raw_inputs["spec"]
    cpu += _cpu(pool["resources"]["requests"]["cpu"])
    memory += _memory_mi(pool["resources"]["requests"]["memory"])
    # Our workloads plus Kafka leave at least half the node to the system, the operators
    # and the monitoring stack.
    assert cpu <= 2.0 and memory <= 4096, (cpu, memory)
