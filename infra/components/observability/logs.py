"""Central logs: Grafana Alloy on every node ships the pods' logs to Grafana Loki.

Loki runs as one binary (the chart's `Monolithic` mode: every target in one process, the
filesystem as its store, no gateway, caches or canary) with its retention enforced by the
compactor. Alloy runs as a DaemonSet; each pod discovers the pods of its own node and
tails their logs through the API server (`loki.source.kubernetes`), so it needs no host
path, no root and no privilege, and passes the `restricted` Pod Security profile that a
`/var/log` mount would fail (grafana.com/docs/alloy/latest/reference/components/loki/
loki.source.kubernetes/: "works without a privileged container ... without a root user
... without needing access to the filesystem of the Kubernetes node"). The price is the
kubelets' CPU for the log streams, which for this system's volume is small.

Alloy parses the services' JSON lines: `level` becomes a label (a handful of values),
`trace_id` structured metadata (too many values for a label; Loki's schema v13 keeps it
per line), so Grafana can go from a trace to its logs and from a log line to its trace.

Charts and their defaults (vendored in infra/k8s-reference/values/):
- `loki` 18.11.0 (grafana-community/helm-charts, tag loki-18.11.0, commit 3386a115; the
  chart moved there from grafana/loki), app version 3.7.6;
- `alloy` 1.11.1 (grafana/alloy, tag helm-chart/1.11.1, commit 233907cf, published at
  grafana.github.io/helm-charts), app version v1.18.1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.cluster import ApiServerAccess
from infra.components.kube import child_of, container_security_context, pod_security_context
from infra.components.observability.objects import helm_release, network_policy
from infra.components.platform_egress import api_server_egress, tcp_ports

LOKI_CHART = "loki"
LOKI_CHART_VERSION = "18.11.0"
LOKI_REPO = "https://grafana-community.github.io/helm-charts"
LOKI_RELEASE = "loki"
LOKI_SERVICE = LOKI_RELEASE
"""`fullnameOverride`: the single binary's Service is named like the release."""
LOKI_POD_LABELS = {"app.kubernetes.io/name": LOKI_CHART, "app.kubernetes.io/instance": "loki"}
"""The chart's selector labels (`loki.selectorLabels`)."""
LOKI_HTTP_PORT = 3100
"""Loki's HTTP API: push, queries, /ready, /metrics (`loki.server.http_listen_port`)."""
LOKI_SCHEMA_FROM = "2026-12-01"
"""First day of the one schema period (v13 on TSDB). Never edit it once deployed: a
schema change is a new period appended with a later date."""

ALLOY_CHART = "alloy"
ALLOY_CHART_VERSION = "1.11.1"
ALLOY_REPO = "https://grafana.github.io/helm-charts"
ALLOY_IMAGE_TAG = "v1.18.1"
ALLOY_RELEASE = "alloy"
ALLOY_POD_LABELS = {"app.kubernetes.io/name": ALLOY_CHART, "app.kubernetes.io/instance": "alloy"}
"""The chart's selector labels (`alloy.selectorLabels`)."""
ALLOY_HTTP_PORT = 12345
"""Alloy's HTTP server: /-/ready and /metrics (`alloy.listenPort`)."""
ALLOY_STORAGE = "/tmp/alloy"
"""`alloy.storagePath`: the positions of the log streams; an emptyDir (read-only root)."""
_ALLOY_USER = 473
"""The `alloy` user of the grafana/alloy image (its Dockerfile: `ARG UID="473"`); the
image does not switch to it by itself."""

_ALLOY_POD_SECURITY: dict[str, Any] = {**pod_security_context(_ALLOY_USER), "fsGroup": _ALLOY_USER}
_CONTAINER_SECURITY = container_security_context()
DEFAULT_LOKI_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}
DEFAULT_ALLOY_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "20m", "memory": "64Mi"},
    "limits": {"cpu": "250m", "memory": "192Mi"},
}


def loki_url(namespace: str) -> str:
    """Loki's HTTP API, for Grafana's data source and Alloy's writer."""
    return f"http://{LOKI_SERVICE}.{namespace}.svc.cluster.local:{LOKI_HTTP_PORT}"


@dataclass(frozen=True)
class LogsArgs:
    """Inputs of the logs component."""

    namespace: pulumi.Input[str]
    """The monitoring namespace (Loki and Alloy run there)."""
    api_server: ApiServerAccess
    """How Alloy reaches the API server (pod discovery and the log streams)."""
    retention: str = "72h"
    """How long Loki keeps logs (a duration in hours, `168h`)."""
    storage_size: str | None = None
    """Size of Loki's volume (`10Gi`); None keeps logs in an emptyDir."""
    loki_resources: Mapping[str, Any] | None = None
    """Requests and limits of the Loki container; None for the defaults above."""
    alloy_resources: Mapping[str, Any] | None = None
    """Requests and limits of each Alloy container; None for the defaults above."""
    after: Sequence[pulumi.Resource] = ()
    """The release that installs the ServiceMonitor CRD (both charts create one)."""


def loki_values(
    *, retention: str, storage_size: str | None, resources: Mapping[str, Any]
) -> dict[str, Any]:
    """Values for loki (Monolithic, filesystem). Every key exists in the chart's values."""
    return {
        "deploymentMode": "Monolithic",
        "fullnameOverride": LOKI_RELEASE,
        "loki": {
            # One tenant: Loki sits behind the monitoring namespace's policies, and only
            # Alloy (writes) and Grafana (reads) reach it.
            "auth_enabled": False,
            "commonConfig": {"replication_factor": 1},
            "storage": {"type": "filesystem"},
            "schemaConfig": {
                "configs": [
                    {
                        "from": LOKI_SCHEMA_FROM,
                        "store": "tsdb",
                        "object_store": "filesystem",
                        # v13: structured metadata (the lines' trace_id) needs it.
                        "schema": "v13",
                        "index": {"prefix": "loki_index_", "period": "24h"},
                    }
                ]
            },
            # The compactor deletes what is past the retention (grafana.com/docs/loki/
            # latest/operations/storage/retention/: retention_enabled and a
            # delete_request_store are both required).
            "compactor": {"retention_enabled": True, "delete_request_store": "filesystem"},
            # Loki's own configuration, merged last over what the chart renders (its
            # `limits_config` values list no retention_period, so it goes here).
            "structuredConfig": {"limits_config": {"retention_period": retention}},
            "analytics": {"reporting_enabled": False},
            # The chart's pod and container security contexts already pass `restricted`
            # (uid 10001, read-only root, no capabilities, RuntimeDefault seccomp).
        },
        # It reads nothing from the API server (the rules sidecar, which would, is off).
        "serviceAccount": {"automountServiceAccountToken": False},
        "defaults": {"automountServiceAccountToken": False},
        "singleBinary": {
            "replicas": 1,
            "resources": dict(resources),
            # Without a claim the chart mounts an emptyDir at /var/loki.
            "persistence": (
                {"enabled": True, "size": storage_size}
                if storage_size is not None
                else {"enabled": False}
            ),
        },
        "sidecar": {"rules": {"enabled": False}},
        # Monolithic: none of the scalable targets (the chart refuses both at once).
        "read": {"replicas": 0},
        "write": {"replicas": 0},
        "backend": {"replicas": 0},
        # Grafana and Alloy talk to the single binary directly: no nginx gateway, no
        # memcached (the chunks cache alone asks 8 GiB), no canary or Helm test.
        "gateway": {"enabled": False},
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
        "monitoring": {"serviceMonitor": {"enabled": True}},
    }


def alloy_config(loki_namespace: str) -> str:
    """Alloy's configuration: this node's pods → their log lines → Loki.

    Components: discovery.kubernetes, discovery.relabel, loki.source.kubernetes,
    loki.process, loki.write (grafana.com/docs/alloy/latest/collect/logs-in-kubernetes/).
    `HOSTNAME` is the node's name: the chart sets it from `spec.nodeName`.
    """
    push = f"{loki_url(loki_namespace)}/loki/api/v1/push"
    return f"""\
discovery.kubernetes "pods" {{
  role = "pod"
  // Only this node's pods: every node has its own Alloy.
  selectors {{
    role  = "pod"
    field = "spec.nodeName=" + sys.env("HOSTNAME")
  }}
}}

discovery.relabel "pods" {{
  targets = discovery.kubernetes.pods.targets
  rule {{
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }}
  // The Todo services' app id (their OpenTelemetry service.name), the charts' names.
  rule {{
    source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
    target_label  = "app"
  }}
}}

loki.source.kubernetes "pods" {{
  targets    = discovery.relabel.pods.output
  forward_to = [loki.process.pods.receiver]
}}

loki.process "pods" {{
  // JSON lines (the services, daprd with log-as-json); other lines pass unchanged.
  stage.json {{
    expressions = {{ level = "level", trace_id = "trace_id" }}
  }}
  stage.labels {{
    values = {{ level = "" }}
  }}
  stage.structured_metadata {{
    values = {{ trace_id = "" }}
  }}
  forward_to = [loki.write.loki.receiver]
}}

loki.write "loki" {{
  endpoint {{
    url = "{push}"
  }}
}}
"""


def alloy_values(*, loki_namespace: str, resources: Mapping[str, Any]) -> dict[str, Any]:
    """Values for alloy (a DaemonSet). Every key exists in the chart's values file."""
    return {
        "fullnameOverride": ALLOY_RELEASE,
        # The chart's CRDs (PodLogs) are for configurations this one does not use.
        "crds": {"create": False},
        "image": {"tag": ALLOY_IMAGE_TAG},
        "global": {"podSecurityContext": _ALLOY_POD_SECURITY},
        "alloy": {
            "configMap": {"content": alloy_config(loki_namespace)},
            "storagePath": ALLOY_STORAGE,
            "enableReporting": False,
            "securityContext": {
                **_CONTAINER_SECURITY,
                "runAsUser": _ALLOY_USER,
                "runAsGroup": _ALLOY_USER,
            },
            "resources": dict(resources),
            # The chart sets only a readiness probe; a wedged process is restarted.
            "livenessProbe": {
                "httpGet": {"path": "/-/ready", "port": ALLOY_HTTP_PORT},
                "periodSeconds": 30,
                "failureThreshold": 5,
            },
            "mounts": {
                "varlog": False,
                "dockercontainers": False,
                "extra": [{"name": "storage", "mountPath": ALLOY_STORAGE}],
            },
        },
        "controller": {
            "type": "daemonset",
            "volumes": {"extra": [{"name": "storage", "emptyDir": {}}]},
        },
        # No config-reloader sidecar: without it the chart rolls the pods on a config
        # change (its checksum annotation), and each node saves the sidecar's 50Mi.
        "configReloader": {"enabled": False},
        "rbac": {
            "create": True,
            # Only what the configuration reads: pods and their logs (the chart's
            # default also grants secrets, configmaps and the monitoring CRDs).
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/log"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
            "clusterRules": [],
        },
        "serviceMonitor": {"enabled": True},
    }


class Logs(pulumi.ComponentResource):
    """Loki and Alloy, and the monitoring namespace's paths for them."""

    loki_release: k8s.helm.v3.Release
    """Loki's Helm release."""
    alloy_release: k8s.helm.v3.Release
    """Alloy's Helm release."""

    def __init__(
        self, name: str, args: LogsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:observability:Logs", name, None, opts)
        after = list(args.after)
        self.loki_release = helm_release(
            self,
            f"{name}-loki",
            release=LOKI_RELEASE,
            chart=LOKI_CHART,
            version=LOKI_CHART_VERSION,
            repo=LOKI_REPO,
            namespace=args.namespace,
            values=loki_values(
                retention=args.retention,
                storage_size=args.storage_size,
                resources=args.loki_resources or DEFAULT_LOKI_RESOURCES,
            ),
            depends_on=after,
        )
        self.alloy_release = helm_release(
            self,
            f"{name}-alloy",
            release=ALLOY_RELEASE,
            chart=ALLOY_CHART,
            version=ALLOY_CHART_VERSION,
            repo=ALLOY_REPO,
            namespace=args.namespace,
            values=pulumi.Output.from_input(args.namespace).apply(
                lambda ns: alloy_values(
                    loki_namespace=ns,
                    resources=args.alloy_resources or DEFAULT_ALLOY_RESOURCES,
                )
            ),
            # Its first lines go to a Loki that is there.
            depends_on=[*after, self.loki_release],
        )
        self._create_network_policies(name, args)
        self.register_outputs(
            {
                "loki_release": self.loki_release.status.name,
                "alloy_release": self.alloy_release.status.name,
            }
        )

    def _create_network_policies(self, name: str, args: LogsArgs) -> None:
        """Alloy reaches the API server and Loki's push port; nothing else is opened here
        (the namespace's own policy admits its pods to each other, Alloy to Loki and
        Grafana to Loki among them, and lets everything resolve names)."""
        common: dict[str, Any] = {
            "namespace": args.namespace,
            "role": "alloy",
            "pod_selector": {"matchLabels": ALLOY_POD_LABELS},
            "opts": child_of(self),
        }
        network_policy(
            self,
            f"{name}-alloy-egress",
            policy_name="alloy-egress",
            namespace=args.namespace,
            spec={
                "podSelector": {"matchLabels": ALLOY_POD_LABELS},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": LOKI_POD_LABELS}}],
                        "ports": tcp_ports(LOKI_HTTP_PORT),
                    },
                    *api_server_egress(f"{name}-alloy-api-server", args.api_server, **common),
                ],
            },
        )
