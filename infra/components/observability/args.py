"""The observability component's inputs, and the scope its builders share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.components.cluster import ApiServerAccess
from infra.settings import LogsSettings, TracingSettings

DEFAULT_PROMETHEUS_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "100m", "memory": "400Mi"},
    "limits": {"memory": "1Gi"},
}
DEFAULT_GRAFANA_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "256Mi"},
}


@dataclass(frozen=True)
class ObservabilityArgs:
    """Inputs of the observability component."""

    namespace: pulumi.Input[str]
    """Namespace of the monitoring stack, its Secret, dashboards, rules and PodMonitors."""
    apps_namespaces: pulumi.Input[Sequence[str]]
    """Namespaces of the Todo services: the pods-not-ready alert watches these."""
    api_server: ApiServerAccess
    """How pods reach the API server and the kubelets (the CNI's rules)."""
    retention: pulumi.Input[str] = "2d"
    """How long Prometheus keeps samples (a Prometheus duration, e.g. `2d`, `15d`)."""
    retention_size: pulumi.Input[str] | None = None
    """Size cap of the TSDB (e.g. `18GiB`); None for none. Keep it below the volume size."""
    storage_size: pulumi.Input[str] | None = None
    """Size of Prometheus's PersistentVolumeClaim; None keeps data in an emptyDir."""
    storage_class: pulumi.Input[str] | None = None
    """StorageClass of that claim; None for the cluster default."""
    alertmanager: pulumi.Input[bool] = False
    """Run Alertmanager (cloud stacks); off on minikube to save memory."""
    grafana_url: pulumi.Input[str] | None = None
    """External URL Grafana is served at (for its links and redirects); None if none."""
    gateway_namespace: pulumi.Input[str] | None = None
    """Namespace of the ingress gateway, admitted to Grafana's port; None for none."""
    gateway_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of the gateway's proxy pods (the only callers of Grafana there); empty admits
    the whole gateway namespace."""
    prometheus_resources: pulumi.Input[Mapping[str, Any]] = field(
        default_factory=lambda: DEFAULT_PROMETHEUS_RESOURCES
    )
    """Requests and limits of the Prometheus container."""
    grafana_resources: pulumi.Input[Mapping[str, Any]] = field(
        default_factory=lambda: DEFAULT_GRAFANA_RESOURCES
    )
    """Requests and limits of the Grafana container."""
    tracing: TracingSettings | None = None
    """The OpenTelemetry Collector and Tempo (tracing.py); None: no traces on this stack."""
    trace_sender_namespaces: Sequence[pulumi.Input[str]] = ()
    """Namespaces whose pods (apps, Dapr sidecars) may send OTLP to the collector."""
    logs: LogsSettings | None = None
    """Loki and Alloy (logs.py); None: no central logs on this stack."""


@dataclass(frozen=True)
class ObservabilityScope:
    """What every builder of the component needs: the component, its inputs, namespace."""

    parent: pulumi.Resource
    """The Observability component: every child's parent."""
    name: str
    """The component's name, the prefix of every child's name."""
    args: ObservabilityArgs
    """The component's inputs."""
    namespace: pulumi.Output[str]
    """The monitoring namespace, once created."""
