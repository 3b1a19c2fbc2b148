"""Traces: an OpenTelemetry Collector that receives OTLP and exports it to Grafana Tempo.

The apps' OpenTelemetry SDK and the Dapr sidecars (Configuration `spec.tracing.otel`) send
OTLP to the collector's Service (gRPC 4317, HTTP 4318); the collector batches, caps its
memory and exports over OTLP/gRPC to Tempo (single binary), which Grafana queries on 3200.

Charts and their defaults (vendored in infra/k8s-reference/values/):
- `opentelemetry-collector` 0.170.0 (open-telemetry/opentelemetry-helm-charts, tag
  opentelemetry-collector-0.170.0, commit f5178cb9), app version 0.158.0;
- `tempo` 2.2.4 (grafana-community/helm-charts, tag tempo-2.2.4, commit 7d2a00b3: the chart
  moved there from grafana/helm-charts, whose copy is deprecated), app version 2.10.8.

Both pods pass the `restricted` Pod Security profile: non-root, read-only root filesystem,
every capability dropped, RuntimeDefault seccomp, requests and limits, probes (the charts'
own: the collector's health_check extension on 13133, Tempo's /ready on 3200).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.kube import child_of, container_security_context, pod_security_context
from infra.components.observability.objects import helm_release, network_policy
from infra.components.platform_egress import namespace_peer, tcp_ports

COLLECTOR_CHART = "opentelemetry-collector"
COLLECTOR_CHART_VERSION = "0.170.0"
COLLECTOR_REPO = "https://open-telemetry.github.io/opentelemetry-helm-charts"
COLLECTOR_IMAGE = "otel/opentelemetry-collector-k8s"
COLLECTOR_IMAGE_TAG = "0.158.0"
"""The Kubernetes distribution (otlp receiver and exporter, batch, memory_limiter,
health_check): the chart's appVersion at 0.170.0. The chart has no default image."""
COLLECTOR_RELEASE = "otel-collector"
COLLECTOR_SERVICE = COLLECTOR_RELEASE
"""`fullnameOverride`: the Service is named like the release."""
COLLECTOR_POD_LABELS = {
    "app.kubernetes.io/name": COLLECTOR_CHART,
    "app.kubernetes.io/instance": COLLECTOR_RELEASE,
}
"""The chart's selector labels (`opentelemetry-collector.selectorLabels`)."""
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
COLLECTOR_METRICS_PORT = 8888
COLLECTOR_HEALTH_PORT = 13133

TEMPO_CHART = "tempo"
TEMPO_CHART_VERSION = "2.2.4"
TEMPO_REPO = "https://grafana-community.github.io/helm-charts"
TEMPO_IMAGE_TAG = "2.10.8"
TEMPO_RELEASE = "tempo"
TEMPO_SERVICE = TEMPO_RELEASE
TEMPO_POD_LABELS = {"app.kubernetes.io/name": TEMPO_CHART, "app.kubernetes.io/instance": "tempo"}
"""The chart's selector labels (`tempo.selectorLabels`)."""
TEMPO_HTTP_PORT = 3200
"""Tempo's API (queries, /ready, /metrics)."""

_NON_ROOT_USER = 10001
_POD_SECURITY: dict[str, Any] = {
    **pod_security_context(_NON_ROOT_USER),
    "fsGroup": _NON_ROOT_USER,
}
_CONTAINER_SECURITY = container_security_context()


def collector_endpoint(namespace: str, port: int = OTLP_GRPC_PORT) -> str:
    """`host:port` of the collector's Service in `namespace` (what Dapr's otel block takes)."""
    return f"{COLLECTOR_SERVICE}.{namespace}.svc.cluster.local:{port}"


def tempo_url(namespace: str) -> str:
    """Tempo's query API, for Grafana's data source."""
    return f"http://{TEMPO_SERVICE}.{namespace}.svc.cluster.local:{TEMPO_HTTP_PORT}"


@dataclass(frozen=True)
class TracingArgs:
    """Inputs of the tracing component."""

    namespace: pulumi.Input[str]
    """The monitoring namespace (the collector and Tempo run there)."""
    sender_namespaces: Sequence[pulumi.Input[str]]
    """Namespaces whose pods (apps and their Dapr sidecars) may send OTLP to the collector."""
    retention: str = "24h"
    """How long Tempo keeps traces (a duration in hours, `72h`)."""
    storage_size: str | None = None
    """Size of Tempo's volume (`10Gi`); None keeps traces in an emptyDir."""
    collector_replicas: int = 1
    """Collector pods (stateless; more than one spreads the load and survives a restart)."""
    collector_resources: Mapping[str, Any] | None = None
    """Requests and limits of the collector container; None for the defaults below."""
    tempo_resources: Mapping[str, Any] | None = None
    """Requests and limits of the Tempo container; None for the defaults below."""
    after: Sequence[pulumi.Resource] = ()
    """The release that installs the ServiceMonitor CRD (both charts create one)."""


DEFAULT_COLLECTOR_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}
DEFAULT_TEMPO_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


def collector_config(tempo_namespace: str) -> dict[str, Any]:
    """The collector's whole configuration (`alternateConfig`: not merged with the chart's,
    whose default also opens Jaeger and Zipkin receivers and a debug exporter)."""
    return {
        "extensions": {"health_check": {"endpoint": f"${{env:MY_POD_IP}}:{COLLECTOR_HEALTH_PORT}"}},
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_GRPC_PORT}"},
                    "http": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_HTTP_PORT}"},
                }
            }
        },
        "processors": {
            # Refuse data before the container's limit is reached (percentages of the
            # memory limit, which the chart turns into GOMEMLIMIT), then batch.
            "memory_limiter": {
                "check_interval": "5s",
                "limit_percentage": 80,
                "spike_limit_percentage": 25,
            },
            "batch": {},
        },
        "exporters": {
            "otlp": {
                "endpoint": f"{TEMPO_SERVICE}.{tempo_namespace}.svc.cluster.local:{OTLP_GRPC_PORT}",
                # In-cluster, inside the monitoring namespace's NetworkPolicies.
                "tls": {"insecure": True},
            }
        },
        "service": {
            "extensions": ["health_check"],
            "telemetry": {
                "metrics": {
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {
                                        "host": "${env:MY_POD_IP}",
                                        "port": COLLECTOR_METRICS_PORT,
                                    }
                                }
                            }
                        }
                    ]
                }
            },
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["otlp"],
                }
            },
        },
    }


def collector_values(
    *, namespace: str, replicas: int, resources: Mapping[str, Any]
) -> dict[str, Any]:
    """Values for opentelemetry-collector. Every key exists in the chart's values file."""
    return {
        "mode": "deployment",
        "fullnameOverride": COLLECTOR_RELEASE,
        "image": {"repository": COLLECTOR_IMAGE, "tag": COLLECTOR_IMAGE_TAG},
        "command": {"name": "otelcol-k8s"},
        "replicaCount": replicas,
        "alternateConfig": collector_config(namespace),
        "ports": {
            # Only OTLP in, and the collector's own metrics for Prometheus.
            "jaeger-compact": {"enabled": False},
            "jaeger-thrift": {"enabled": False},
            "jaeger-grpc": {"enabled": False},
            "zipkin": {"enabled": False},
            "metrics": {"enabled": True},
        },
        "serviceMonitor": {"enabled": True},
        # It reads nothing from the API server.
        "serviceAccount": {"automountServiceAccountToken": False},
        "podSecurityContext": _POD_SECURITY,
        "securityContext": _CONTAINER_SECURITY,
        "resources": dict(resources),
        # The PodDisruptionBudget is the component's own (below): the chart renders one
        # only with minAvailable or maxUnavailable, keys its values file does not list.
    }


def tempo_values(
    *, retention: str, storage_size: str | None, resources: Mapping[str, Any]
) -> dict[str, Any]:
    """Values for tempo (single binary). Every key exists in the chart's values file."""
    # Tempo writes its WAL and blocks under /var/tempo: the chart mounts a volume there
    # only with persistence, so without it an emptyDir takes its place (the root
    # filesystem is read-only). /tmp likewise.
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "scratch", "mountPath": "/tmp"}]
    if storage_size is None:
        volumes.append({"name": "tempo-data", "emptyDir": {}})
        mounts.append({"name": "tempo-data", "mountPath": "/var/tempo"})
    return {
        "fullnameOverride": TEMPO_RELEASE,
        "replicas": 1,
        "tempo": {
            "tag": TEMPO_IMAGE_TAG,
            "retention": retention,
            "reportingEnabled": False,
            "resources": dict(resources),
            "securityContext": _CONTAINER_SECURITY,
            "extraVolumeMounts": mounts,
            # Receivers: the chart's (OTLP on 4317/4318, which the collector exports to,
            # and Jaeger's, which Helm's map merge keeps; no policy lets a peer reach them).
        },
        "securityContext": _POD_SECURITY,
        "serviceAccount": {"automountServiceAccountToken": False},
        "serviceMonitor": {"enabled": True},
        "persistence": (
            {"enabled": True, "size": storage_size}
            if storage_size is not None
            else {"enabled": False}
        ),
        "extraVolumes": volumes,
    }


class Tracing(pulumi.ComponentResource):
    """The OpenTelemetry Collector and Tempo, and the monitoring namespace's paths for them."""

    collector_release: k8s.helm.v3.Release
    """The collector's Helm release."""
    tempo_release: k8s.helm.v3.Release
    """Tempo's Helm release."""

    def __init__(
        self, name: str, args: TracingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:observability:Tracing", name, None, opts)
        after = list(args.after)
        self.tempo_release = helm_release(
            self,
            f"{name}-tempo",
            release=TEMPO_RELEASE,
            chart=TEMPO_CHART,
            version=TEMPO_CHART_VERSION,
            repo=TEMPO_REPO,
            namespace=args.namespace,
            values=tempo_values(
                retention=args.retention,
                storage_size=args.storage_size,
                resources=args.tempo_resources or DEFAULT_TEMPO_RESOURCES,
            ),
            depends_on=after,
        )
        self.collector_release = helm_release(
            self,
            f"{name}-collector",
            release=COLLECTOR_RELEASE,
            chart=COLLECTOR_CHART,
            version=COLLECTOR_CHART_VERSION,
            repo=COLLECTOR_REPO,
            namespace=args.namespace,
            values=pulumi.Output.from_input(args.namespace).apply(
                lambda ns: collector_values(
                    namespace=ns,
                    replicas=args.collector_replicas,
                    resources=args.collector_resources or DEFAULT_COLLECTOR_RESOURCES,
                )
            ),
            depends_on=after,
        )
        self._create_network_policies(name, args)
        if args.collector_replicas > 1:
            self._create_collector_disruption_budget(name, args)
        self.register_outputs(
            {
                "collector_release": self.collector_release.status.name,
                "tempo_release": self.tempo_release.status.name,
            }
        )

    def _create_collector_disruption_budget(self, name: str, args: TracingArgs) -> None:
        """A drain takes one collector at a time: the others keep receiving spans (the
        SDKs and sidecars retry on the Service, which routes to the ready ones)."""
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-collector-pdb",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=COLLECTOR_RELEASE,
                namespace=args.namespace,
                labels={"app.kubernetes.io/part-of": "todo"},
            ),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=COLLECTOR_POD_LABELS),
            ),
            opts=child_of(self, depends_on=[self.collector_release]),
        )

    def _create_network_policies(self, name: str, args: TracingArgs) -> None:
        """The collector admits OTLP from the senders' namespaces and reaches Tempo's OTLP
        port; nothing else is opened here (the namespace's own policy admits its pods,
        Prometheus and Grafana among them, and lets everything resolve names)."""
        network_policy(
            self,
            f"{name}-collector-ingress",
            policy_name="allow-otlp-to-collector",
            namespace=args.namespace,
            spec={
                "podSelector": {"matchLabels": COLLECTOR_POD_LABELS},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [namespace_peer(ns) for ns in args.sender_namespaces],
                        "ports": tcp_ports(OTLP_GRPC_PORT, OTLP_HTTP_PORT),
                    }
                ],
            },
        )
        network_policy(
            self,
            f"{name}-collector-egress",
            policy_name="collector-egress",
            namespace=args.namespace,
            spec={
                "podSelector": {"matchLabels": COLLECTOR_POD_LABELS},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": TEMPO_POD_LABELS}}],
                        "ports": tcp_ports(OTLP_GRPC_PORT),
                    }
                ],
            },
        )
