"""A FastAPI service's inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from apps.contracts.services import Role
from infra.settings import Resources, ServiceSettings


@dataclass(frozen=True)
class OtlpExport:
    """Where the app's OpenTelemetry SDK and its Dapr sidecar send traces."""

    endpoint: str
    """OTEL_EXPORTER_OTLP_ENDPOINT: the collector's OTLP/HTTP base URL (`http://host:4318`)."""
    sampler_ratio: str
    """OTEL_TRACES_SAMPLER_ARG of the parent-based trace-id ratio sampler (`0.05`)."""
    collector_namespace: pulumi.Input[str]
    """The collector's namespace, which the pod's egress policy opens."""
    collector_pod_labels: Mapping[str, str]
    """The collector pods' labels there."""
    ports: Sequence[int]
    """The collector's OTLP ports (gRPC for the sidecar, HTTP for the app)."""

    def app_env(self, service_name: str) -> dict[str, str]:
        """The OpenTelemetry SDK's standard variables (opentelemetry.io/docs/specs/otel/
        configuration/sdk-environment-variables/), so the SDK needs no code to read them."""
        return {
            "OTEL_SERVICE_NAME": service_name,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            # The ratio of `parentbased_traceidratio`, the sampler the apps install
            # (apps/shared/tracing.py; OTEL_TRACES_SAMPLER itself is not read): follow
            # the caller's decision (the sidecar's or the gateway's) when there is one,
            # else sample this ratio, the same as the sidecars' `samplingRate`.
            "OTEL_TRACES_SAMPLER_ARG": self.sampler_ratio,
        }


@dataclass(frozen=True)
class FastApiServiceArgs:
    """One service: image, scaling, Dapr wiring, secrets and network paths."""

    app_id: str
    """Dapr app id and Kubernetes name (`backend`, `notification`, `recurring`)."""
    role: Role
    """What the service is for (its `app.kubernetes.io/component` label)."""
    namespace: pulumi.Input[str]
    """The apps namespace."""
    image: str
    """Pinned image reference (tag, optionally with digest)."""
    settings: ServiceSettings
    """Replicas, autoscaling target and resources."""
    app_env: str
    """APP_ENV (`dev`, `test`, `staging`, `prod`)."""
    log_level: str
    """LOG_LEVEL."""
    dapr_config: str
    """Dapr Configuration name (`dapr.io/config`)."""
    dapr_sidecar: Resources
    """Sidecar requests and limits."""
    dapr_log_level: str
    """Sidecar log level."""
    database_secret: pulumi.Input[str]
    """Secret with key `url` (DATABASE_URL: through the connection pool when there is one)."""
    auth_secret: pulumi.Input[str]
    """Secret with key `jwt-secret` (AUTH_JWT_SECRET)."""
    app_token_secret: pulumi.Input[str]
    """Secret with key `token` (APP_API_TOKEN; Dapr sends it to the app)."""
    dapr_api_token_secret: pulumi.Input[str]
    """Secret with key `token` (DAPR_API_TOKEN; the app sends it to Dapr)."""
    monitoring_namespace: pulumi.Input[str] | None = None
    """Prometheus's namespace, allowed to scrape the app and its sidecar."""
    monitoring_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of the Prometheus pods in that namespace; empty admits the whole namespace."""
    ingress_namespaces: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    """Namespaces allowed to call the app's port (the gateway, for public APIs)."""
    ingress_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of the calling pods there (the Envoy proxies); empty admits whole namespaces."""
    public_egress_ports: Sequence[int] = field(default_factory=tuple)
    """Ports the app may call on public addresses (webhooks); never private ranges."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """More plain settings for the ConfigMap."""
    otlp: OtlpExport | None = None
    """Traces to the collector (env and an egress path); None: the stack runs no tracing."""
    transaction_pooling: bool = False
    """DATABASE_URL goes through a transaction-mode pool (DB_TRANSACTION_POOLING=true)."""
    database_direct_secret: pulumi.Input[str] | None = None
    """Secret with key `url` straight to the database (DATABASE_DIRECT_URL), for a service
    with sessions of its own (App.session_connections) when DATABASE_URL is pooled;
    None: not set."""
    image_pull_secret: pulumi.Input[str] | None = None
    """Secret for a private registry (`imagePullSecrets`); None for public images."""
    service_monitor_after: Sequence[pulumi.Resource] | None = None
    """The release that installs the ServiceMonitor CRD; None = no ServiceMonitor."""
    service_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels Prometheus selects ServiceMonitors by."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What must be ready before pods start (migrations, Kafka topics, Dapr resources)."""
