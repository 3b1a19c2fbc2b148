"""Central logs, per stack: Loki and Alloy where the stack turns them on (staging, prod),
nothing on minikube; the charts' values, Alloy's configuration, Grafana's Loki data
source and the links between logs and traces."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from apps.shared.logs import configure_logging
from tests.infra.components.obs_edge_checks import chart_defaults
from tests.infra.components.plans import (
    EPHEMERAL,
    RESTRICTED_CONTAINER,
    depends_on,
    one,
    plan,
    release_values,
)
from tests.infra.validation import unknown_value_keys

LOKI = "observability-logs-loki"
ALLOY = "observability-logs-alloy"
LOGS_STACKS = ("staging", "prod")
# Per stack: Loki's retention and volume (stacks/Pulumi.<stack>.yaml).
EXPECTED = {"staging": ("72h", "5Gi"), "prod": ("168h", "10Gi")}
# The loki chart's container context: restricted, with runAsNonRoot left to the pod's.
LOKI_CONTAINER = {k: v for k, v in RESTRICTED_CONTAINER.items() if k != "runAsNonRoot"}


@pytest.mark.parametrize("stack", LOGS_STACKS)
def test_releases_are_pinned_in_the_monitoring_namespace(stack: str) -> None:
    run = plan(stack)
    for name, chart, version, repo in (
        (LOKI, "loki", "18.11.0", "https://grafana-community.github.io/helm-charts"),
        (ALLOY, "alloy", "1.11.1", "https://grafana.github.io/helm-charts"),
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
        assert list(unknown_value_keys(inputs["values"], chart_defaults(chart, version))) == []
    assert depends_on(run, one(run, ALLOY), one(run, LOKI))


def test_minikube_and_ephemeral_stacks_run_no_central_logs() -> None:
    for run in (plan("minikube"), plan(EPHEMERAL)):
        assert not [r for r in run.resources.values() if r.name.startswith("observability-logs")]
    grafana = release_values(plan("minikube"), "observability-stack")["grafana"]
    assert [d["type"] for d in grafana["additionalDataSources"]] == ["tempo"]
    tempo = grafana["additionalDataSources"][0]
    assert "tracesToLogsV2" not in tempo["jsonData"]  # no Loki to link to


@pytest.mark.parametrize("stack", LOGS_STACKS)
def test_loki_is_one_binary_on_its_volume_with_the_stacks_retention(stack: str) -> None:
    values = release_values(plan(stack), LOKI)
    retention, storage = EXPECTED[stack]
    assert values["deploymentMode"] == "Monolithic"
    assert values["singleBinary"]["replicas"] == 1
    assert values["singleBinary"]["persistence"] == {"enabled": True, "size": storage}
    assert values["singleBinary"]["resources"]["limits"]["memory"]
    # None of the scalable targets, no gateway, caches or canary: each would be pods the
    # footprint does not count (and the chunks cache alone asks 8 GiB).
    assert {part: values[part]["replicas"] for part in ("read", "write", "backend")} == {
        "read": 0,
        "write": 0,
        "backend": 0,
    }
    for part in ("gateway", "chunksCache", "resultsCache", "lokiCanary", "test"):
        assert values[part] == {"enabled": False}, part
    loki = values["loki"]
    assert loki["storage"] == {"type": "filesystem"}
    (schema,) = loki["schemaConfig"]["configs"]
    # Structured metadata (the lines' trace_id) needs schema v13 on TSDB.
    assert (schema["schema"], schema["store"], schema["object_store"]) == (
        "v13",
        "tsdb",
        "filesystem",
    )
    # Retention is the compactor's job: both switches, and the period.
    assert loki["compactor"] == {"retention_enabled": True, "delete_request_store": "filesystem"}
    assert loki["structuredConfig"]["limits_config"]["retention_period"] == retention
    assert loki["auth_enabled"] is False and loki["analytics"] == {"reporting_enabled": False}


@pytest.mark.parametrize("stack", LOGS_STACKS)
def test_loki_pods_pass_the_restricted_profile_by_the_charts_defaults(stack: str) -> None:
    values = release_values(plan(stack), LOKI)
    defaults = chart_defaults("loki", "18.11.0")
    # The program leaves the chart's security contexts alone: they must stay restricted.
    assert "podSecurityContext" not in values["loki"]
    assert "containerSecurityContext" not in values["loki"]
    pod = defaults["loki"]["podSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert defaults["loki"]["containerSecurityContext"] == LOKI_CONTAINER
    # Probes: the chart's own (readiness on /ready, liveness on buildinfo).
    assert defaults["loki"]["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert defaults["loki"]["livenessProbe"]["httpGet"]
    # Nothing in it talks to the API server: no token in the pod.
    assert values["serviceAccount"]["automountServiceAccountToken"] is False
    assert values["defaults"]["automountServiceAccountToken"] is False
    assert values["sidecar"]["rules"]["enabled"] is False


@pytest.mark.parametrize("stack", LOGS_STACKS)
def test_alloy_runs_on_every_node_without_host_access(stack: str) -> None:
    values = release_values(plan(stack), ALLOY)
    assert values["controller"]["type"] == "daemonset"
    alloy = values["alloy"]
    # No host paths: the logs come through the API server (loki.source.kubernetes), so
    # the pods pass the `restricted` profile the monitoring namespace warns on.
    assert alloy["mounts"]["varlog"] is False and alloy["mounts"]["dockercontainers"] is False
    for volume in values["controller"]["volumes"]["extra"]:
        assert set(volume) == {"name", "emptyDir"}
    assert {m["mountPath"] for m in alloy["mounts"]["extra"]} == {alloy["storagePath"]}
    assert alloy["securityContext"] == {
        **RESTRICTED_CONTAINER,
        "runAsUser": 473,
        "runAsGroup": 473,
    }
    pod = values["global"]["podSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert alloy["resources"]["requests"] and alloy["resources"]["limits"]["memory"]
    assert alloy["livenessProbe"]["httpGet"]["port"] == 12345
    assert alloy["enableReporting"] is False
    assert values["configReloader"] == {"enabled": False}
    assert values["image"] == {"tag": "v1.18.1"}
    # RBAC: pods and their logs, read-only; none of the chart's default grants (secrets,
    # configmaps, the monitoring CRDs, nodes).
    assert values["rbac"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}
    ]
    assert values["rbac"]["clusterRules"] == []
    assert values["crds"] == {"create": False}


def _blocks(config: str) -> list[str]:
    """The top-level components of an Alloy configuration (`kind "label"`)."""
    depth = 0
    heads = []
    for line in config.splitlines():
        if depth == 0 and line.strip().endswith("{"):
            heads.append(line.strip().removesuffix("{").strip())
        depth += line.count("{") - line.count("}")
        assert depth >= 0, line
    assert depth == 0
    return heads


@pytest.mark.parametrize("stack", LOGS_STACKS)
def test_alloy_ships_its_nodes_pod_logs_to_loki(stack: str) -> None:
    config = release_values(plan(stack), ALLOY)["alloy"]["configMap"]["content"]
    assert _blocks(config) == [
        'discovery.kubernetes "pods"',
        'discovery.relabel "pods"',
        'loki.source.kubernetes "pods"',
        'loki.process "pods"',
        'loki.write "loki"',
    ]
    # Each Alloy takes its own node's pods (the chart sets HOSTNAME to spec.nodeName).
    assert 'field = "spec.nodeName=" + sys.env("HOSTNAME")' in config
    # Wiring: discovery → relabel → source → process → write, each by its export.
    assert "targets = discovery.kubernetes.pods.targets" in config
    assert "targets    = discovery.relabel.pods.output" in config
    assert "forward_to = [loki.process.pods.receiver]" in config
    assert "forward_to = [loki.write.loki.receiver]" in config
    assert 'url = "http://loki.monitoring.svc.cluster.local:3100/loki/api/v1/push"' in config
    # The label the trace → logs link filters on is the pods' app name.
    assert '"__meta_kubernetes_pod_label_app_kubernetes_io_name"' in config
    assert 'target_label  = "app"' in config


@pytest.mark.parametrize("stack", LOGS_STACKS)
def test_grafana_links_traces_to_logs_and_logs_to_traces(stack: str) -> None:
    grafana = release_values(plan(stack), "observability-stack")["grafana"]
    sources = {d["type"]: d for d in grafana["additionalDataSources"]}
    assert set(sources) == {"tempo", "loki"}
    loki = sources["loki"]
    assert (loki["uid"], loki["url"]) == ("loki", "http://loki.monitoring.svc.cluster.local:3100")
    links = sources["tempo"]["jsonData"]["tracesToLogsV2"]
    assert links["datasourceUid"] == "loki"
    assert links["tags"] == [{"key": "service.name", "value": "app"}]
    assert links["filterByTraceID"] is True
    (derived,) = loki["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == "tempo"
    # `$$` is Grafana's escape for a literal `$` in a provisioned data source.
    assert derived["url"] == "$${__value.raw}"


@pytest.fixture
def app_logging() -> Iterator[None]:
    """The apps' logging, configured as in a service (JSON lines on stdout), and put
    back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("backend")
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    structlog.reset_defaults()


@pytest.mark.usefixtures("app_logging")
def test_the_loki_data_sources_trace_link_matches_a_real_app_log_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The derived field's pattern against a line the apps' logging really writes inside
    a span: it must pick out that span's trace id (and Alloy's `trace_id` key too)."""
    grafana = release_values(plan("prod"), "observability-stack")["grafana"]
    (loki,) = [d for d in grafana["additionalDataSources"] if d["type"] == "loki"]
    pattern = re.compile(loki["jsonData"]["derivedFields"][0]["matcherRegex"])
    tracer = TracerProvider().get_tracer("probe")
    with tracer.start_as_current_span("request") as span:
        structlog.get_logger("probe").info("task created", task_id=7)
        trace_id = f"{span.get_span_context().trace_id:032x}"
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line)["trace_id"] == trace_id  # the key Alloy's stage.json reads
    match = pattern.search(line)
    assert match is not None and match.group(1) == trace_id
