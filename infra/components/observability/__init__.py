"""Metrics, alerts, dashboards, traces and logs: kube-prometheus-stack plus the Todo system's
own parts, and (where the stack runs them) the OpenTelemetry Collector and Tempo
(tracing.py), Loki and Alloy (logs.py).

One Helm release (`kube-prometheus-stack`, pinned) installs the Prometheus operator and its
CRDs, Prometheus, Grafana, kube-state-metrics and (on cloud stacks) Alertmanager. Next to it
this component creates what the chart does not know about: the Grafana admin credentials
(a generated password in a Kubernetes Secret), PodMonitors for the Dapr sidecars and the
Strimzi Kafka pods, the alert rules and the dashboards (monitors.py), the SLOs' rules
(slos.py) and their dashboard (slo_dashboard.py), and the monitoring namespace's
NetworkPolicies (policies.py). The chart's values are in values.py.

Prometheus is told to select every ServiceMonitor, PodMonitor and PrometheusRule in every
namespace, so the apps' ServiceMonitors need no chart-specific `release` label.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.kube import child_of
from infra.components.observability.args import (
    DEFAULT_GRAFANA_RESOURCES,
    DEFAULT_PROMETHEUS_RESOURCES,
    ObservabilityArgs,
    ObservabilityScope,
)
from infra.components.observability.datafiles import (
    ALERT_RULES_FILE,
    DASHBOARDS_DIR,
    DATA_DIR,
    NAMESPACES_PLACEHOLDER,
    namespaces_regex,
)
from infra.components.observability.logs import Logs, LogsArgs, loki_url
from infra.components.observability.monitors import (
    create_dashboards,
    create_monitors,
    create_rules,
    load_alert_rules,
)
from infra.components.observability.objects import helm_release
from infra.components.observability.policies import SCRAPE_PORTS, create_network_policies
from infra.components.observability.slos import SLOS_FILE, load_slo_rules
from infra.components.observability.tracing import (
    COLLECTOR_POD_LABELS,
    OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    Tracing,
    TracingArgs,
    collector_endpoint,
    tempo_url,
)
from infra.components.observability.values import (
    CHART,
    CHART_REPO,
    CHART_VERSION,
    GRAFANA_ADMIN_SECRET,
    GRAFANA_CONTAINER_PORT,
    GRAFANA_POD_LABELS,
    GRAFANA_SERVICE,
    GRAFANA_SERVICE_PORT,
    PROMETHEUS_POD_LABELS,
    RELEASE_NAME,
    chart_values,
)

__all__ = [
    "ALERT_RULES_FILE",
    "COLLECTOR_POD_LABELS",
    "CHART",
    "CHART_REPO",
    "CHART_VERSION",
    "DASHBOARDS_DIR",
    "DATA_DIR",
    "DEFAULT_GRAFANA_RESOURCES",
    "DEFAULT_PROMETHEUS_RESOURCES",
    "Logs",
    "LogsArgs",
    "GRAFANA_CONTAINER_PORT",
    "GRAFANA_POD_LABELS",
    "GRAFANA_SERVICE_PORT",
    "NAMESPACES_PLACEHOLDER",
    "OTLP_GRPC_PORT",
    "OTLP_HTTP_PORT",
    "PROMETHEUS_POD_LABELS",
    "SCRAPE_PORTS",
    "SLOS_FILE",
    "Observability",
    "ObservabilityArgs",
    "Tracing",
    "TracingArgs",
    "collector_endpoint",
    "load_alert_rules",
    "load_slo_rules",
    "namespaces_regex",
]

POD_SECURITY_LABELS = {
    # Enforce baseline, report restricted: not every pod of the chart (its admission-webhook
    # jobs, kube-state-metrics) is guaranteed restricted-clean across chart versions, and a
    # rejected monitoring stack is worse than a warning. Nothing here needs host access.
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
    "app.kubernetes.io/part-of": "todo",
}


class Observability(pulumi.ComponentResource):
    """kube-prometheus-stack with the Todo system's monitors, alert rules and dashboards."""

    release: k8s.helm.v3.Release
    """The Helm release; it installs the monitoring CRDs, so custom resources depend on it."""
    grafana_service: pulumi.Output[str]
    """Name of Grafana's Service (port `GRAFANA_SERVICE_PORT`) in `namespace`."""
    namespace: pulumi.Output[str]
    """The monitoring namespace."""
    tracing: Tracing | None
    """The collector and Tempo; None when the stack runs no tracing."""
    logs: Logs | None
    """Loki and Alloy; None when the stack runs no central logs."""

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:observability:Observability", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": args.namespace, "labels": POD_SECURITY_LABELS},
            opts=child_of(self),
        )
        # The name as an output, so that everything in the namespace waits for it.
        self.namespace = namespace.metadata.apply(lambda m: str(m["name"]))
        scope = ObservabilityScope(parent=self, name=name, args=args, namespace=self.namespace)

        admin_secret = self._create_grafana_admin(scope)
        self.release = self._create_release(scope, admin_secret)
        create_monitors(scope, self.release)
        create_rules(scope, self.release)
        create_dashboards(scope)
        create_network_policies(scope)
        self.tracing = (
            Tracing(
                f"{name}-tracing",
                TracingArgs(
                    namespace=self.namespace,
                    sender_namespaces=list(args.trace_sender_namespaces),
                    retention=args.tracing.retention,
                    storage_size=args.tracing.storage_size,
                    collector_replicas=args.tracing.collector_replicas,
                    collector_resources=args.tracing.collector.manifest(),
                    tempo_resources=args.tracing.tempo.manifest(),
                    # Both charts create ServiceMonitors: the release brings their CRD.
                    after=[self.release],
                ),
                opts=child_of(self),
            )
            if args.tracing is not None
            else None
        )
        self.logs = (
            Logs(
                f"{name}-logs",
                LogsArgs(
                    namespace=self.namespace,
                    api_server=args.api_server,
                    retention=args.logs.retention,
                    storage_size=args.logs.storage_size,
                    loki_resources=args.logs.loki.manifest(),
                    alloy_resources=args.logs.alloy.manifest(),
                    after=[self.release],
                ),
                opts=child_of(self),
            )
            if args.logs is not None
            else None
        )

        self.grafana_service = pulumi.Output.all(self.release.status, self.namespace).apply(
            lambda _: GRAFANA_SERVICE
        )
        self.register_outputs(
            {
                "namespace": self.namespace,
                "release": self.release.status.name,
                "grafana_service": self.grafana_service,
            }
        )

    def _create_grafana_admin(self, scope: ObservabilityScope) -> k8s.core.v1.Secret:
        password = random.RandomPassword(
            f"{scope.name}-grafana-password",
            length=32,
            special=False,
            opts=child_of(self),
        )
        return k8s.core.v1.Secret(
            f"{scope.name}-grafana-admin",
            metadata={
                "name": GRAFANA_ADMIN_SECRET,
                "namespace": scope.namespace,
                "labels": {"app.kubernetes.io/part-of": "todo"},
            },
            type="Opaque",
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=child_of(self),
        )

    def _create_release(
        self, scope: ObservabilityScope, admin_secret: k8s.core.v1.Secret
    ) -> k8s.helm.v3.Release:
        args = scope.args
        values = pulumi.Output.all(
            admin_secret=admin_secret.metadata.name,
            namespace=scope.namespace,
            retention=args.retention,
            retention_size=args.retention_size,
            storage_size=args.storage_size,
            storage_class=args.storage_class,
            alertmanager=args.alertmanager,
            grafana_url=args.grafana_url,
            prometheus_resources=args.prometheus_resources,
            grafana_resources=args.grafana_resources,
        ).apply(
            lambda v: chart_values(
                admin_secret=v["admin_secret"],
                dashboards_namespace=v["namespace"],
                retention=v["retention"],
                retention_size=v["retention_size"],
                storage_size=v["storage_size"],
                storage_class=v["storage_class"],
                alertmanager=bool(v["alertmanager"]),
                grafana_url=v["grafana_url"],
                prometheus_resources=v["prometheus_resources"],
                grafana_resources=v["grafana_resources"],
                tempo_url=tempo_url(v["namespace"]) if args.tracing is not None else None,
                loki_url=loki_url(v["namespace"]) if args.logs is not None else None,
            )
        )
        return helm_release(
            self,
            f"{scope.name}-stack",
            release=RELEASE_NAME,
            chart=CHART,
            version=CHART_VERSION,
            repo=CHART_REPO,
            namespace=scope.namespace,
            values=values,
            # The chart's admission webhook and CRDs come up through hooks: time.
            timeout=900,
        )
