"""FastApiService: hardened pods with a Dapr sidecar, autoscaling, budgets, policies, scrapes."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from infra.tooling.plan.release_images import placeholder_digest
from infra.tooling.plan.runner import PlanRun, config_from_mapping, run_program
from tests.infra.components.plans import EPHEMERAL, by_type, depends_on, one, plan, pod_spec

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _deployment(run: PlanRun, app: str) -> dict[str, Any]:
    inputs: dict[str, Any] = one(run, f"{app}-deployment").raw_inputs
    return inputs


@pytest.mark.parametrize("app", ["backend", "notification", "recurring"])
def test_pods_are_hardened(app: str) -> None:
    spec = pod_spec(one(plan("prod"), f"{app}-deployment"))
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == app
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    # Prod's stack file names no images (the release pins them); the plan says so with a
    # placeholder that can never resolve.
    digest = placeholder_digest(app)
    assert container["image"] == f"release.invalid/todo/todo-{app}:planned-release@{digest}"


def test_dapr_annotations() -> None:
    annotations = _deployment(plan("prod"), "backend")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations["dapr.io/enabled"] == "true"
    assert annotations["dapr.io/app-id"] == "backend"
    assert annotations["dapr.io/app-port"] == "8000"
    assert annotations["dapr.io/config"] == "backend-config"
    assert annotations["dapr.io/app-token-secret"] == "app-secrets-app-token"
    assert annotations["dapr.io/api-token-secret"] == "app-secrets-dapr-api-token"
    assert annotations["dapr.io/sidecar-seccomp-profile-type"] == "RuntimeDefault"
    assert annotations["dapr.io/disable-builtin-k8s-secret-store"] == "true"
    assert annotations["dapr.io/sidecar-memory-limit"] == "256Mi"
    volume, path = annotations["dapr.io/volume-mounts"].split(":")
    assert path == "/var/run/secrets/kubernetes.io/serviceaccount"
    volumes = {v["name"]: v for v in pod_spec(one(plan("prod"), "backend-deployment"))["volumes"]}
    token = volumes[volume]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["expirationSeconds"] == 3600


def test_environment_comes_from_secrets_and_a_configmap() -> None:
    run = plan("prod")
    container = pod_spec(one(run, "notification-deployment"))["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert set(env) == {"DATABASE_URL", "AUTH_JWT_SECRET", "APP_API_TOKEN", "DAPR_API_TOKEN"}
    assert env["DATABASE_URL"]["key"] == "url"
    config = one(run, "notification-config").raw_inputs["data"]
    assert config == {
        "APP_ENV": "prod",
        "LOG_LEVEL": "INFO",
        "DB_POOL_SIZE": "1",
        # DATABASE_URL is prod's connection pool (PgBouncer, transaction mode).
        "DB_TRANSACTION_POOLING": "true",
        "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": "10",
        "SHUTDOWN_DRAIN_SECONDS": "10",
        # todo:apps.limits, defaults (apps/shared/http_limits.py reads them)
        "HTTP_MAX_BODY_BYTES": "1048576",
        "HTTP_MAX_HEADER_BYTES": "32768",
        "AUTH_MAX_TOKEN_BYTES": "8192",
        # Traces to the collector (test_tracing.py), sampled like the sidecars.
        "OTEL_SERVICE_NAME": "notification",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.monitoring.svc.cluster.local:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER_ARG": "0.05",
    }


@pytest.mark.parametrize("stack", ["minikube", "staging", "prod"])
def test_shutdown_budget_fits_the_grace_period(stack: str) -> None:
    """preStop + app drain + sidecar drain < terminationGracePeriodSeconds, and daprd keeps
    its API up for the app's whole stop (infra/components/fastapi_service/shutdown.py)."""
    for app_id in ("backend", "notification", "recurring"):
        deployment = _deployment(plan(stack), app_id)
        spec = deployment["spec"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        template = spec["template"]
        pod = template["spec"]
        annotations = template["metadata"]["annotations"]
        (app,) = pod["containers"]
        pre_stop = app["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
        config = one(plan(stack), f"{app_id}-config").raw_inputs["data"]
        app_drain = int(config["UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN"]) + int(
            config["SHUTDOWN_DRAIN_SECONDS"]
        )
        sidecar_drain = int(annotations["dapr.io/graceful-shutdown-seconds"])
        block = int(annotations["dapr.io/block-shutdown-duration"].removesuffix("s"))
        assert (pre_stop, app_drain, sidecar_drain, block) == (5, 20, 5, 25)
        assert pre_stop + app_drain + sidecar_drain < pod["terminationGracePeriodSeconds"] == 40
        assert block >= pre_stop + app_drain


def test_rollout_autoscaling_and_budget() -> None:
    run = plan("prod")
    spec = _deployment(run, "backend")["spec"]
    assert "replicas" not in spec  # the HPA owns it
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert len(spec["template"]["spec"]["topologySpreadConstraints"]) == 2
    hpa = one(run, "backend-hpa").raw_inputs["spec"]
    # maxReplicas 4: what prod's database connections allow (stacks/Pulumi.prod.yaml).
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 4)
    assert one(run, "backend-pdb").raw_inputs["spec"]["maxUnavailable"] == 1


def test_pods_start_after_migrations_kafka_and_dapr() -> None:
    run = plan("prod")
    for app in ("backend", "notification", "recurring"):
        deployment = one(run, f"{app}-deployment")
        assert one(run, "migrations-job").urn in deployment.dependencies
        assert one(run, "kafka-topic-task-events").urn in deployment.dependencies
        assert one(run, "dapr-pubsub").urn in deployment.dependencies
        assert depends_on(run, deployment, one(run, "database-grants"))


def test_per_service_network_paths() -> None:
    run = plan("prod")
    for app in ("backend", "notification", "recurring"):
        rules = one(run, f"{app}-ingress").raw_inputs["spec"]["ingress"]
        peers = {
            rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: (
                rule["from"][0]["podSelector"]["matchLabels"],
                {port["port"] for port in rule["ports"]},
            )
            for rule in rules
        }
        # Only the Prometheus pods scrape (app and sidecar), only the Envoy proxies call in.
        assert peers == {
            "monitoring": ({"app.kubernetes.io/name": "prometheus"}, {8000, 9090}),
            "envoy-gateway-system": (
                {
                    "app.kubernetes.io/managed-by": "envoy-gateway",
                    "app.kubernetes.io/component": "proxy",
                },
                {8000},
            ),
        }, app
    assert not [r for r in run.resources.values() if r.name == "recurring-public-egress"]
    egress = one(run, "notification-public-egress").raw_inputs["spec"]["egress"][0]
    assert "10.0.0.0/8" in egress["to"][0]["ipBlock"]["except"]


PROGRAM = textwrap.dedent(
    """
    import pulumi
    import pulumi_kubernetes as k8s
    from infra.components.fastapi_service import FastApiService, FastApiServiceArgs
    from apps.contracts.services import Role
    from infra.settings import Resources, ServiceSettings

    provider = k8s.Provider("k8s", context="test")
    monitoring = k8s.helm.v3.Release(
        "kube-prometheus-stack", chart="kube-prometheus-stack", version="88.5.3",
        opts=pulumi.ResourceOptions(provider=provider),
    )
    FastApiService(
        "backend",
        FastApiServiceArgs(
            app_id="backend", role=Role.API, namespace="todo", image="todo-backend:1",
            settings=ServiceSettings(),
            app_env="test", log_level="INFO", dapr_config="backend-config",
            dapr_sidecar=Resources(cpu_request="1m", memory_request="1Mi", cpu_limit="1",
                                   memory_limit="1Mi"),
            dapr_log_level="info", database_secret="db", auth_secret="auth",
            app_token_secret="app-token", dapr_api_token_secret="dapr-token",
            service_monitor_after=[monitoring],
            service_monitor_labels={"release": "kube-prometheus-stack"},
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )
    """
)


def test_service_monitor_waits_for_the_monitoring_release(tmp_path: Path) -> None:
    program = tmp_path / "__main__.py"
    program.write_text(PROGRAM)
    run = run_program("unit", config_from_mapping({}), program=program)
    monitor = one(run, "backend-monitor")
    assert monitor.type == "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
    assert one(run, "kube-prometheus-stack").urn in monitor.dependencies
    assert monitor.raw_inputs["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor.raw_inputs["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s"}
    ]
    assert monitor.parent == one(run, "backend").urn
    assert monitor.provider_urn == one(run, "k8s").urn
    assert len(by_type(run, DEPLOYMENT)) == 1


def test_service_monitors_follow_the_stacks_monitoring_release() -> None:
    run = plan("prod")
    release = one(run, "observability-stack")
    monitors = by_type(run, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert sorted(m.name for m in monitors) == [
        "backend-monitor",
        "notification-monitor",
        "recurring-monitor",
    ]
    assert all(release.urn in m.dependencies for m in monitors)
    # An ephemeral stack's monitors rely on its base stack's release for the CRD.
    dev = by_type(plan(EPHEMERAL), "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert len(dev) == 3
    assert not [d for m in dev for d in m.dependencies if "Release" in d]
