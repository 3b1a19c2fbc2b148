"""Every rendered object of every stack validates offline.

Built-in kinds: kubernetes-validate --strict for the stack's Kubernetes minor version.
Custom resources: their CRD schema from the vendored k8s reference data
(infra/k8s-reference; unknown kinds fail). Helm releases: every value key exists in the
chart's defaults.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from infra.tooling.plan.build import Plan
from infra.tooling.plan.objects import KubernetesObject
from infra.tooling.plan.reference import chart_defaults, reference_dir
from tests.infra.conftest import EPHEMERAL_STACK, STACKS
from tests.infra.validation import (
    CHARTS_MISSING_FROM_REFERENCE,
    CRDS_MISSING_FROM_REFERENCE,
    SUBCHART_KEYS_CHECKED_BY_HAND,
    SUBCHARTS_MISSING_FROM_REFERENCE,
    crd_index,
    is_builtin,
    supported_kubernetes_versions,
    unknown_value_keys,
    validate_builtin,
    validate_custom,
)

# minikube v1.37 starts Kubernetes v1.34 unless told otherwise (`--kubernetes-version`).
MINIKUBE_KUBERNETES = "1.34"
ALL_STACKS = (*STACKS, "kind", EPHEMERAL_STACK)
CLUSTER_TYPE = "digitalocean:index/kubernetesCluster:KubernetesCluster"


def kubernetes_version(plan: Plan, staging: Plan) -> str:
    """The cluster's minor version: the planned DOKS version, the base's, or minikube's."""
    source = staging if plan.stack == EPHEMERAL_STACK else plan
    for resource in source.run.resources.values():
        if resource.type == CLUSTER_TYPE:
            match = re.match(r"(\d+\.\d+)\.", str(resource.inputs["version"]))
            assert match, resource.inputs["version"]
            return match.group(1)
    return MINIKUBE_KUBERNETES


def _objects(plan: Plan, *, builtin: bool) -> list[KubernetesObject]:
    return [o for o in plan.objects if not o.is_helm_release and is_builtin(o.body) == builtin]


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_builtin_objects_pass_kubernetes_validate_strict(planned: Any, stack: str) -> None:
    plan = planned(stack)
    version = kubernetes_version(plan, planned("staging"))
    assert version in {v.rsplit(".", 1)[0] for v in supported_kubernetes_versions()}
    objects = _objects(plan, builtin=True)
    assert len(objects) > 20  # namespaces, workloads, services, policies, ...
    failures = {
        f"{o.kind} {o.namespace}/{o.name}": errors
        for o in objects
        if (errors := validate_builtin(o.body, version))
    }
    assert failures == {}


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_custom_resources_match_their_crd_schemas(planned: Any, stack: str) -> None:
    plan = planned(stack)
    version = kubernetes_version(plan, planned("staging"))
    objects = _objects(plan, builtin=False)
    kinds = {o.kind for o in objects}
    assert kinds >= {"Component", "Kafka", "KafkaTopic", "ServiceMonitor"}
    assert "Subscription" not in kinds  # programmatic subscriptions only (issue 9)
    assert ("CiliumNetworkPolicy" in kinds) == (stack != "minikube")  # cni: generic there
    if stack != EPHEMERAL_STACK:
        assert kinds >= {"PodMonitor", "PrometheusRule", "EnvoyProxy", "Gateway", "HTTPRoute"}
    if stack in ("staging", "prod"):
        assert kinds >= {"ClusterIssuer", "Certificate"}
    failures = {
        f"{o.api_version} {o.kind} {o.namespace}/{o.name}": errors
        for o in objects
        if (errors := validate_custom(o.body, version))
    }
    assert failures == {}


@pytest.mark.parametrize("stack", STACKS)
def test_helm_values_exist_in_the_charts_defaults(planned: Any, stack: str) -> None:
    releases = [o for o in planned(stack).objects if o.is_helm_release]
    assert releases
    unknown: dict[str, list[str]] = {}
    for release in releases:
        spec = release.body["spec"]
        chart = str(spec["chart"]).rsplit("/", 1)[-1]
        defaults = chart_defaults(chart, str(spec["version"]))
        if defaults is None:
            assert chart in CHARTS_MISSING_FROM_REFERENCE, f"no default values for {chart}"
            continue
        checked_by_hand = SUBCHART_KEYS_CHECKED_BY_HAND.get(chart, {})
        keys = [
            key
            for key in unknown_value_keys(spec["values"], defaults)
            if key not in checked_by_hand
        ]
        if keys:
            unknown[release.name] = keys
    assert unknown == {}
    # Every key checked by hand sits below a subchart the reference lacks.
    for chart, reasons in SUBCHART_KEYS_CHECKED_BY_HAND.items():
        subcharts = SUBCHARTS_MISSING_FROM_REFERENCE[chart]
        assert all(key.split(".", 1)[0] in subcharts for key in reasons), chart


def test_allowed_gaps_in_the_reference_are_still_gaps() -> None:
    """Each exception above exists only while the reference lacks the data."""
    index = crd_index()
    for key in CRDS_MISSING_FROM_REFERENCE:
        assert key not in index, f"{key} now has a CRD: drop it from CRDS_MISSING_FROM_REFERENCE"
    values = reference_dir() / "values"
    for chart in CHARTS_MISSING_FROM_REFERENCE:
        assert not list(values.glob(f"{chart}-*.values.yaml")), f"{chart} now has values"
    for chart, subcharts in SUBCHARTS_MISSING_FROM_REFERENCE.items():
        for subchart in subcharts:
            assert not list(values.glob(f"{chart}-{subchart}-*.values.yaml")), subchart


# --- the checks catch what they are for -------------------------------------------------


def test_a_misspelt_helm_value_key_is_reported() -> None:
    defaults = chart_defaults("dapr", "1.18.3")
    assert defaults is not None
    values = {
        "global": {"ha": {"enabled": True, "replicaCount": 3}, "mtls": {"enabeld": True}},
        "dapr_sidecar_injector": {"sidecarRunAsNonRoot": True},
        "dapr_operatr": {"replicaCount": 2},
    }
    assert sorted(unknown_value_keys(values, defaults)) == [
        "dapr_operatr",
        "global.mtls.enabeld",
    ]


def test_a_misspelt_custom_resource_field_is_reported() -> None:
    topic: dict[str, Any] = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": "reminders", "labels": {"strimzi.io/cluster": "todo"}},
        "spec": {"partitions": 3, "replicas": 1, "config": {"retention.ms": 1}},
    }
    assert validate_custom(topic) == []
    misspelt = copy.deepcopy(topic)
    misspelt["spec"]["partitons"] = misspelt["spec"].pop("partitions")
    [error] = validate_custom(misspelt)
    assert "partitons" in error
    wrong_type = copy.deepcopy(topic)
    wrong_type["spec"]["replicas"] = "three"
    assert any("replicas" in e for e in validate_custom(wrong_type))


def test_an_envoy_proxy_without_a_crd_is_still_checked_field_by_field(planned: Any) -> None:
    (proxy,) = [o for o in planned("prod").objects if o.kind == "EnvoyProxy"]
    assert validate_custom(proxy.body) == []
    kubernetes = proxy.body["spec"]["provider"]["kubernetes"]

    def errors(change: Any) -> list[str]:
        body = copy.deepcopy(proxy.body)
        change(body["spec"]["provider"]["kubernetes"])
        return validate_custom(body)

    # Envoy Gateway's own structure: a misspelt field, a wrong enum, a misplaced field.
    [misspelt] = errors(lambda k: k["envoyDeployment"].update(replica=2))
    assert "replica" in misspelt and "envoyDeployment" in misspelt
    assert any(
        "LoadBalancr" in e for e in errors(lambda k: k["envoyService"].update(type="LoadBalancr"))
    )
    assert errors(lambda k: k.update(replicas=2))  # belongs under envoyDeployment
    assert errors(lambda k: k["envoyPDB"].update(maxUnavailabel=1))
    # Core types inside it, strictly: a misspelt securityContext field of the container.
    container = kubernetes["envoyDeployment"]["container"]
    assert "runAsNonRoot" in container["securityContext"]
    [core] = errors(
        lambda k: k["envoyDeployment"]["container"]["securityContext"].update(runAsNonroot=True)
    )
    assert core.startswith("envoyDeployment:") and "runAsNonroot" in core


def test_an_unknown_custom_kind_fails_instead_of_being_skipped() -> None:
    proxy = {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "Widget", "metadata": {}}
    assert validate_custom(proxy) == [
        "no CRD in k8s-reference for gateway.envoyproxy.io/v1alpha1 Widget"
    ]


def test_a_misspelt_builtin_field_is_reported() -> None:
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i:1", "imagePullPolcy": "Always"}]},
            },
        },
    }
    [error] = validate_builtin(deployment, MINIKUBE_KUBERNETES)
    assert "imagePullPolcy" in error
    fixed = copy.deepcopy(deployment)
    container = fixed["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicy"] = container.pop("imagePullPolcy")
    assert validate_builtin(fixed, MINIKUBE_KUBERNETES) == []


def test_a_cilium_policy_without_a_crd_is_still_checked_field_by_field(planned: Any) -> None:
    policies = [o for o in planned("prod").objects if o.kind == "CiliumNetworkPolicy"]
    assert policies and all(validate_custom(p.body) == [] for p in policies)
    body = policies[0].body

    def errors(change: Any) -> list[str]:
        broken = copy.deepcopy(body)
        change(broken["spec"])
        return validate_custom(broken)

    def misspelt_entity(spec: Any) -> None:
        spec["egress"][0]["toEntities"] = ["kube-api-server"]

    def numeric_port(spec: Any) -> None:
        spec["egress"][0]["toPorts"][0]["ports"][0]["port"] = 443

    def misplaced_field(spec: Any) -> None:
        spec["egress"][0]["toEndpoints"] = spec["egress"][0].pop("toEntities")

    def no_selector(spec: Any) -> None:
        del spec["endpointSelector"]

    assert any("kube-api-server" in e for e in errors(misspelt_entity))
    assert any("port" in e for e in errors(numeric_port))
    assert any("toEndpoints" in e for e in errors(misplaced_field))
    assert any("endpointSelector" in e for e in errors(no_selector))
