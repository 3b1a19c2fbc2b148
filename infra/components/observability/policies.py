"""The monitoring namespace's fence: its pods talk to each other and resolve names; each
of the chart's roles reaches only what it needs; the API server reaches the webhook."""

from __future__ import annotations

from typing import Any

from apps.contracts.services import APP_PORT
from infra.components.edge import ENVOY_METRICS_PORT
from infra.components.kube import child_of
from infra.components.namespaces import (
    DAPR_METRICS_PORT,
    KAFKA_METRICS_PORT,
    STRIMZI_OPERATOR_METRICS_PORT,
)
from infra.components.observability.args import ObservabilityScope
from infra.components.observability.logs import (
    ALLOY_HTTP_PORT,
    ALLOY_POD_LABELS,
    LOKI_HTTP_PORT,
    LOKI_POD_LABELS,
)
from infra.components.observability.objects import network_policy
from infra.components.observability.tracing import (
    COLLECTOR_METRICS_PORT,
    COLLECTOR_POD_LABELS,
    TEMPO_HTTP_PORT,
    TEMPO_POD_LABELS,
)
from infra.components.observability.values import (
    ADMISSION_JOB_POD_LABELS,
    ALERTMANAGER_POD_LABELS,
    ALERTMANAGER_PORT,
    CRD_UPGRADE_JOB_POD_LABELS,
    GRAFANA_CONTAINER_PORT,
    GRAFANA_POD_LABELS,
    KUBE_STATE_METRICS_POD_LABELS,
    OPERATOR_HTTPS_PORT,
    OPERATOR_POD_LABELS,
    PROMETHEUS_POD_LABELS,
)
from infra.components.platform_egress import (
    api_server_egress,
    dns_rule,
    kubelet_egress,
    namespace_peer,
    tcp_ports,
)

COREDNS_METRICS_PORT = 9153
SCRAPE_PORTS = (
    APP_PORT,  # the Todo services' ServiceMonitors (port `http`)
    DAPR_METRICS_PORT,  # daprd (dapr-sidecars PodMonitor), the Dapr control plane, Prometheus
    KAFKA_METRICS_PORT,  # Strimzi's Kafka exporter and JMX exporter (`tcp-prometheus`)
    STRIMZI_OPERATOR_METRICS_PORT,  # the Strimzi operator; kube-state-metrics; config reloaders
    ENVOY_METRICS_PORT,  # Envoy's stats and the Envoy Gateway controller's metrics
)
"""Ports Prometheus may reach in any namespace: those the metrics endpoints of the Todo
system listen on. The targets' own policies admit Prometheus's pods only."""


def create_network_policies(scope: ObservabilityScope) -> None:
    """The monitoring namespace's fence: its pods talk to each other and resolve names;
    each role reaches only what it needs (below); the API server reaches the webhook."""
    args = scope.args
    _network_policy(
        scope,
        "namespace-policy",
        "allow-namespace-and-dns",
        {
            # Selects every pod, for both directions: anything not allowed here or by a
            # role's policy below is denied (the namespace's default-deny).
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
            "egress": [dns_rule()],
        },
    )
    _create_role_egress(scope)
    _network_policy(
        scope,
        "operator-webhook",
        "allow-operator-webhook",
        {
            # The API server calls the PrometheusRule admission webhook from outside the
            # pod network.
            "podSelector": {"matchLabels": OPERATOR_POD_LABELS},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": tcp_ports(OPERATOR_HTTPS_PORT)}],
        },
    )
    if args.gateway_namespace is None:
        return
    _network_policy(
        scope,
        "gateway-to-grafana",
        "allow-gateway-to-grafana",
        {
            "podSelector": {"matchLabels": GRAFANA_POD_LABELS},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [namespace_peer(args.gateway_namespace, args.gateway_pod_labels)],
                    "ports": [{"protocol": "TCP", "port": GRAFANA_CONTAINER_PORT}],
                }
            ],
        },
    )


def _create_role_egress(scope: ObservabilityScope) -> None:
    """Egress of each of the chart's pods, by the labels the chart and operator give them."""
    tracing = scope.args.tracing is not None
    # With tracing: Prometheus scrapes the collector's and Tempo's own metrics (their
    # charts' ServiceMonitors), and Grafana queries Tempo.
    tracing_scrapes = (
        [(COLLECTOR_POD_LABELS, (COLLECTOR_METRICS_PORT,)), (TEMPO_POD_LABELS, (TEMPO_HTTP_PORT,))]
        if tracing
        else []
    )
    logs = scope.args.logs is not None
    # With logs: Prometheus scrapes Loki's and Alloy's metrics, and Grafana queries Loki.
    logs_scrapes = (
        [(LOKI_POD_LABELS, (LOKI_HTTP_PORT,)), (ALLOY_POD_LABELS, (ALLOY_HTTP_PORT,))]
        if logs
        else []
    )
    grafana_stores = [
        {"to": [{"podSelector": {"matchLabels": labels}}], "ports": tcp_ports(port)}
        for labels, port, on in (
            (TEMPO_POD_LABELS, TEMPO_HTTP_PORT, tracing),
            (LOKI_POD_LABELS, LOKI_HTTP_PORT, logs),
        )
        if on
    ]
    _role_egress(
        scope,
        "prometheus",
        {"matchLabels": PROMETHEUS_POD_LABELS},
        [
            # The scrape targets of the program's monitors in every namespace; each
            # target's own policy decides whether Prometheus gets in.
            {"to": [{"namespaceSelector": {}}], "ports": tcp_ports(*SCRAPE_PORTS)},
            # The chart's own ServiceMonitors beyond those ports (itself, its config
            # reloaders and kube-state-metrics use 9090 and 8080): Alertmanager, also
            # where alerts go; the operator (https); Grafana.
            *(
                {"to": [{"podSelector": {"matchLabels": labels}}], "ports": tcp_ports(*ports)}
                for labels, ports in (
                    (ALERTMANAGER_POD_LABELS, (ALERTMANAGER_PORT,)),
                    (OPERATOR_POD_LABELS, (OPERATOR_HTTPS_PORT,)),
                    (GRAFANA_POD_LABELS, (GRAFANA_CONTAINER_PORT,)),
                    *tracing_scrapes,
                    *logs_scrapes,
                )
            ),
            # CoreDNS (`coreDns.serviceMonitor`: a Service on kube-dns's pods, port 9153).
            {
                "to": [namespace_peer("kube-system", {"k8s-app": "kube-dns"})],
                "ports": tcp_ports(COREDNS_METRICS_PORT),
            },
        ],
        # Service discovery, and the API server's own metrics (`kubeApiServer`).
        api_server=True,
        # `kubelet.serviceMonitor`: the kubelets' /metrics, cAdvisor and probes.
        kubelets=True,
    )
    _role_egress(
        scope,
        "grafana",
        {"matchLabels": GRAFANA_POD_LABELS},
        [
            # Its datasources (kube-prometheus-stack templates/grafana/
            # configmaps-datasources.yaml): Prometheus, and Alertmanager where enabled.
            {
                "to": [{"podSelector": {"matchLabels": PROMETHEUS_POD_LABELS}}],
                "ports": tcp_ports(9090),
            },
            {
                "to": [{"podSelector": {"matchLabels": ALERTMANAGER_POD_LABELS}}],
                "ports": tcp_ports(ALERTMANAGER_PORT),
            },
            *grafana_stores,
        ],
        # Not Grafana itself: its dashboard and datasource sidecars, which share its pod
        # (and so its network identity), watch ConfigMaps through the API server.
        api_server=True,
    )
    # Alertmanager sends nowhere: the chart's default configuration has only the `null`
    # receiver. Give it an egress rule here when a real receiver is configured.
    for role, selector in (
        ("prometheus-operator", {"matchLabels": OPERATOR_POD_LABELS}),
        ("kube-state-metrics", {"matchLabels": KUBE_STATE_METRICS_POD_LABELS}),
        # The admission-create (pre-install) and admission-patch (post-install) Jobs
        # (templates/prometheus-operator/admission-webhooks/job-patch/).
        ("admission-jobs", {"matchLabels": ADMISSION_JOB_POD_LABELS}),
        # The CRD upgrade Job (pre-install, pre-upgrade, pre-rollback hook).
        ("crd-upgrade", {"matchLabels": CRD_UPGRADE_JOB_POD_LABELS}),
    ):
        _role_egress(scope, role, selector, [], api_server=True)


def _role_egress(
    scope: ObservabilityScope,
    role: str,
    selector: dict[str, Any],
    rules: list[dict[str, Any]],
    *,
    api_server: bool = False,
    kubelets: bool = False,
) -> None:
    """NetworkPolicy `<role>-egress`, plus the API server and kubelets as the CNI needs."""
    args = scope.args
    common: dict[str, Any] = {
        "namespace": scope.namespace,
        "role": role,
        "pod_selector": selector,
        "opts": child_of(scope.parent),
    }
    if api_server:
        rules = [
            *rules,
            *api_server_egress(f"{scope.name}-{role}-api-server", args.api_server, **common),
        ]
    if kubelets:
        rules = [
            *rules,
            *kubelet_egress(f"{scope.name}-{role}-kubelets", args.api_server, **common),
        ]
    if not rules:
        return  # the Cilium policies above are all this role gets
    _network_policy(
        scope,
        f"{role}-egress",
        f"{role}-egress",
        {"podSelector": selector, "policyTypes": ["Egress"], "egress": rules},
    )


def _network_policy(
    scope: ObservabilityScope, role: str, policy_name: str, spec: dict[str, Any]
) -> None:
    network_policy(
        scope.parent,
        f"{scope.name}-{role}",
        policy_name=policy_name,
        namespace=scope.namespace,
        spec=spec,
    )
