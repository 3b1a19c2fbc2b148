"""Dapr: pinned HA control plane with mTLS, and the app namespace's scoped resources."""

from __future__ import annotations

from typing import Any

from infra.tooling.plan.runner import PlanRun
from tests.infra.components.obs_edge_checks import chart_defaults
from tests.infra.components.plans import EPHEMERAL, by_type, one, plan

COMPONENT = "kubernetes:dapr.io/v1alpha1:Component"


def _components(run: PlanRun) -> dict[str, dict[str, Any]]:
    return {r.raw_inputs["metadata"]["name"]: r.raw_inputs for r in by_type(run, COMPONENT)}


def _metadata(component: dict[str, Any]) -> dict[str, Any]:
    return {
        item["name"]: item.get("value", item.get("secretKeyRef"))
        for item in component["spec"]["metadata"]
    }


def test_control_plane_release() -> None:
    release = one(plan("prod"), "dapr-control-plane")
    assert (release.raw_inputs["chart"], release.raw_inputs["version"]) == ("dapr", "1.18.3")
    values = release.raw_inputs["values"]
    assert values["global"]["ha"] == {"enabled": True}
    assert values["global"]["mtls"]["enabled"] is True
    injector = values["dapr_sidecar_injector"]
    assert injector["sidecarDropALLCapabilities"] is True
    assert injector["sidecarReadOnlyRootFilesystem"] is True and injector["sidecarRunAsNonRoot"]
    assert values["dapr_rbac"] == {"secretReader": {"enabled": False}}
    assert one(plan("minikube"), "dapr-control-plane").raw_inputs["values"]["global"]["ha"] == {
        "enabled": False
    }


def test_dapr_resources_wait_for_the_release_that_installs_their_crds() -> None:
    run = plan("prod")
    release = one(run, "dapr-control-plane")
    dapr = [r for r in run.resources.values() if "dapr.io/" in r.type]
    # 4 Components, 2 Configurations, 1 Resiliency; no declarative Subscription.
    assert len(dapr) == 7
    assert all(release.urn in r.dependencies for r in dapr)
    # ... and nothing else waits on it without reason: the Kafka operator does not.
    assert release.urn not in one(run, "kafka-operator").dependencies


def test_pubsub_component() -> None:
    pubsub = _components(plan("prod"))["pubsub"]
    assert pubsub["spec"]["type"] == "pubsub.kafka"
    meta = _metadata(pubsub)
    assert meta["brokers"] == "todo-kafka-bootstrap.kafka.svc:9092"
    assert meta["consumerGroup"] == "{appID}"
    assert meta["initialOffset"] == "oldest" and meta["maxMessageBytes"] == "1048576"
    assert meta["authType"] == "password" and meta["saslMechanism"] == "SHA-512"
    assert meta["saslPassword"]["key"] == "password"
    # No `auth.secretStore`: the operator resolves secretKeyRef from Kubernetes Secrets
    # when it hands the component to daprd (dapr pkg/operator/api/components.go), so a
    # sidecar's start does not wait on its own API-server round trip for secrets.
    assert "auth" not in pubsub
    assert pubsub["scopes"] == ["backend", "notification", "recurring"]


def test_state_secret_and_cron_components() -> None:
    components = _components(plan("minikube"))
    assert set(components) == {"pubsub", "statestore", "secretstore", "reminder-scan"}
    assert components["statestore"]["spec"]["type"] == "state.postgresql"
    state = _metadata(components["statestore"])
    assert state["connectionString"]["key"] == "url"
    assert state["maxConns"] == "1"  # counted in the database's connection budget
    assert components["secretstore"]["spec"]["type"] == "secretstores.kubernetes"
    cron = components["reminder-scan"]
    assert cron["spec"]["type"] == "bindings.cron" and cron["scopes"] == ["backend"]
    assert _metadata(cron)["route"] == "/reminder-scan"


def test_no_component_resolves_secrets_through_a_secret_store() -> None:
    for stack in ("minikube", "prod", EPHEMERAL):
        components = _components(plan(stack))
        assert [name for name, c in components.items() if "auth" in c] == [], stack


def test_subscriptions_are_programmatic_only() -> None:
    # daprd uses the app's GET /dapr/subscribe (the routes table in apps/); a declarative
    # Subscription for the same topic would be a second source of truth.
    for stack in ("minikube", "staging", "prod", EPHEMERAL):
        run = plan(stack)
        assert [r.type for r in run.resources.values() if r.type.endswith(":Subscription")] == []


def test_injector_fails_closed_for_app_pods_only() -> None:
    values = one(plan("prod"), "dapr-control-plane").raw_inputs["values"]
    injector = values["dapr_sidecar_injector"]
    # The chart's default is Ignore (vendored values): a pod would start without daprd.
    defaults = chart_defaults("dapr-dapr_sidecar_injector", "1.18.3")
    assert defaults["webhookFailurePolicy"] == "Ignore"
    assert injector["webhookFailurePolicy"] == "Fail"
    # ... scoped, so that a control-plane outage blocks only pods that ask for a sidecar
    # in namespaces that host apps, never kube-system or the Dapr control plane itself.
    assert injector["objectSelector"] == {"matchLabels": {"todo.dev/dapr": "true"}}
    assert injector["namespaceSelector"] == {"matchLabels": {"todo.dev/dapr-apps": "true"}}
    run = plan("prod")
    apps_namespace = one(run, "namespaces-apps").raw_inputs["metadata"]
    assert apps_namespace["labels"]["todo.dev/dapr-apps"] == "true"
    for app in ("backend", "notification", "recurring"):
        template = one(run, f"{app}-deployment").raw_inputs["spec"]["template"]["metadata"]
        assert template["labels"]["todo.dev/dapr"] == "true", app
        assert template["annotations"]["dapr.io/enabled"] == "true", app


def test_only_recurring_may_invoke_the_backend() -> None:
    configs = {
        r.raw_inputs["metadata"]["name"]: r.raw_inputs["spec"]
        for r in by_type(plan("prod"), "kubernetes:dapr.io/v1alpha1:Configuration")
    }
    backend = configs["backend-config"]["accessControl"]
    assert backend["defaultAction"] == "deny"
    assert [p["appId"] for p in backend["policies"]] == ["recurring"]
    assert backend["policies"][0]["operations"] == [
        {"name": "/internal/v1/tasks/**", "httpVerb": ["POST"], "action": "allow"}
    ]
    assert configs["worker-config"]["accessControl"]["policies"] == []
    assert configs["backend-config"]["metrics"] == {"enabled": True}
    assert configs["backend-config"]["tracing"]["samplingRate"] == "0.05"


def test_resiliency_bounds_retries() -> None:
    resiliency = by_type(plan("prod"), "kubernetes:dapr.io/v1alpha1:Resiliency")[0].raw_inputs
    retries = resiliency["spec"]["policies"]["retries"]
    assert all(policy["maxRetries"] > 0 for policy in retries.values())
    assert resiliency["spec"]["targets"]["components"]["pubsub"]["outbound"]["circuitBreaker"]
    assert resiliency["spec"]["targets"]["apps"]["backend"]["circuitBreaker"] == "backend"


def test_sidecars_read_only_the_referenced_secrets() -> None:
    run = plan("prod")
    (role,) = by_type(run, "kubernetes:rbac.authorization.k8s.io/v1:Role")
    rule = role.raw_inputs["rules"][0]
    assert rule["verbs"] == ["get"] and rule["resources"] == ["secrets"]
    kafka = one(run, "kafka-credentials").raw_inputs["metadata"]
    database = one(run, "database-url").raw_inputs["metadata"]
    assert sorted(rule["resourceNames"]) == sorted(
        [kafka.get("name", "kafka-credentials"), database.get("name", "database-url")]
    )
    (binding,) = by_type(run, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert [s["name"] for s in binding.raw_inputs["subjects"]] == [
        "backend",
        "notification",
        "recurring",
    ]


def test_ephemeral_stack_has_no_control_plane_of_its_own() -> None:
    run = plan(EPHEMERAL)
    assert not [r for r in run.resources.values() if r.type == "kubernetes:helm.sh/v3:Release"]
    assert len(by_type(run, COMPONENT)) == 4
