"""Every stack's rendered values make sense to a cluster and a cloud, not just to a schema.

The checks live in tests/infra/semantics.py; each runs on every stack's cached plan and
has a negative test below that feeds it a broken object and expects a message naming
the object and the field.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.tooling.plan.build import Plan
from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import KubernetesObject
from tests.infra.conftest import EPHEMERAL_STACK, STACKS
from tests.infra.semantics import (
    cidr_problems,
    image_problems,
    name_problems,
    reference_problems,
    string_problems,
    synthetic_object,
)

# kind: the proving ground's stack (Cilium on a local cluster) is checked here too.
ALL_STACKS = (*STACKS, "kind", EPHEMERAL_STACK)


def _resources(plan: Plan) -> list[RecordedResource]:
    return list(plan.run.resources.values())


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_cidrs_parse(planned: Any, stack: str) -> None:
    plan = planned(stack)
    assert cidr_problems(plan.objects, _resources(plan)) == []


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_no_empty_null_or_unresolved_strings(planned: Any, stack: str) -> None:
    plan = planned(stack)
    assert string_problems(plan.objects, _resources(plan)) == []


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_images_are_well_formed_references(planned: Any, stack: str) -> None:
    assert image_problems(planned(stack).objects) == []


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_names_labels_and_annotation_keys_are_valid(planned: Any, stack: str) -> None:
    assert name_problems(planned(stack).objects) == []


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_selectors_and_references_point_at_rendered_objects(planned: Any, stack: str) -> None:
    assert reference_problems(planned(stack).objects) == []


# --- each check catches what it is for ---------------------------------------------------


_object = synthetic_object


def _deployment(name: str = "api", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "todo", "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "ghcr.io/x/y:1.0",
                            "ports": [{"name": "http", "containerPort": 8000}],
                        }
                    ]
                },
            },
        },
    }
    body.update(changes)
    return body


def _service(selector: dict[str, str], target: int | str = "http") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "namespace": "todo", "labels": {"app": "api"}},
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": target}],
        },
    }


def _policy(cidr: str, *excepts: str) -> dict[str, Any]:
    block: dict[str, Any] = {"cidr": cidr}
    if excepts:
        block["except"] = list(excepts)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "out", "namespace": "todo"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": block}]}],
        },
    }


def test_a_bad_cidr_is_reported_with_its_object_and_field() -> None:
    assert cidr_problems([_object(_policy("10.0.0.0/8", "10.1.0.0/16"))]) == []
    [empty] = cidr_problems([_object(_policy("/32"))])
    assert empty.startswith("NetworkPolicy todo/out: spec.egress[0].to[0].ipBlock.cidr:")
    assert "empty address" in empty
    [host_bits] = cidr_problems([_object(_policy("10.110.0.5/20"))])
    assert "does not parse" in host_bits
    [outside] = cidr_problems([_object(_policy("10.0.0.0/8", "192.168.0.0/16"))])
    assert "ipBlock.except[0]" in outside and "not inside cidr" in outside


def test_a_bad_cloud_cidr_is_reported(planned: Any) -> None:
    (vpc,) = [r for r in _resources(planned("staging")) if r.type.endswith(":Vpc")]
    assert cidr_problems([], [vpc]) == []
    broken = copy.deepcopy(vpc)
    broken.inputs["ipRange"] = "/20"
    [problem] = cidr_problems([], [broken])
    assert problem.startswith(f"{vpc.type} {vpc.name}: ipRange:") and "empty address" in problem


def test_empty_null_and_unresolved_strings_are_reported() -> None:
    body = _deployment()
    body["metadata"]["annotations"] = {
        "a.example/empty": "",
        "a.example/none": "None",
        "a.example/output": "Calling __str__ on an Output[T] is not supported.",
        "a.example/repr": "<pulumi.output.Output object at 0x7f>",
    }
    problems = string_problems([_object(body)])
    assert [p.split(": ", 2)[1] for p in problems] == [
        "metadata.annotations.a.example/empty",
        "metadata.annotations.a.example/none",
        "metadata.annotations.a.example/output",
        "metadata.annotations.a.example/repr",
    ]
    assert all(p.startswith("Deployment todo/api: ") for p in problems)
    # The allow-list is specific: `None` is a headless Service's clusterIP, nothing else's.
    headless = _service({"app": "api"})
    headless["spec"]["clusterIP"] = "None"
    assert string_problems([_object(headless)]) == []
    headless["spec"]["type"] = "None"
    [problem] = string_problems([_object(headless)])
    assert "Service todo/api: spec.type:" in problem


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/x/y:",
        "ghcr.io/X/y:1",
        "ghcr.io/x/y@sha256:abc",
        "ghcr.io/x/y:1.0@sha256:" + "A" * 64,
        "",
        ":1.0",
        "ghcr.io//y",
    ],
)
def test_a_malformed_image_is_reported(image: str) -> None:
    body = _deployment()
    body["spec"]["template"]["spec"]["containers"][0]["image"] = image
    [problem] = image_problems([_object(body)])
    assert problem.startswith("Deployment todo/api: spec.template.spec.containers[0].image:")


@pytest.mark.parametrize(
    "image",
    [
        "postgres",
        "docker.io/library/postgres:17.6-alpine",
        "localhost:5000/a/b_c__d-e:v1",
        "release.invalid/todo/todo-backend:planned@sha256:" + "0" * 64,
    ],
)
def test_well_formed_images_pass(image: str) -> None:
    body = _deployment()
    body["spec"]["template"]["spec"]["containers"][0]["image"] = image
    assert image_problems([_object(body)]) == []


def test_a_malformed_image_in_helm_values_is_reported() -> None:
    record = {
        "apiVersion": "plan.todo.dev/v1",
        "kind": "HelmRelease",
        "metadata": {"name": "chart", "namespace": "x"},
        "spec": {
            "values": {"a": {"image": {"registry": "quay.io", "tag": "v1 .2"}}, "initImage": "x:"}
        },
    }
    problems = image_problems([_object(record)])
    assert sorted(p.split(": ")[1] for p in problems) == [
        "spec.values.a.image.tag",
        "spec.values.initImage",
    ]


def test_invalid_names_labels_and_annotation_keys_are_reported() -> None:
    body = _deployment(name="API_v1")
    body["metadata"]["labels"] = {"app": "x" * 64, "-bad/key": "v"}
    body["metadata"]["annotations"] = {"example.com/" + "k" * 64: "v"}
    problems = name_problems([_object(body)])
    assert any("metadata.name:" in p and "DNS-1123 subdomain" in p for p in problems)
    assert any("metadata.labels.app:" in p and "label value" in p for p in problems)
    assert any("metadata.labels.-bad/key:" in p and "prefix" in p for p in problems)
    assert any("metadata.annotations.example.com/" in p for p in problems)
    assert all(p.startswith("Deployment todo/API_v1: ") for p in problems)
    # A Service name must be a DNS-1035 label (no leading digit); a Deployment's need not.
    service = _service({"app": "api"})
    service["metadata"]["name"] = "1api"
    [problem] = name_problems([_object(service)])
    assert "DNS-1035" in problem
    assert name_problems([_object(_deployment(name="1api"))]) == []


def test_a_service_that_selects_nothing_or_a_missing_port_is_reported() -> None:
    pods = _object(_deployment())
    assert reference_problems([pods, _object(_service({"app": "api"}))]) == []
    [nothing] = reference_problems([pods, _object(_service({"app": "apj"}))])
    assert nothing.startswith("Service todo/api: spec.selector:") and "selects no pod" in nothing
    [named] = reference_problems([pods, _object(_service({"app": "api"}, "metrics"))])
    assert "spec.ports[0].targetPort: 'metrics'" in named
    [numbered] = reference_problems([pods, _object(_service({"app": "api"}, 8080))])
    assert "spec.ports[0].targetPort: 8080" in numbered


def test_a_dangling_hpa_pdb_or_monitor_is_reported() -> None:
    pods = _object(_deployment())
    service = _object(_service({"app": "api"}))
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "namespace": "todo"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "apj"}},
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "api", "namespace": "todo"},
        "spec": {"selector": {"matchLabels": {"app": "apj"}}},
    }
    monitor: dict[str, Any] = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "api", "namespace": "todo"},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "endpoints": [{"port": "metrics"}]},
    }
    pod_monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "api", "namespace": "monitoring"},
        "spec": {
            "namespaceSelector": {"matchNames": ["todo"]},
            "selector": {"matchLabels": {"app": "api"}},
            "podMetricsEndpoints": [{"port": "http"}, {"port": "dapr-metrics"}],
        },
    }
    problems = reference_problems([pods, service, *map(_object, (hpa, pdb, monitor, pod_monitor))])
    assert problems == [
        "HorizontalPodAutoscaler todo/api: spec.scaleTargetRef: Deployment apj is not in todo",
        "PodDisruptionBudget todo/api: spec.selector: {'matchLabels': {'app': 'apj'}} "
        "selects no pod template in todo",
        "ServiceMonitor todo/api: spec.endpoints[0].port: 'metrics' is not a port name of ['api']",
        "PodMonitor monitoring/api: spec.podMetricsEndpoints[1].port: 'dapr-metrics' is not a "
        "container port name of ['api']",
    ]
    # The same PodMonitor finds `dapr-metrics` once the pod asks for a Dapr sidecar.
    injected = _deployment()
    injected["spec"]["template"]["metadata"]["annotations"] = {"dapr.io/enabled": "true"}
    assert reference_problems([_object(injected), _object(pod_monitor)]) == []
    elsewhere = copy.deepcopy(monitor)
    elsewhere["spec"]["namespaceSelector"] = {"matchNames": ["other"]}
    [problem] = reference_problems([pods, service, _object(elsewhere)])
    assert problem == "ServiceMonitor todo/api: spec.selector: selects no Service in ['other']"


def test_a_pdb_may_select_a_helm_releases_pods_by_its_standard_labels() -> None:
    release = synthetic_object(
        {
            "apiVersion": "plan.todo.dev/v1",
            "kind": "HelmRelease",
            "metadata": {"name": "otel-collector", "namespace": "monitoring"},
            "spec": {"chart": "opentelemetry-collector", "namespace": "monitoring", "values": {}},
        }
    )

    def pdb(namespace: str, name: str, instance: str) -> KubernetesObject:
        return _object(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "collector", "namespace": namespace},
                "spec": {
                    "maxUnavailable": 1,
                    "selector": {
                        "matchLabels": {
                            "app.kubernetes.io/name": name,
                            "app.kubernetes.io/instance": instance,
                        }
                    },
                },
            }
        )

    assert release.is_helm_release
    good = pdb("monitoring", "opentelemetry-collector", "otel-collector")
    assert reference_problems([release, good]) == []
    # Another release name, another chart, another namespace: nothing is selected.
    for wrong in (
        pdb("monitoring", "opentelemetry-collector", "otel"),
        pdb("monitoring", "tempo", "otel-collector"),
        pdb("todo", "opentelemetry-collector", "otel-collector"),
    ):
        [problem] = reference_problems([release, wrong])
        assert "selects no pod template" in problem
