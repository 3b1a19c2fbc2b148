"""Cluster: DOKS in a VPC with fresh credentials, or a local context; one explicit provider."""

from __future__ import annotations

import pytest

from infra.components.cluster import ClusterArgs
from infra.settings import LocalCluster
from infra.tooling.plan.runner import PlanRun
from tests.infra.components.plans import EPHEMERAL, by_type, one, plan

PROVIDER = "pulumi:providers:kubernetes"


def test_minikube_uses_the_context_and_creates_nothing_in_the_cloud() -> None:
    run = plan("minikube")
    provider = one(run, "cluster-k8s")
    assert provider.inputs["context"] == "minikube"
    assert not [r for r in run.resources.values() if r.type.startswith("digitalocean:")]
    assert "kubeconfig" not in run.outputs and run.outputs["kubeContext"] == "minikube"


def test_prod_cluster_settings() -> None:
    run = plan("prod")
    doks = one(run, "cluster-doks")
    vpc = one(run, "cluster-vpc")
    inputs = doks.raw_inputs
    assert inputs["ha"] is True and inputs["surgeUpgrade"] is True
    assert inputs["version"] == "1.34.2-do.1"  # the newest offered patch of the prefix
    assert inputs["maintenancePolicy"] == {"day": "sunday", "startTime": "02:00"}
    pool = inputs["nodePool"]
    assert pool["size"] == "s-2vcpu-4gb"
    assert pool["autoScale"] is True and (pool["minNodes"], pool["maxNodes"]) == (6, 8)
    assert vpc.urn in doks.dependencies and vpc.raw_inputs["ipRange"] == "10.120.0.0/20"
    assert doks.parent == one(run, "cluster").urn


def test_provider_is_built_from_a_fresh_credential() -> None:
    run = plan("prod")
    provider = one(run, "cluster-k8s")
    doks = one(run, "cluster-doks")
    # The kubeconfig comes from get_kubernetes_cluster (run after the cluster exists),
    # not from the cluster's stored kubeConfigs.
    assert provider.inputs["kubeconfig"] == "[secret]"
    assert "plan-placeholder-token" in provider.raw_inputs["kubeconfig"]
    assert doks.urn in provider.dependencies
    assert run.outputs["kubeconfig"] == "[secret]"


def _kubernetes_resources(run: PlanRun) -> list[str]:
    provider = one(run, "cluster-k8s")
    wrong = [
        res.name
        for res in run.resources.values()
        if res.custom and res.type.startswith("kubernetes:") and res.provider_urn != provider.urn
    ]
    return wrong


def test_every_kubernetes_resource_uses_the_cluster_provider() -> None:
    for stack in ("minikube", "prod", EPHEMERAL):
        run = plan(stack)
        assert by_type(run, PROVIDER), stack
        assert _kubernetes_resources(run) == [], stack


def test_ephemeral_stack_reuses_the_base_cluster() -> None:
    run = plan(EPHEMERAL)
    assert not by_type(run, "digitalocean:index/kubernetesCluster:KubernetesCluster")
    assert not by_type(run, "digitalocean:index/vpc:Vpc")
    ref = by_type(run, "pulumi:pulumi:StackReference")
    assert [r.inputs["name"] for r in ref] == ["acme/todo/staging"]
    assert one(run, "cluster-k8s").inputs["kubeconfig"] == "[secret]"


def test_exactly_one_source_of_cluster() -> None:
    with pytest.raises(ValueError, match="exactly one of settings, existing_cluster_name"):
        ClusterArgs(
            resource_prefix="todo-x", settings=LocalCluster(), existing_cluster_name="todo-staging"
        )
    with pytest.raises(ValueError, match="exactly one"):
        ClusterArgs(resource_prefix="todo-x")
