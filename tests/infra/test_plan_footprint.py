"""Footprint: the scheduler's view of every pod the plan leads to."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.tooling.plan import reference
from infra.tooling.plan.build import Plan
from infra.tooling.plan.footprint import (
    CHART_MODELS,
    CLUSTER_TYPE,
    MINIKUBE,
    Footprint,
    PodGroup,
    Requests,
    capacity_of,
    compute_footprint,
)
from infra.tooling.plan.footprint.capacity import doks_allocatable
from infra.tooling.plan.footprint.requests import pod_requests
from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import KubernetesObject, to_object
from infra.tooling.plan.quantities import GIB, MIB, QuantityError, bytes_of, millicores
from infra.tooling.plan.reference import chart_defaults
from infra.tooling.plan.volumes import planned_volume_claims


def _container(
    name: str, cpu: str | None, memory: str | None, **extra: object
) -> dict[str, object]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": name, "resources": {"requests": requests}, **extra}


def test_quantities() -> None:
    assert millicores("250m") == 250 and millicores("1.5") == 1500 and millicores(2) == 2000
    assert bytes_of("512Mi") == 512 * MIB and bytes_of("1G") == 10**9 and bytes_of("1Gi") == GIB
    with pytest.raises(QuantityError):
        bytes_of("lots")


def test_pod_request_is_the_larger_of_app_containers_and_the_biggest_init() -> None:
    template = {
        "spec": {
            "initContainers": [_container("migrate", "800m", "64Mi")],
            "containers": [_container("app", "100m", "128Mi"), _container("log", "50m", "32Mi")],
        }
    }
    requests = pod_requests(template)
    assert (requests.cpu_m, requests.memory) == (800, 160 * MIB)
    assert requests.unrequested == ()


def test_restartable_init_containers_and_the_dapr_sidecar_add_up() -> None:
    template = {
        "metadata": {
            "annotations": {
                "dapr.io/enabled": "true",
                "dapr.io/sidecar-cpu-request": "50m",
                "dapr.io/sidecar-memory-request": "64Mi",
            }
        },
        "spec": {
            "initContainers": [_container("proxy", "20m", "16Mi", restartPolicy="Always")],
            "containers": [_container("app", "100m", "128Mi")],
        },
    }
    requests = pod_requests(template)
    assert (requests.cpu_m, requests.memory) == (170, 208 * MIB)


def test_missing_requests_are_named_and_limits_stand_in_for_requests() -> None:
    template = {
        "metadata": {"annotations": {"dapr.io/enabled": "true"}},
        "spec": {
            "containers": [
                {"name": "bare"},
                {"name": "limited", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            ]
        },
    }
    requests = pod_requests(template)
    assert (requests.cpu_m, requests.memory) == (1000, GIB)
    assert requests.unrequested == ("bare", "daprd (sidecar)")


def test_totals_count_replicas_daemonsets_per_node_and_leave_jobs_out() -> None:
    footprint = Footprint(
        groups=[
            PodGroup("web", 3, Requests(100, 100 * MIB)),
            PodGroup("agent", 1, Requests(10, 10 * MIB), per_node=True),
            PodGroup("migrate", 1, Requests(5000, 50 * GIB), transient=True),
        ],
        capacity=MINIKUBE,
    )
    assert footprint.cpu_m == 310 and footprint.memory == 310 * MIB and footprint.pods == 4
    assert footprint.fits()
    heavy = Footprint(groups=[PodGroup("huge", 1, Requests(3500, GIB))], capacity=MINIKUBE)
    assert not heavy.fits()  # 3.5 CPU + the control plane's 0.75 > 4 CPU


def _doks(size: str, min_nodes: int) -> RecordedResource:
    inputs = {"nodePool": {"size": size, "minNodes": min_nodes, "autoScale": True}}
    return RecordedResource(
        urn="urn:doks",
        type=CLUSTER_TYPE,
        name="doks",
        parent=None,
        provider=None,
        dependencies=(),
        custom=True,
        inputs=inputs,
        has_secrets=False,
        raw_inputs=inputs,
    )


def test_doks_capacity_is_the_published_allocatable_memory_less_doks_pods() -> None:
    # docs.digitalocean.com/products/kubernetes/details/limits/#allocatable-memory:
    # s-2vcpu-4gb -> 2.5 GiB, s-4vcpu-8gb -> 6 GiB (not the Droplet's 4 and 8).
    assert doks_allocatable("s-2vcpu-4gb") == (1800, int(2.5 * GIB))
    assert doks_allocatable("s-4vcpu-8gb") == (3600, 6 * GIB)
    assert doks_allocatable("s-1vcpu-2gb") == (900, GIB)
    # A size the table does not list: a quarter of its memory is taken as reserved.
    assert doks_allocatable("s-1vcpu-1gb") == (900, int(0.75 * GIB))
    capacity = capacity_of([_doks("s-2vcpu-4gb", 5)])
    assert (capacity.nodes, capacity.cpu_m, capacity.memory) == (5, 9000, int(12.5 * GIB))
    # DOKS's own pods: 400m / 400 Mi on every node, 300m / 256 Mi once.
    assert (capacity.system_cpu_m, capacity.system_memory) == (2300, 2256 * MIB)
    assert capacity.node_memory == (int(12.5 * GIB) - 2256 * MIB) // 5
    assert "DigitalOcean's table" in capacity.source and "assumed" in capacity.source


def test_a_pool_too_small_does_not_fit() -> None:
    brokers = PodGroup("KafkaNodePool kafka/brokers", 3, Requests(250, GIB), stateful=True)
    web = PodGroup("Deployment todo/web", 3, Requests(200, 320 * MIB), rolling=True)
    # 3 × 2.5 GiB less DOKS's pods: 3 brokers and 3 web pods fit, with a 4th web pod.
    roomy = Footprint(groups=[brokers, web], capacity=capacity_of([_doks("s-2vcpu-4gb", 3)]))
    assert roomy.fits() and roomy.unplaced() == []
    assert roomy.surge == Requests(200, 320 * MIB)
    # On two nodes the third broker has no node of its own (hard spread): no fit, even
    # though the memory would add up.
    two = Footprint(groups=[brokers, web], capacity=capacity_of([_doks("s-2vcpu-4gb", 2)]))
    assert not two.fits() and "KafkaNodePool kafka/brokers" in two.unplaced()
    # The old rule (8 GB counted as 8 GiB) would have fitted 14 GiB of requests on two
    # s-4vcpu-8gb nodes; the allocatable 2 × 6 GiB does not.
    big = PodGroup("StatefulSet db", 2, Requests(500, 7 * GIB), stateful=True)
    assert not Footprint(groups=[big], capacity=capacity_of([_doks("s-4vcpu-8gb", 2)])).fits()
    # One node down: the memory adds up (4032 of 4148 Mi), the brokers' spread does not.
    assert roomy.one_node_down()[1] == 2 * roomy.capacity.node_memory - 4032 * MIB > 0
    assert roomy.unplaced(nodes=2) == ["KafkaNodePool kafka/brokers"]


def test_sample_plan_footprint(sample_plan: Plan) -> None:
    footprint = compute_footprint(sample_plan.objects, sample_plan.run.resources.values())
    by_source = {group.source: group for group in footprint.groups}

    # The HPA's minReplicas (3) decides, not the Deployment's replicas (2); the init
    # container (500m) outweighs app + sidecar (150m); memory is app + sidecar (192Mi).
    backend = by_source["Deployment todo/backend"]
    assert backend.replicas == 3
    assert (backend.per_pod.cpu_m, backend.per_pod.memory) == (500, 192 * MIB)
    brokers = by_source["KafkaNodePool kafka/broker"]
    assert (brokers.replicas, brokers.per_pod.cpu_m, brokers.per_pod.memory) == (3, 250, GIB)
    # DigitalOcean's allocatable memory of a 4 GB node is 2.5 GiB, not 4.
    assert footprint.capacity.nodes == 2
    assert footprint.capacity.cpu_m == 2 * 1800 and footprint.capacity.memory == 2 * 2.5 * GIB


def test_helm_pods_come_from_values_over_chart_defaults(sample_plan: Plan) -> None:
    footprint = compute_footprint(sample_plan.objects)
    by_source = {group.source: group for group in footprint.groups}

    # global.ha.enabled → the chart's global.ha.replicaCount (3) for every control plane part.
    operator = by_source["helm dapr: dapr-operator"]
    assert operator.replicas == 3
    assert (operator.per_pod.cpu_m, operator.per_pod.memory) == (50, 64 * MIB)
    assert by_source["helm dapr: dapr-placement"].per_pod.unrequested == ("placement",)
    # Strimzi's operator sets no resources in the release: the chart's defaults apply.
    defaults = chart_defaults("strimzi-kafka-operator", "1.2.0")
    assert defaults is not None
    operator_requests = defaults["resources"]["requests"]
    strimzi = by_source["helm strimzi: cluster operator"]
    assert strimzi.per_pod.cpu_m == millicores(operator_requests["cpu"])
    assert strimzi.per_pod.memory == bytes_of(operator_requests["memory"])


def _chart_groups(chart: str, values: Mapping[str, object]) -> dict[str, PodGroup]:
    return {group.source: group for group in CHART_MODELS[chart]("r", values)}


def test_dapr_placement_and_scheduler_follow_the_values() -> None:
    on = _chart_groups("dapr", {"global": {"ha": {"enabled": True, "replicaCount": 3}}})
    assert on["helm r: dapr-placement"].replicas == on["helm r: dapr-scheduler"].replicas == 3
    off = _chart_groups(
        "dapr", {"global": {"actors": {"enabled": False}, "scheduler": {"enabled": False}}}
    )
    assert set(off) == {
        "helm r: dapr-operator",
        "helm r: dapr-sentry",
        "helm r: dapr-sidecar-injector",
    }
    # Actors served by another placement service than the chart's: none of ours runs.
    elsewhere = _chart_groups("dapr", {"global": {"actors": {"serviceName": "other"}}})
    assert "helm r: dapr-placement" not in elsewhere


def test_scheduler_volumes_only_where_the_scheduler_runs() -> None:
    def release(values: Mapping[str, object]) -> KubernetesObject:
        inputs = {"name": "dapr", "chart": "dapr", "version": "0.0.0-none", "values": values}
        resource = RecordedResource(
            urn="urn:dapr",
            type="kubernetes:helm.sh/v3:Release",
            name="dapr",
            parent=None,
            provider=None,
            dependencies=(),
            custom=True,
            inputs=inputs,
            has_secrets=False,
            raw_inputs=inputs,
        )
        return to_object(resource)

    sized = {"dapr_scheduler": {"cluster": {"storageSize": "1Gi"}}}
    assert [c.source for c in planned_volume_claims([release(sized)])] == [
        "helm dapr: dapr-scheduler"
    ]
    off = {**sized, "global": {"scheduler": {"enabled": False}}}
    assert planned_volume_claims([release(off)]) == []


def test_kube_prometheus_stack_pods() -> None:
    small = {"requests": {"cpu": "10m", "memory": "32Mi"}}
    values: dict[str, object] = {
        "prometheus": {"prometheusSpec": {"resources": {"requests": {"cpu": "100m"}}}},
        "alertmanager": {"enabled": False},
        "prometheusOperator": {"prometheusConfigReloader": {"resources": small}},
        "grafana": {
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
            "sidecar": {
                "resources": small,
                "dashboards": {"enabled": True},
                "datasources": {"enabled": True},
            },
        },
        "nodeExporter": {"enabled": False},
    }
    groups = _chart_groups("kube-prometheus-stack", values)
    assert "helm r: alertmanager" not in groups and "helm r: node-exporter" not in groups
    # Prometheus runs the config-reloader next to it; Grafana one container per sidecar.
    assert groups["helm r: prometheus"].per_pod.cpu_m == 110
    grafana = groups["helm r: grafana"].per_pod
    assert (grafana.cpu_m, grafana.memory) == (70, 192 * MIB)
    with_alerts = _chart_groups(
        "kube-prometheus-stack", {**values, "alertmanager": {"enabled": True}}
    )
    assert with_alerts["helm r: alertmanager"].per_pod.unrequested == ("alertmanager",)


def test_loki_and_alloy_pods() -> None:
    loki = _chart_groups(
        "loki",
        {"singleBinary": {"replicas": 1, "resources": {"requests": {"cpu": "50m"}}}},
    )
    assert list(loki) == ["helm r: loki"]
    assert loki["helm r: loki"].replicas == 1 and loki["helm r: loki"].stateful
    # The chart's defaults run a gateway and two memcached caches (8 GiB for the chunks):
    # values that keep them are not counted silently.
    with pytest.raises(ValueError, match="gateway"):
        _chart_groups("loki", {"singleBinary": {"replicas": 1}, "gateway": {"enabled": True}})
    with pytest.raises(ValueError, match="deploymentMode 'Distributed'"):
        _chart_groups("loki", {"deploymentMode": "Distributed"})
    reloader = {"resources": {"requests": {"memory": "50Mi"}}}  # the chart's default
    alloy = _chart_groups(
        "alloy",
        {"alloy": {"resources": {"requests": {"memory": "64Mi"}}}, "configReloader": reloader},
    )
    group = alloy["helm r: alloy"]
    # A DaemonSet by default, with the config reloader's 50Mi unless it is switched off.
    assert group.per_node and group.per_pod.memory == (64 + 50) * MIB
    quiet = _chart_groups(
        "alloy",
        {
            "alloy": {"resources": {"requests": {"memory": "64Mi"}}},
            "configReloader": {"enabled": False},
        },
    )
    assert quiet["helm r: alloy"].per_pod.memory == 64 * MIB


def test_planned_stacks_count_every_pod_they_run(planned: Any) -> None:
    minikube = compute_footprint(
        planned("minikube").objects, planned("minikube").run.resources.values()
    )
    by_source = {group.source: group for group in minikube.steady}
    # Envoy's own container plus Envoy Gateway's shutdown-manager in every proxy pod.
    envoy = by_source["Gateway envoy-gateway-system/todo (Envoy proxy)"]
    assert (envoy.per_pod.cpu_m, envoy.per_pod.memory) == (110, 160 * MIB)
    assert not [s for s in by_source if "alertmanager" in s or "cert-manager" in s]
    assert minikube.notes == [] and minikube.unrequested == []
    prod = planned("prod")
    groups = {
        g.source: g for g in compute_footprint(prod.objects, prod.run.resources.values()).steady
    }
    assert groups["helm kube-prometheus-stack: alertmanager"].replicas == 1
    assert {"helm cert-manager: controller", "helm cert-manager: webhook"} <= set(groups)
    assert groups["Gateway envoy-gateway-system/todo (Envoy proxy)"].replicas == 2
    assert not [s for s in groups if "placement" in s or "scheduler" in s]


def test_reference_yaml_is_kept_parsed_between_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "chart-1.0.0.values.yaml"
    source.write_text("replicas: 1\nimage: {tag: v1}\n")
    monkeypatch.setenv("TODO_INFRA_BYTECODE_CACHE", str(tmp_path / "cache" / "pycache"))
    reference._load_yaml.cache_clear()
    assert reference._load_yaml(source) == {"replicas": 1, "image": {"tag": "v1"}}
    assert len(list((tmp_path / "cache" / "yaml").glob("*.marshal"))) == 1
    # An edited file is parsed again (the key holds its size and modification time).
    source.write_text("replicas: 22\n")
    reference._load_yaml.cache_clear()
    assert reference._load_yaml(source) == {"replicas": 22}
    # An unchanged file comes from the kept form, without parsing.
    reference._load_yaml.cache_clear()

    def no_parsing(*_: object, **__: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(yaml, "load", no_parsing)
    assert reference._load_yaml(source) == {"replicas": 22}
    reference._load_yaml.cache_clear()
