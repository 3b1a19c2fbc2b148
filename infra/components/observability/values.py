"""kube-prometheus-stack: the pinned chart, what it names its pods, and its values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
# Small, fixed footprints for the parts whose load does not grow with the stack.
_OPERATOR_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
_KSM_RESOURCES = {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
_SIDECAR_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
_RELOADER_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
"""The operator's config-reloader next to Prometheus and Alertmanager (else the operator's
own defaults apply, which no values file shows)."""
PROMETHEUS_DATASOURCE_UID = "prometheus"
"""The chart's Prometheus data source (`grafana.sidecar.datasources.uid`, its default)."""
TEMPO_DATASOURCE_UID = "tempo"
LOKI_DATASOURCE_UID = "loki"
_ALERTMANAGER_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"memory": "128Mi"},
}


def chart_values(
    *,
    admin_secret: str,
    dashboards_namespace: str,
    retention: str,
    retention_size: str | None,
    storage_size: str | None,
    storage_class: str | None,
    alertmanager: bool,
    grafana_url: str | None,
    prometheus_resources: Mapping[str, Any],
    grafana_resources: Mapping[str, Any],
    tempo_url: str | None = None,
    loki_url: str | None = None,
) -> dict[str, Any]:
    """Values for kube-prometheus-stack. Every key exists in the chart's values file.

    `tempo_url`: Tempo's query API when the stack runs tracing: Grafana gets a Tempo data
    source, and Prometheus keeps exemplars that link its series to those traces.
    `loki_url`: Loki's API when the stack runs central logs: Grafana gets a Loki data
    source; with both, a span links to its logs and a log line to its trace.
    """
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
        # The chart's empty string means no size cap.
        "retentionSize": retention_size or "",
        "walCompression": True,
        "resources": dict(prometheus_resources),
    }
    if tempo_url:
        # Exemplars (the trace id on a histogram bucket sample) are kept only with the
        # feature on (prometheus.io/docs/prometheus/latest/feature_flags/#exemplars-storage).
        prometheus_spec["enableFeatures"] = ["exemplar-storage"]
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

    datasources_sidecar: dict[str, Any] = {}
    if tempo_url:
        # Metrics → traces: the Prometheus data source links an exemplar's `trace_id`
        # label to Tempo (kube-prometheus-stack's
        # `grafana.sidecar.datasources.exemplarTraceIdDestinations`).
        datasources_sidecar["exemplarTraceIdDestinations"] = {
            "datasourceUid": TEMPO_DATASOURCE_UID,
            "traceIdLabelName": "trace_id",
            "urlDisplayLabel": "View trace",
        }
    datasources: list[dict[str, Any]] = []
    if tempo_url:
        datasources.append(tempo_datasource(tempo_url, logs=loki_url is not None))
    if loki_url:
        datasources.append(loki_datasource(loki_url, traces=tempo_url is not None))
    grafana_values: dict[str, Any] = {"additionalDataSources": datasources} if datasources else {}

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
            **grafana_values,
            "sidecar": {
                **({"datasources": datasources_sidecar} if datasources_sidecar else {}),
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


def tempo_datasource(url: str, *, logs: bool = False) -> dict[str, Any]:
    """Grafana's Tempo data source (grafana.com/docs/grafana/latest/datasources/tempo/
    configure-tempo-data-source/#provision-the-data-source): the service graph and
    traces → metrics through Prometheus, and with `logs` traces → logs through Loki."""
    json_data: dict[str, Any] = {
        "serviceMap": {"datasourceUid": PROMETHEUS_DATASOURCE_UID},
        "nodeGraph": {"enabled": True},
        "tracesToMetrics": {"datasourceUid": PROMETHEUS_DATASOURCE_UID},
    }
    if logs:
        # A span's logs: the lines of its service (Alloy's `app` label is the pod's
        # app.kubernetes.io/name, the services' OpenTelemetry service.name) that carry
        # its trace id, a minute either side of the span.
        json_data["tracesToLogsV2"] = {
            "datasourceUid": LOKI_DATASOURCE_UID,
            "tags": [{"key": "service.name", "value": "app"}],
            "filterByTraceID": True,
            "filterBySpanID": False,
            "spanStartTimeShift": "-1m",
            "spanEndTimeShift": "1m",
        }
    return {
        "name": "Tempo",
        "uid": TEMPO_DATASOURCE_UID,
        "type": "tempo",
        "access": "proxy",
        "url": url,
        "editable": False,
        "jsonData": json_data,
    }


def loki_datasource(url: str, *, traces: bool = False) -> dict[str, Any]:
    """Grafana's Loki data source (grafana.com/docs/grafana/latest/datasources/loki/
    configure-loki-data-source/#provision-the-data-source); with `traces`, a line's
    `trace_id` links to the trace in Tempo (a derived field)."""
    json_data: dict[str, Any] = {"maxLines": 1000}
    if traces:
        json_data["derivedFields"] = [
            {
                "name": "TraceID",
                "datasourceUid": TEMPO_DATASOURCE_UID,
                "matcherRegex": r'"trace_id":\s*"([0-9a-f]{32})"',
                # `$$`: Grafana expands `$name` in provisioning files; `$$` is a literal.
                "url": "$${__value.raw}",
                "urlDisplayLabel": "View trace",
            }
        ]
    return {
        "name": "Loki",
        "uid": LOKI_DATASOURCE_UID,
        "type": "loki",
        "access": "proxy",
        "url": url,
        "editable": False,
        "jsonData": json_data,
    }
