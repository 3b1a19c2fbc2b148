"""Helm releases' pods: the release's values over the chart's defaults, read by a small
model of each chart's workloads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from infra.tooling.plan.footprint.requests import PodGroup, Requests, at_path, resources_requests
from infra.tooling.plan.objects import KubernetesObject, helm_release_values
from infra.tooling.plan.reference import chart_defaults, deep_merge

ChartModel = Callable[[str, Mapping[str, Any]], list[PodGroup]]


def dapr_component_enabled(values: Mapping[str, Any], component: str) -> bool:
    """Whether the dapr chart renders a control-plane service with these values.

    Placement runs only with actors on (`global.actors.enabled`, served by `placement`),
    the scheduler only with `global.scheduler.enabled`; both default to on.
    """
    if at_path(values, f"dapr_{component}.enabled", True) is False:
        return False
    if component == "placement":
        return at_path(values, "global.actors.enabled", True) is not False and (
            at_path(values, "global.actors.serviceName", "placement") == "placement"
        )
    if component == "scheduler":
        return at_path(values, "global.scheduler.enabled", True) is not False
    return True


def _dapr_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    ha = bool(at_path(values, "global.ha.enabled", False))
    ha_count = int(at_path(values, "global.ha.replicaCount", 3))
    groups = []
    for component in ("operator", "sentry", "sidecar_injector", "placement", "scheduler"):
        sub = f"dapr_{component}"
        if not dapr_component_enabled(values, component):
            continue
        replicas = ha_count if ha else int(at_path(values, f"{sub}.replicaCount", 1))
        requests = resources_requests(at_path(values, f"{sub}.resources"), component)
        groups.append(
            PodGroup(f"helm {release}: dapr-{component.replace('_', '-')}", replicas, requests)
        )
    return groups


def _strimzi_operator_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    requests = resources_requests(values.get("resources"), "strimzi-cluster-operator")
    return [PodGroup(f"helm {release}: cluster operator", int(values.get("replicas", 1)), requests)]


def _kube_prometheus_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    """Prometheus and Alertmanager (each with the operator's config-reloader), the
    operator, Grafana (with one container per enabled sidecar), kube-state-metrics and
    node-exporter (per node), each where enabled."""
    reloader = resources_requests(
        at_path(values, "prometheusOperator.prometheusConfigReloader.resources"), "config-reloader"
    )
    groups: list[PodGroup] = []

    def add(
        enabled: str, name: str, replicas: int, requests: Requests, per_node: bool = False
    ) -> None:
        if at_path(values, enabled, True):
            stateful = name in ("prometheus", "alertmanager")  # StatefulSets with volumes
            groups.append(
                PodGroup(f"helm {release}: {name}", replicas, requests, per_node, stateful=stateful)
            )

    add(
        "prometheus.enabled",
        "prometheus",
        int(at_path(values, "prometheus.prometheusSpec.replicas", 1) or 1),
        resources_requests(at_path(values, "prometheus.prometheusSpec.resources"), "prometheus")
        + reloader,
    )
    add(
        "alertmanager.enabled",
        "alertmanager",
        int(at_path(values, "alertmanager.alertmanagerSpec.replicas", 1) or 1),
        resources_requests(
            at_path(values, "alertmanager.alertmanagerSpec.resources"), "alertmanager"
        )
        + reloader,
    )
    add(
        "prometheusOperator.enabled",
        "prometheus-operator",
        1,
        resources_requests(at_path(values, "prometheusOperator.resources"), "operator"),
    )
    grafana = resources_requests(at_path(values, "grafana.resources"), "grafana")
    for sidecar in ("dashboards", "datasources", "alerts", "notifiers", "plugins"):
        if at_path(values, f"grafana.sidecar.{sidecar}.enabled", False):
            grafana += resources_requests(
                at_path(values, "grafana.sidecar.resources"), f"grafana-sc-{sidecar}"
            )
    add("grafana.enabled", "grafana", int(at_path(values, "grafana.replicas", 1) or 1), grafana)
    add(
        "kubeStateMetrics.enabled",
        "kube-state-metrics",
        int(at_path(values, "kube-state-metrics.replicas", 1) or 1),
        resources_requests(at_path(values, "kube-state-metrics.resources"), "kube-state-metrics"),
    )
    add(
        "nodeExporter.enabled",
        "node-exporter",
        1,
        resources_requests(at_path(values, "prometheus-node-exporter.resources"), "node-exporter"),
        per_node=True,
    )
    return groups


def _cert_manager_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    groups = [
        PodGroup(
            f"helm {release}: controller",
            int(values.get("replicaCount", 1)),
            resources_requests(values.get("resources"), "controller"),
        ),
        PodGroup(
            f"helm {release}: webhook",
            int(at_path(values, "webhook.replicaCount", 1)),
            resources_requests(at_path(values, "webhook.resources"), "webhook"),
        ),
    ]
    if at_path(values, "cainjector.enabled", True):
        groups.append(
            PodGroup(
                f"helm {release}: cainjector",
                int(at_path(values, "cainjector.replicaCount", 1)),
                resources_requests(at_path(values, "cainjector.resources"), "cainjector"),
            )
        )
    return groups


def _envoy_gateway_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    return [
        PodGroup(
            f"helm {release}: envoy-gateway",
            int(at_path(values, "deployment.replicas", 1) or 1),
            resources_requests(
                at_path(values, "deployment.envoyGateway.resources"), "envoy-gateway"
            ),
        )
    ]


def _otel_collector_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    """The collector in deployment mode (`replicaCount` pods), or once per node as a
    DaemonSet."""
    mode = str(values.get("mode") or "deployment")
    return [
        PodGroup(
            f"helm {release}: otel-collector",
            1 if mode == "daemonset" else int(values.get("replicaCount", 1) or 1),
            resources_requests(values.get("resources"), "otel-collector"),
            per_node=mode == "daemonset",
            stateful=mode == "statefulset",
        )
    ]


def _tempo_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    """Tempo's single binary (a StatefulSet), with tempo-query where enabled."""
    requests = resources_requests(at_path(values, "tempo.resources"), "tempo")
    if at_path(values, "tempoQuery.enabled", False):
        requests += resources_requests(at_path(values, "tempoQuery.resources"), "tempo-query")
    return [
        PodGroup(
            f"helm {release}: tempo",
            int(values.get("replicas", 1) or 1),
            requests,
            stateful=True,
        )
    ]


def _loki_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    """Loki's single binary (`singleBinary.replicas`, a StatefulSet) in the Monolithic
    modes; the scalable targets, gateway and caches where enabled are not modelled and
    are reported as such."""
    mode = str(values.get("deploymentMode") or "Monolithic")
    if mode not in ("Monolithic", "SingleBinary"):
        raise ValueError(f"helm {release}: loki deploymentMode {mode!r} has no workload model")
    unmodelled = [
        part
        for part in ("gateway", "chunksCache", "resultsCache", "lokiCanary")
        if at_path(values, f"{part}.enabled", False)
    ]
    if unmodelled:
        raise ValueError(f"helm {release}: loki parts without a workload model: {unmodelled}")
    return [
        PodGroup(
            f"helm {release}: loki",
            int(at_path(values, "singleBinary.replicas", 0) or 0),
            resources_requests(at_path(values, "singleBinary.resources"), "loki"),
            stateful=True,
        )
    ]


def _alloy_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    """Alloy (a DaemonSet by default: once per node), with its config-reloader sidecar
    where enabled."""
    kind = str(at_path(values, "controller.type", "daemonset"))
    requests = resources_requests(at_path(values, "alloy.resources"), "alloy")
    if at_path(values, "configReloader.enabled", True):
        requests += resources_requests(
            at_path(values, "configReloader.resources"), "alloy config-reloader"
        )
    return [
        PodGroup(
            f"helm {release}: alloy",
            1 if kind == "daemonset" else int(at_path(values, "controller.replicas", 1) or 1),
            requests,
            per_node=kind == "daemonset",
            stateful=kind == "statefulset",
        )
    ]


CRD_ONLY_CHARTS = frozenset({"gateway-crds-helm"})
"""Charts that install CustomResourceDefinitions and nothing that runs."""

CHART_MODELS: dict[str, ChartModel] = {
    "dapr": _dapr_model,
    "strimzi-kafka-operator": _strimzi_operator_model,
    "kube-prometheus-stack": _kube_prometheus_model,
    "cert-manager": _cert_manager_model,
    "gateway-helm": _envoy_gateway_model,
    "opentelemetry-collector": _otel_collector_model,
    "tempo": _tempo_model,
    "loki": _loki_model,
    "alloy": _alloy_model,
}


def release_values(obj: KubernetesObject) -> tuple[dict[str, Any], bool]:
    """The release's effective values and whether chart defaults were found for them."""
    spec = obj.body["spec"]
    defaults = chart_defaults(str(spec.get("chart", "")), str(spec.get("version", "")))
    values = helm_release_values(obj)
    if defaults is None:
        return values, False
    return deep_merge(defaults, values), True


def helm_groups(objects: list[KubernetesObject], notes: list[str]) -> list[PodGroup]:
    groups: list[PodGroup] = []
    for obj in objects:
        if not obj.is_helm_release:
            continue
        chart = str(obj.body["spec"].get("chart", "")).rsplit("/", 1)[-1]
        if chart in CRD_ONLY_CHARTS:
            continue
        model = CHART_MODELS.get(chart)
        if model is None:
            notes.append(
                f"helm release {obj.name}: chart {chart!r} has no workload model; not counted"
            )
            continue
        values, with_defaults = release_values(obj)
        if not with_defaults:
            notes.append(
                f"helm release {obj.name}: no default values for {chart} "
                f"{obj.body['spec'].get('version')}; counted from the release's values only"
            )
        # What is neither per node nor stateful is a Deployment (dapr's placement and
        # scheduler are StatefulSets without volumes: rolled like one here, harmlessly).
        try:
            modelled = model(obj.name, values)
        except ValueError as error:  # values the model does not know how to count
            notes.append(f"{error}; not counted")
            continue
        groups.extend(
            replace(group, rolling=not (group.per_node or group.stateful)) for group in modelled
        )
    return groups
