"""Metrics, alerts and dashboards: kube-prometheus-stack plus the Todo system's own parts.

One Helm release (`kube-prometheus-stack`, pinned) installs the Prometheus operator and its
CRDs, Prometheus, Grafana, kube-state-metrics and (on cloud stacks) Alertmanager. Next to it
this component creates what the chart does not know about: the Grafana admin credentials
(a generated password in a Kubernetes Secret), PodMonitors for the Dapr sidecars and the
Strimzi Kafka pods, the alert rules and the dashboards. The rules and dashboards are data
files under `infra/observability/` so that they can be reviewed (and their PromQL checked)
on their own.

Prometheus is told to select every ServiceMonitor, PodMonitor and PrometheusRule in every
namespace, so the apps' ServiceMonitors need no chart-specific `release` label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from apps.contracts.services import APP_PORT
from infra.components.cluster import ApiServerAccess
from infra.components.edge import ENVOY_METRICS_PORT
from infra.components.kube import child_of
from infra.components.namespaces import (
    DAPR_METRICS_PORT,
    KAFKA_METRICS_PORT,
    STRIMZI_OPERATOR_METRICS_PORT,
)
from infra.components.platform_egress import (
    api_server_egress,
    dns_rule,
    kubelet_egress,
    namespace_peer,
    tcp_ports,
)

CHART = "kube-prometheus-stack"
CHART_VERSION = "88.5.3"
# The CRD upgrade Job's images (kube-prometheus-stack `crds.upgradeJob.image`): kubectl
# within one minor version of the clusters (DOKS 1.33-1.35, minikube).
CRD_JOB_BUSYBOX_TAG = "1.37.0"
CRD_JOB_KUBECTL_TAG = "v1.34.2"
CHART_REPO = "https://prometheus-community.github.io/helm-charts"
RELEASE_NAME = "kube-prometheus-stack"
"""Fixed, so that the names the chart derives from it (Services, labels) are predictable."""

GRAFANA_SERVICE = f"{RELEASE_NAME}-grafana"
GRAFANA_SERVICE_PORT = 80
GRAFANA_CONTAINER_PORT = 3000
GRAFANA_ADMIN_SECRET = "grafana-admin"
DASHBOARD_LABEL = ("grafana_dashboard", "1")
"""The Grafana dashboards sidecar loads ConfigMaps carrying this label (chart default)."""

PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}
"""Labels the operator puts on Prometheus pods: what NetworkPolicies admit for scraping."""
GRAFANA_POD_LABELS = {"app.kubernetes.io/name": "grafana"}
ALERTMANAGER_POD_LABELS = {"app.kubernetes.io/name": "alertmanager"}
"""What the chart's Alertmanager Service selects (templates/alertmanager/service.yaml)."""
OPERATOR_POD_LABELS = {"app": f"{RELEASE_NAME}-operator"}
"""The prometheus-operator Deployment's pods (`kube-prometheus-stack.prometheus-operator.labels`
in templates/prometheus-operator/_prometheus-operator.tpl)."""
KUBE_STATE_METRICS_POD_LABELS = {"app.kubernetes.io/name": "kube-state-metrics"}
"""kube-state-metrics' selector labels (its chart's `kube-state-metrics.selectorLabels`)."""
ADMISSION_JOB_POD_LABELS = {"app.kubernetes.io/component": "prometheus-operator-webhook"}
"""The admission webhook's certificate Jobs (`prometheus-operator-webhook.labels`)."""
CRD_UPGRADE_JOB_POD_LABELS = {"app.kubernetes.io/component": "crds-upgrade"}
"""The CRD upgrade Job's pods. The chart labels the Job, not its pods (charts/crds/templates/
upgrade/job.yaml: only `crds.upgradeJob.podLabels`), so `chart_values` gives them the Job's
own component label for the NetworkPolicies to select."""
ALERTMANAGER_PORT = 9093
OPERATOR_HTTPS_PORT = 10250
"""The operator's metrics and admission webhook (`prometheusOperator.tls.internalPort`)."""
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

DAPR_METRICS_PORT_NAME = "dapr-metrics"
"""The daprd container's metrics port (9090) as the injector names it."""

DATA_DIR = Path(__file__).resolve().parent.parent / "observability"
DASHBOARDS_DIR = DATA_DIR / "dashboards"
ALERT_RULES_FILE = DATA_DIR / "alert-rules.yaml"
NAMESPACES_PLACEHOLDER = "__APPS_NAMESPACES__"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""Stands in the rules file for the regex of the apps' namespaces."""

DEFAULT_PROMETHEUS_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "100m", "memory": "400Mi"},
    "limits": {"memory": "1Gi"},
}
DEFAULT_GRAFANA_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "256Mi"},
}

# Small, fixed footprints for the parts whose load does not grow with the stack.
_OPERATOR_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
_KSM_RESOURCES = {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
_SIDECAR_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
_RELOADER_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
"""The operator's config-reloader next to Prometheus and Alertmanager (else the operator's
own defaults apply, which no values file shows)."""
_ALERTMANAGER_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"memory": "128Mi"},
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
    retention_size: pulumi.Input[str] = ""
    """Size cap of the TSDB (e.g. `18GiB`); empty for none. Keep it below the volume size."""
    storage_size: pulumi.Input[str] = ""
    """Size of Prometheus's PersistentVolumeClaim; empty keeps data in an emptyDir."""
    storage_class: pulumi.Input[str] = ""
    """StorageClass of that claim; empty for the cluster default."""
    alertmanager: pulumi.Input[bool] = False
    """Run Alertmanager (cloud stacks); off on minikube to save memory."""
    grafana_url: pulumi.Input[str] = ""
    """External URL Grafana is served at (for its links and redirects); empty if none."""
    gateway_namespace: pulumi.Input[str] = ""
    """Namespace of the ingress gateway, admitted to Grafana's port; empty for none."""
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


def namespaces_regex(namespaces: Sequence[str]) -> str:
    """A regex (PromQL anchors it) matching exactly these namespace names.

    Namespace names are DNS labels, which hold no regex metacharacters; they are checked
    rather than escaped, because PromQL strings reject escapes such as `\\-`.
    """
    if not namespaces:
        raise ValueError("apps_namespaces must name at least one namespace")
    for namespace in namespaces:
        if not _DNS_LABEL.fullmatch(namespace):
            raise ValueError(f"apps_namespaces: {namespace!r} is not a namespace name")
    return "|".join(sorted(set(namespaces)))


def load_alert_rules(apps_namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """The rule groups of the Todo PrometheusRule, with the apps' namespaces filled in."""
    text = ALERT_RULES_FILE.read_text().replace(
        NAMESPACES_PLACEHOLDER, namespaces_regex(apps_namespaces)
    )
    document = yaml.safe_load(text)
    groups: list[dict[str, Any]] = document["groups"]
    return groups


def load_dashboards() -> dict[str, str]:
    """Dashboard JSON by file stem, re-serialised compactly (and so checked to be JSON)."""
    return {
        path.stem: json.dumps(json.loads(path.read_text()), separators=(",", ":"))
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def chart_values(
    *,
    admin_secret: str,
    dashboards_namespace: str,
    retention: str,
    retention_size: str,
    storage_size: str,
    storage_class: str,
    alertmanager: bool,
    grafana_url: str,
    prometheus_resources: Mapping[str, Any],
    grafana_resources: Mapping[str, Any],
) -> dict[str, Any]:
    """Values for kube-prometheus-stack. Every key exists in the chart's values file."""
    prometheus_spec: dict[str, Any] = {
        # Explicitly empty selectors, with the "nil uses Helm values" shortcut off, mean
        # "everything in every namespace": the apps' monitors need no release label.
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "serviceMonitorSelector": {},
        "serviceMonitorNamespaceSelector": {},
        "podMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelector": {},
        "podMonitorNamespaceSelector": {},
        "ruleSelectorNilUsesHelmValues": False,
        "ruleSelector": {},
        "ruleNamespaceSelector": {},
        "probeSelectorNilUsesHelmValues": False,
        "scrapeConfigSelectorNilUsesHelmValues": False,
        "retention": retention,
        "retentionSize": retention_size,
        "walCompression": True,
        "resources": dict(prometheus_resources),
    }
    if storage_size:
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": storage_size}},
        }
        if storage_class:
            claim_spec["storageClassName"] = storage_class
        prometheus_spec["storageSpec"] = {"volumeClaimTemplate": {"spec": claim_spec}}

    grafana_ini: dict[str, Any] = {
        "analytics": {"check_for_updates": False, "reporting_enabled": False},
        "users": {"allow_sign_up": False},
        "auth.anonymous": {"enabled": False},
    }
    if grafana_url:
        grafana_ini["server"] = {"root_url": grafana_url}

    return {
        "crds": {
            "enabled": True,
            # Helm installs `crds/` once and never upgrades them; the chart's pre-upgrade
            # hook Job applies the new prometheus-operator CRDs server-side, taking them
            # over from the installer (`forceConflicts`), before the operator rolls.
            # Its pods run non-root with a read-only root filesystem by the chart's
            # defaults; the images are pinned here (the chart's busybox is `latest`).
            "upgradeJob": {
                "enabled": True,
                "forceConflicts": True,
                "image": {
                    "busybox": {"tag": CRD_JOB_BUSYBOX_TAG},
                    "kubectl": {"tag": CRD_JOB_KUBECTL_TAG},
                },
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                # What its egress policy selects (it applies the CRDs through the API server).
                "podLabels": CRD_UPGRADE_JOB_POD_LABELS,
            },
        },
        "defaultRules": {
            "create": True,
            # Managed control planes (DOKS) and minikube do not expose these components to
            # Prometheus; their rules would only ever report missing targets.
            "rules": {
                "etcd": False,
                "kubeControllerManager": False,
                "kubeProxy": False,
                "kubeSchedulerAlerting": False,
                "kubeSchedulerRecording": False,
                "nodeExporterAlerting": False,
                "nodeExporterRecording": False,
                "node": False,
                "windows": False,
            },
        },
        "kubeEtcd": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeProxy": {"enabled": False},
        # node-exporter needs hostNetwork/hostPID/hostPath, which the monitoring namespace's
        # Pod Security level (baseline) forbids; DigitalOcean's own agent
        # reports node metrics on cloud stacks.
        "nodeExporter": {"enabled": False},
        "windowsMonitoring": {"enabled": False},
        "alertmanager": {
            "enabled": alertmanager,
            "alertmanagerSpec": {"resources": _ALERTMANAGER_RESOURCES},
        },
        "prometheusOperator": {
            "resources": _OPERATOR_RESOURCES,
            "prometheusConfigReloader": {"resources": _RELOADER_RESOURCES},
        },
        "prometheus": {"prometheusSpec": prometheus_spec},
        "kube-state-metrics": {"resources": _KSM_RESOURCES},
        "grafana": {
            "admin": {
                "existingSecret": admin_secret,
                "userKey": "admin-user",
                "passwordKey": "admin-password",
            },
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL[0],
                    "labelValue": DASHBOARD_LABEL[1],
                    "searchNamespace": dashboards_namespace,
                },
                # Keys of the grafana subchart (not in kube-prometheus-stack's file).
                "resources": _SIDECAR_RESOURCES,
            },
            # Keys of the grafana subchart (not in kube-prometheus-stack's file).
            "resources": dict(grafana_resources),
            # The grafana chart's default is a ClusterRole reading ConfigMaps and Secrets
            # in every namespace (`rbac.namespaced: false`, templates/clusterrole.yaml):
            # the token of an internet-facing pod would read every Secret. Its sidecars
            # only look in this namespace (searchNamespace above; datasources default to
            # their own), so a Role there is all they need (templates/role.yaml).
            "rbac": {"namespaced": True},
            "testFramework": {"enabled": False},
            "grafana.ini": grafana_ini,
        },
    }


class Observability(pulumi.ComponentResource):
    """kube-prometheus-stack with the Todo system's monitors, alert rules and dashboards."""

    release: k8s.helm.v3.Release
    """The Helm release; it installs the monitoring CRDs, so custom resources depend on it."""
    grafana_service: pulumi.Output[str]
    """Name of Grafana's Service (port `GRAFANA_SERVICE_PORT`) in `namespace`."""
    namespace: pulumi.Output[str]
    """The monitoring namespace."""

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:observability:Observability", name, None, opts)
        self._name = name
        self._args = args
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": args.namespace, "labels": POD_SECURITY_LABELS},
            opts=child_of(self),
        )
        # The name as an output, so that everything in the namespace waits for it.
        self.namespace = namespace.metadata.apply(lambda m: str(m["name"]))

        admin_secret = self._create_grafana_admin(args)
        self.release = self._create_release(args, admin_secret)
        self._create_monitors()
        self._create_rules(args)
        self._create_dashboards()
        self._create_network_policies(args)

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

    def _create_grafana_admin(self, args: ObservabilityArgs) -> k8s.core.v1.Secret:
        password = random.RandomPassword(
            f"{self._name}-grafana-password",
            length=32,
            special=False,
            opts=child_of(self),
        )
        return k8s.core.v1.Secret(
            f"{self._name}-grafana-admin",
            metadata={
                "name": GRAFANA_ADMIN_SECRET,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/part-of": "todo"},
            },
            type="Opaque",
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=child_of(self),
        )

    def _create_release(
        self, args: ObservabilityArgs, admin_secret: k8s.core.v1.Secret
    ) -> k8s.helm.v3.Release:
        values = pulumi.Output.all(
            admin_secret=admin_secret.metadata.name,
            namespace=self.namespace,
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
            )
        )
        return k8s.helm.v3.Release(
            f"{self._name}-stack",
            name=RELEASE_NAME,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts={"repo": CHART_REPO},
            namespace=self.namespace,
            values=values,
            # The chart's admission webhook and CRDs come up through hooks; give them time,
            # and roll back a failed upgrade rather than leave half a monitoring stack.
            timeout=900,
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            opts=child_of(self),
        )

    def _create_monitors(self) -> None:
        crds = child_of(self, depends_on=[self.release])
        k8s.apiextensions.CustomResource(
            f"{self._name}-dapr-sidecars",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={"name": "dapr-sidecars", "namespace": self.namespace},
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
            f"{self._name}-strimzi-kafka",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={"name": "strimzi-kafka", "namespace": self.namespace},
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

    def _create_rules(self, args: ObservabilityArgs) -> None:
        groups = pulumi.Output.from_input(args.apps_namespaces).apply(
            lambda namespaces: load_alert_rules(list(namespaces))
        )
        k8s.apiextensions.CustomResource(
            f"{self._name}-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={
                "name": "todo-alerts",
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/part-of": "todo"},
            },
            spec={"groups": groups},
            opts=child_of(self, depends_on=[self.release]),
        )

    def _create_dashboards(self) -> None:
        # Plain ConfigMaps: the Grafana sidecar picks them up whenever they appear, so they
        # need not wait for the release.
        for stem, content in load_dashboards().items():
            k8s.core.v1.ConfigMap(
                f"{self._name}-dashboard-{stem}",
                metadata={
                    "name": f"todo-dashboard-{stem}",
                    "namespace": self.namespace,
                    "labels": {
                        DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1],
                        "app.kubernetes.io/part-of": "todo",
                    },
                },
                data={f"todo-{stem}.json": content},
                opts=child_of(self),
            )

    def _create_network_policies(self, args: ObservabilityArgs) -> None:
        """The monitoring namespace's fence: its pods talk to each other and resolve names;
        each role reaches only what it needs (below); the API server reaches the webhook."""
        self._network_policy(
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
        self._create_role_egress(args)
        self._network_policy(
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
        if args.gateway_namespace == "":
            return
        self._network_policy(
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

    def _create_role_egress(self, args: ObservabilityArgs) -> None:
        """Egress of each of the chart's pods, by the labels the chart and operator give them."""
        self._role_egress(
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
        self._role_egress(
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
            self._role_egress(role, selector, [], api_server=True)

    def _role_egress(
        self,
        role: str,
        selector: dict[str, Any],
        rules: list[dict[str, Any]],
        *,
        api_server: bool = False,
        kubelets: bool = False,
    ) -> None:
        """NetworkPolicy `<role>-egress`, plus the API server and kubelets as the CNI needs."""
        args = self._args
        common: dict[str, Any] = {
            "namespace": self.namespace,
            "role": role,
            "pod_selector": selector,
            "opts": child_of(self),
        }
        if api_server:
            rules = [
                *rules,
                *api_server_egress(f"{self._name}-{role}-api-server", args.api_server, **common),
            ]
        if kubelets:
            rules = [
                *rules,
                *kubelet_egress(f"{self._name}-{role}-kubelets", args.api_server, **common),
            ]
        if not rules:
            return  # the Cilium policies above are all this role gets
        self._network_policy(
            f"{role}-egress",
            f"{role}-egress",
            {"podSelector": selector, "policyTypes": ["Egress"], "egress": rules},
        )

    def _network_policy(self, role: str, policy_name: str, spec: dict[str, Any]) -> None:
        metadata: dict[str, Any] = {
            "name": policy_name,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/part-of": "todo"},
        }
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-{role}",
            metadata=cast(k8s.meta.v1.ObjectMetaArgsDict, metadata),
            spec=cast(k8s.networking.v1.NetworkPolicySpecArgsDict, spec),
            opts=child_of(self),
        )
