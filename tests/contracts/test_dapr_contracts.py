"""What the apps subscribe to works in the infrastructure the program builds.

Both sides read `apps.contracts`; these tests check behaviour, not copies. The apps serve
the contract's subscriptions on `GET /dapr/subscribe` (the one source daprd reads: the
program declares no `Subscription` resources); what they subscribe to exists (the pub/sub
component, scoped to the subscriber, each topic and dead-letter topic as a KafkaTopic);
every declared route exists (a 404 makes Dapr drop the event without dead-lettering it)
and demands the app token.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from apps.contracts.events import SUBSCRIPTIONS
from apps.local.standin.routing import Subscription, parse_subscriptions
from apps.notification.main import create_app as notification_app
from apps.notification.settings import NotificationServiceSettings
from apps.recurring.main import create_app as recurring_app
from apps.recurring.settings import RecurringSettings

JWT = "contract-test-secret-long-enough-for-hs256!!"
TOKEN = "contract-app-token"
SUBSCRIPTION = "kubernetes:dapr.io/v2alpha1:Subscription"
COMPONENT = "kubernetes:dapr.io/v1alpha1:Component"
CONFIGURATION = "kubernetes:dapr.io/v1alpha1:Configuration"
RESILIENCY = "kubernetes:dapr.io/v1alpha1:Resiliency"
KAFKA_TOPIC = "kubernetes:kafka.strimzi.io/v1:KafkaTopic"


@pytest.fixture
def apps(database_url: str) -> Iterator[dict[str, TestClient]]:
    common: dict[str, Any] = {
        "database_url": database_url,
        "auth_jwt_secret": JWT,
        "app_api_token": TOKEN,
        "log_level": "WARNING",
        "db_pool_size": 2,
    }
    with (
        TestClient(recurring_app(RecurringSettings(**common))) as recurring,
        TestClient(notification_app(NotificationServiceSettings(**common))) as notification,
    ):
        yield {"recurring": recurring, "notification": notification}


def _canonical(subscriptions: list[Subscription]) -> set[tuple[Any, ...]]:
    return {
        (
            s.pubsub_name,
            s.topic,
            tuple((rule.match, rule.path) for rule in s.rules),
            s.dead_letter_topic,
        )
        for s in subscriptions
    }


def _declared_by_apps(apps: dict[str, TestClient]) -> dict[str, set[tuple[Any, ...]]]:
    return {
        app_id: _canonical(parse_subscriptions(client.get("/dapr/subscribe").json()))
        for app_id, client in apps.items()
    }


def _plan(stack: str = "minikube") -> Any:
    pytest.importorskip("pulumi", reason="the infra dependency group is not installed")
    from tests.infra.components.plans import plan

    return plan(stack)


def _resources(run: Any, type_: str) -> list[dict[str, Any]]:
    return [r.raw_inputs for r in run.resources.values() if r.type == type_]


@pytest.mark.parametrize("stack", ["minikube", "prod"])
def test_what_the_apps_subscribe_to_exists_in_the_infrastructure(
    apps: dict[str, TestClient], stack: str
) -> None:
    run = _plan(stack)
    assert _resources(run, SUBSCRIPTION) == []
    components = {c["metadata"]["name"]: c for c in _resources(run, COMPONENT)}
    topics = {t["metadata"]["name"] for t in _resources(run, KAFKA_TOPIC)}
    declared = _declared_by_apps(apps)
    assert declared  # both workers subscribe to something
    for app_id, subscriptions in declared.items():
        for pubsub, topic, _rules, dead_letter in subscriptions:
            component = components[pubsub]
            assert component["spec"]["type"].startswith("pubsub."), pubsub
            assert app_id in component["scopes"], (app_id, pubsub)
            assert {topic, dead_letter} <= topics, (app_id, topic, dead_letter)


def test_the_apps_serve_the_contract_subscriptions(apps: dict[str, TestClient]) -> None:
    for app_id, client in apps.items():
        served = client.get("/dapr/subscribe").json()
        assert served == [s.as_dapr() for s in SUBSCRIPTIONS if s.app_id == app_id], app_id


def test_every_declared_route_exists_and_demands_the_app_token(
    apps: dict[str, TestClient],
) -> None:
    for client in apps.values():
        for subscription in parse_subscriptions(client.get("/dapr/subscribe").json()):
            for rule in subscription.rules:
                anonymous = client.post(rule.path, content=b"{}")
                assert anonymous.status_code == 401, rule.path
                answer = client.post(rule.path, content=b"{}", headers={"dapr-api-token": TOKEN})
                assert answer.status_code == 200, rule.path
                assert answer.json()["status"] in {"SUCCESS", "DROP"}, rule.path


def test_pubsub_settings_the_apps_rely_on() -> None:
    run = _plan()
    pubsub = next(c for c in _resources(run, COMPONENT) if c["metadata"]["name"] == "pubsub")
    metadata = {m["name"]: m.get("value") for m in pubsub["spec"]["metadata"]}
    assert pubsub["spec"]["type"] == "pubsub.kafka"
    assert metadata["consumerGroup"] == "{appID}"  # one group per app id
    assert metadata["initialOffset"] == "oldest"  # nothing published before a deploy is lost
    scopes = dict(item.split("=") for item in metadata["publishingScopes"].split(";"))
    # The subscribers' sidecars publish dead letters on their behalf.
    assert "task-events-dlq" in scopes["recurring"] and "reminders-dlq" in scopes["notification"]
    assert set(scopes["backend"].split(",")) == {"task-events", "reminders"}
    (resiliency,) = _resources(run, RESILIENCY)
    inbound = resiliency["spec"]["targets"]["components"]["pubsub"]["inbound"]
    retry = resiliency["spec"]["policies"]["retries"][inbound["retry"]]
    # Without a bounded inbound retry a RETRY answer would go to the dead-letter topic
    # at once (no policy: one attempt), or be retried forever (maxRetries -1).
    assert 0 < int(retry["maxRetries"])


def test_the_served_subscriptions_are_valid_v2alpha1_subscriptions_with_bulk_limits(
    apps: dict[str, TestClient],
) -> None:
    """Each entry of `GET /dapr/subscribe` is the spec of a dapr.io/v2alpha1 Subscription
    (daprd's SubscriptionJSON: pubsubname, topic, routes, deadLetterTopic, metadata,
    bulkSubscribe), so it must pass the vendored CRD's schema; and every subscription
    asks for bulk delivery with limits the consumers are sized for."""
    pytest.importorskip("jsonschema", reason="the infra dependency group is not installed")
    from tests.infra.validation import validate_custom

    for app_id, client in apps.items():
        for entry in client.get("/dapr/subscribe").json():
            spec = dict(entry)
            if "route" in spec:  # the v1 form: daprd reads it as the default route
                spec["routes"] = {"default": spec.pop("route")}
            resource = {
                "apiVersion": "dapr.io/v2alpha1",
                "kind": "Subscription",
                "metadata": {"name": f"{app_id}-{entry['topic']}"},
                "spec": spec,
                "scopes": [app_id],
            }
            assert validate_custom(resource) == [], (app_id, entry)
            bulk = entry["bulkSubscribe"]
            assert bulk["enabled"] is True, (app_id, entry["topic"])
            # Below daprd's defaults (100 messages would be fine; 1 s of waiting is not
            # on a completion's path), and a batch stays far below a request body limit.
            assert 1 < bulk["maxMessagesCount"] <= 500, (app_id, bulk)
            assert 0 < bulk["maxAwaitDurationMs"] <= 250, (app_id, bulk)
