"""Traces, per stack: the collector and Tempo releases, the Dapr sidecars' and the apps'
exporters, Grafana's Tempo data source and the exemplar link."""

from __future__ import annotations

import pytest

from apps.shared.tracing import TracingSettings as AppTracingSettings
from tests.infra.components.obs_edge_checks import chart_defaults
from tests.infra.components.plans import (
    EPHEMERAL,
    RESTRICTED_CONTAINER,
    by_type,
    depends_on,
    one,
    plan,
    release_values,
)
from tests.infra.conftest import STACKS
from tests.infra.validation import unknown_value_keys

COLLECTOR = "observability-tracing-collector"
TEMPO = "observability-tracing-tempo"
COLLECTOR_GRPC = "otel-collector.monitoring.svc.cluster.local:4317"
COLLECTOR_HTTP = "http://otel-collector.monitoring.svc.cluster.local:4318"
APPS = ("backend", "notification", "recurring")
# Per stack: Tempo's retention and volume, collector replicas, the sampling ratio.
EXPECTED = {
    "minikube": ("24h", None, 1, "1"),
    "staging": ("72h", "5Gi", 1, "0.1"),
    "prod": ("168h", "10Gi", 2, "0.05"),
}


@pytest.mark.parametrize("stack", STACKS)
def test_releases_are_pinned_in_the_monitoring_namespace(stack: str) -> None:
    run = plan(stack)
    for name, chart, version, repo in (
        (
            COLLECTOR,
            "opentelemetry-collector",
            "0.170.0",
            "https://open-telemetry.github.io/opentelemetry-helm-charts",
        ),
        (TEMPO, "tempo", "2.2.4", "https://grafana-community.github.io/helm-charts"),
    ):
        inputs = one(run, name).raw_inputs
        assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (
            chart,
            version,
            "monitoring",
        )
        assert inputs["repositoryOpts"] == {"repo": repo}
        # Their ServiceMonitors need kube-prometheus-stack's CRDs.
        assert depends_on(run, one(run, name), one(run, "observability-stack"))
        # Pod and container securityContexts are passed through whole (free-form here).
        defaults = chart_defaults(chart, version)
        assert list(unknown_value_keys(inputs["values"], defaults)) == []


@pytest.mark.parametrize("stack", STACKS)
def test_collector_receives_otlp_and_exports_to_tempo_only(stack: str) -> None:
    values = release_values(plan(stack), COLLECTOR)
    assert values["mode"] == "deployment"
    assert values["image"] == {
        "repository": "otel/opentelemetry-collector-k8s",
        "tag": "0.158.0",
    }
    assert values["replicaCount"] == EXPECTED[stack][2]
    config = values["alternateConfig"]
    assert set(config["receivers"]) == {"otlp"}
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert config["exporters"] == {
        "otlp": {
            "endpoint": "tempo.monitoring.svc.cluster.local:4317",
            "tls": {"insecure": True},
        }
    }
    assert config["service"]["pipelines"] == {
        "traces": {
            "receivers": ["otlp"],
            "processors": ["memory_limiter", "batch"],
            "exporters": ["otlp"],
        }
    }
    assert {p for p, port in values["ports"].items() if port.get("enabled") is False} == {
        "jaeger-compact",
        "jaeger-thrift",
        "jaeger-grpc",
        "zipkin",
    }
    assert values["securityContext"] == RESTRICTED_CONTAINER
    assert values["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert values["resources"]["requests"] and values["resources"]["limits"]["memory"]


@pytest.mark.parametrize("stack", STACKS)
def test_tempo_retention_and_storage_per_stack(stack: str) -> None:
    values = release_values(plan(stack), TEMPO)
    retention, storage, _, _ = EXPECTED[stack]
    assert values["tempo"]["tag"] == "2.10.8"
    assert values["tempo"]["retention"] == retention
    assert values["tempo"]["reportingEnabled"] is False
    assert values["tempo"]["securityContext"] == RESTRICTED_CONTAINER
    mounts = {m["mountPath"] for m in values["tempo"]["extraVolumeMounts"]}
    if storage is None:
        assert values["persistence"] == {"enabled": False}
        assert mounts == {"/tmp", "/var/tempo"}  # emptyDirs: the root filesystem is read-only
    else:
        assert values["persistence"] == {"enabled": True, "size": storage}
        assert mounts == {"/tmp"}  # the chart mounts the claim at /var/tempo


@pytest.mark.parametrize("stack", STACKS)
def test_dapr_configurations_send_spans_to_the_collector(stack: str) -> None:
    sampling = EXPECTED[stack][3]
    configurations = by_type(plan(stack), "kubernetes:dapr.io/v1alpha1:Configuration")
    assert configurations
    for configuration in configurations:
        assert configuration.raw_inputs["spec"]["tracing"] == {
            "samplingRate": sampling,
            "otel": {"endpointAddress": COLLECTOR_GRPC, "isSecure": False, "protocol": "grpc"},
        }


@pytest.mark.parametrize("stack", STACKS)
def test_apps_get_the_otlp_endpoint_and_sampler(stack: str) -> None:
    run = plan(stack)
    sampling = EXPECTED[stack][3]
    for app in APPS:
        data = one(run, f"{app}-config").raw_inputs["data"]
        assert data["OTEL_SERVICE_NAME"] == app
        assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == COLLECTOR_HTTP
        assert data["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
        assert "OTEL_TRACES_SAMPLER" not in data  # the apps install their own sampler
        assert data["OTEL_TRACES_SAMPLER_ARG"] == sampling
        # What the app reads from that ConfigMap: tracing on, the stack's ratio.
        with pytest.MonkeyPatch.context() as env:
            for key, value in data.items():
                env.setenv(key, value)
            app_settings = AppTracingSettings()
        assert app_settings.enabled
        assert app_settings.otel_traces_sampler_arg == float(sampling)
        egress = one(run, f"{app}-otlp-egress").raw_inputs["spec"]
        assert egress["policyTypes"] == ["Egress"]
        assert egress["egress"] == [
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                        },
                        "podSelector": {
                            "matchLabels": {
                                "app.kubernetes.io/name": "opentelemetry-collector",
                                "app.kubernetes.io/instance": "otel-collector",
                            }
                        },
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 4317}, {"protocol": "TCP", "port": 4318}],
            }
        ]


def test_an_ephemeral_stack_sends_no_traces() -> None:
    run = plan(EPHEMERAL)
    assert not [r for r in run.resources.values() if r.name.startswith("observability")]
    data = one(run, "backend-config").raw_inputs["data"]
    assert not [key for key in data if key.startswith("OTEL_")]
    for configuration in by_type(run, "kubernetes:dapr.io/v1alpha1:Configuration"):
        assert "otel" not in configuration.raw_inputs["spec"]["tracing"]


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_gets_tempo_and_prometheus_links_exemplars_to_it(stack: str) -> None:
    values = release_values(plan(stack), "observability-stack")
    (tempo,) = [d for d in values["grafana"]["additionalDataSources"] if d["type"] == "tempo"]
    assert (tempo["type"], tempo["uid"], tempo["url"]) == (
        "tempo",
        "tempo",
        "http://tempo.monitoring.svc.cluster.local:3200",
    )
    assert tempo["jsonData"]["tracesToMetrics"] == {"datasourceUid": "prometheus"}
    assert values["grafana"]["sidecar"]["datasources"]["exemplarTraceIdDestinations"] == {
        "datasourceUid": "tempo",
        "traceIdLabelName": "trace_id",
        "urlDisplayLabel": "View trace",
    }
    assert values["prometheus"]["prometheusSpec"]["enableFeatures"] == ["exemplar-storage"]


@pytest.mark.parametrize("stack", STACKS)
def test_a_drain_takes_one_collector_at_a_time_where_there_are_several(stack: str) -> None:
    run = plan(stack)
    budgets = [
        r
        for r in by_type(run, "kubernetes:policy/v1:PodDisruptionBudget")
        if r.name == f"{COLLECTOR}-pdb"
    ]
    if EXPECTED[stack][2] == 1:
        assert budgets == []  # one collector: a budget would block every drain
        return
    (budget,) = budgets
    spec = budget.raw_inputs["spec"]
    assert spec["maxUnavailable"] == 1
    # The chart's selector labels (`opentelemetry-collector.selectorLabels`).
    assert spec["selector"] == {
        "matchLabels": {
            "app.kubernetes.io/name": "opentelemetry-collector",
            "app.kubernetes.io/instance": "otel-collector",
        }
    }
    assert budget.raw_inputs["metadata"]["namespace"] == "monitoring"
    assert depends_on(run, budget, one(run, COLLECTOR))
