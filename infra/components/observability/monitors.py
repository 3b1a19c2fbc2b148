"""What the chart does not know about: PodMonitors, the Todo alert rules and dashboards.

The rules and dashboards are data files under `infra/observability/` (datafiles.py); the
SLOs' recording rules and alerts are generated from slos.yaml (slos.py) into the same
PrometheusRule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.components.kube import child_of
from infra.components.observability.args import ObservabilityScope
from infra.components.observability.datafiles import (
    ALERT_RULES_FILE,
    DASHBOARDS_DIR,
    fill_namespaces,
)
from infra.components.observability.slos import load_slo_rules
from infra.components.observability.values import DASHBOARD_LABEL

DAPR_METRICS_PORT_NAME = "dapr-metrics"
"""The daprd container's metrics port (9090) as the injector names it."""


def load_alert_rules(apps_namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """The rule groups of the Todo PrometheusRule, with the apps' namespaces filled in."""
    text = fill_namespaces(ALERT_RULES_FILE.read_text(), apps_namespaces)
    document = yaml.safe_load(text)
    groups: list[dict[str, Any]] = document["groups"]
    return groups


def load_dashboards() -> dict[str, str]:
    """Dashboard JSON by file stem, re-serialised compactly (and so checked to be JSON)."""
    return {
        path.stem: json.dumps(json.loads(path.read_text()), separators=(",", ":"))
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def create_monitors(scope: ObservabilityScope, release: k8s.helm.v3.Release) -> None:
    """PodMonitors for the Dapr sidecars and the Strimzi Kafka pods in every namespace."""
    crds = child_of(scope.parent, depends_on=[release])
    k8s.apiextensions.CustomResource(
        f"{scope.name}-dapr-sidecars",
        api_version="monitoring.coreos.com/v1",
        kind="PodMonitor",
        metadata={"name": "dapr-sidecars", "namespace": scope.namespace},
        spec={
            # The injector labels every pod it adds a sidecar to with metrics on.
            "selector": {"matchLabels": {"dapr.io/metrics-enabled": "true"}},
            "namespaceSelector": {"any": True},
            "podMetricsEndpoints": [
                {"port": DAPR_METRICS_PORT_NAME, "path": "/", "interval": "30s"}
            ],
        },
        opts=crds,
    )
    k8s.apiextensions.CustomResource(
        f"{scope.name}-strimzi-kafka",
        api_version="monitoring.coreos.com/v1",
        kind="PodMonitor",
        metadata={"name": "strimzi-kafka", "namespace": scope.namespace},
        spec={
            # Kafka Exporter (consumer lag, offsets) and, where enabled, the brokers'
            # JMX exporter both serve on the port Strimzi names tcp-prometheus.
            "selector": {"matchLabels": {"strimzi.io/kind": "Kafka"}},
            "namespaceSelector": {"any": True},
            "podMetricsEndpoints": [
                {"port": "tcp-prometheus", "path": "/metrics", "interval": "30s"}
            ],
        },
        opts=crds,
    )


def create_rules(scope: ObservabilityScope, release: k8s.helm.v3.Release) -> None:
    """The Todo PrometheusRule: the threshold alerts and the SLOs' rules, namespaces filled in."""
    groups = pulumi.Output.from_input(scope.args.apps_namespaces).apply(
        lambda namespaces: load_alert_rules(list(namespaces)) + load_slo_rules(list(namespaces))
    )
    k8s.apiextensions.CustomResource(
        f"{scope.name}-alerts",
        api_version="monitoring.coreos.com/v1",
        kind="PrometheusRule",
        metadata={
            "name": "todo-alerts",
            "namespace": scope.namespace,
            "labels": {"app.kubernetes.io/part-of": "todo"},
        },
        spec={"groups": groups},
        opts=child_of(scope.parent, depends_on=[release]),
    )


def create_dashboards(scope: ObservabilityScope) -> None:
    """One ConfigMap a dashboard, labelled for Grafana's dashboards sidecar."""
    # Plain ConfigMaps: the Grafana sidecar picks them up whenever they appear, so they
    # need not wait for the release.
    for stem, content in load_dashboards().items():
        k8s.core.v1.ConfigMap(
            f"{scope.name}-dashboard-{stem}",
            metadata={
                "name": f"todo-dashboard-{stem}",
                "namespace": scope.namespace,
                "labels": {
                    DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1],
                    "app.kubernetes.io/part-of": "todo",
                },
            },
            data={f"todo-{stem}.json": content},
            opts=child_of(scope.parent),
        )
