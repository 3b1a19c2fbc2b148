"""The stand-in delivers what the SDK publishes the way daprd does."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dapr.clients import DaprClient

from apps.local.standin import MeshThread, Sidecar
from apps.local.standin.delivery import Outcome
from tests.apps.local.probe_app import ProbeApp, Received, wait_until

SUBSCRIPTIONS: list[dict[str, Any]] = [
    {
        "pubsubname": "pubsub",
        "topic": "orders",
        "routes": {
            "rules": [{"match": 'event.type == "order.placed.v1"', "path": "/placed"}],
            "default": "/other",
        },
        "deadLetterTopic": "orders-dlq",
    }
]


def publish(
    event_id: str, event_type: str = "order.placed.v1", key: str = "k1", **data: Any
) -> None:
    with DaprClient() as client:
        client.publish_event(
            "pubsub",
            "orders",
            json.dumps({"id": event_id, **data}),
            data_content_type="application/json",
            publish_metadata={
                "cloudevent.id": event_id,
                "cloudevent.type": event_type,
                "partitionKey": key,
            },
        )


def test_cloudevent_reaches_the_rule_route_with_app_token(
    attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    probe = ProbeApp(subscriptions=SUBSCRIPTIONS)
    sidecar = attach(probe, app_token="app-secret")
    sdk_env(sidecar)

    publish("e-1", amount=3)
    publish("e-2", event_type="order.cancelled.v1")

    wait_until(lambda: probe.calls("/placed") and probe.calls("/other"))
    (placed,) = probe.calls("/placed")
    assert placed.headers["content-type"] == "application/cloudevents+json"
    assert placed.headers["dapr-api-token"] == "app-secret"
    event = placed.json()
    assert event["id"] == "e-1"
    assert event["type"] == "order.placed.v1"
    assert event["data"] == {"id": "e-1", "amount": 3}
    assert event["datacontenttype"] == "application/json"
    assert (event["topic"], event["pubsubname"], event["source"]) == ("orders", "pubsub", "probe")
    assert placed.headers["traceparent"] == event["traceparent"]
    assert [e["id"] for e in probe.events("/other")] == ["e-2"]


def _answering(status: int, body: Any) -> Callable[[Received], tuple[int, Any]]:
    def answer(received: Received) -> tuple[int, Any]:
        if received.path == "/placed":
            return status, body
        return 200, {"status": "SUCCESS"}

    return answer


def test_retry_status_is_retried_under_the_policy_then_dead_lettered(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    probe = ProbeApp(subscriptions=SUBSCRIPTIONS, answer=_answering(200, {"status": "RETRY"}))
    sdk_env(attach(probe))

    publish("e-retry")

    wait_until(lambda: standin.mesh.messages("orders-dlq"), what="dead letter")
    assert len(probe.calls("/placed")) == 4  # one attempt + maxRetries 3
    (dead,) = standin.mesh.events("orders-dlq")
    assert (dead["id"], dead["type"]) == ("e-retry", "order.placed.v1")


def test_server_errors_are_retried_like_retry(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    probe = ProbeApp(subscriptions=SUBSCRIPTIONS, answer=_answering(503, None))
    sdk_env(attach(probe))

    publish("e-503")

    wait_until(lambda: standin.mesh.messages("orders-dlq"), what="dead letter")
    assert len(probe.calls("/placed")) == 4


def test_drop_goes_to_the_dead_letter_topic_without_retries(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    probe = ProbeApp(subscriptions=SUBSCRIPTIONS, answer=_answering(200, {"status": "DROP"}))
    sdk_env(attach(probe))

    publish("e-drop")

    wait_until(lambda: standin.mesh.messages("orders-dlq"), what="dead letter")
    assert len(probe.calls("/placed")) == 1
    assert standin.mesh.events("orders-dlq")[0]["id"] == "e-drop"


def test_404_drops_without_dead_letter(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    probe = ProbeApp(subscriptions=SUBSCRIPTIONS, answer=_answering(404, None))
    sdk_env(attach(probe))

    publish("e-404")
    publish("e-after", event_type="order.cancelled.v1")  # same key: waits behind e-404

    wait_until(lambda: probe.calls("/other"), what="the next event")
    assert len(probe.calls("/placed")) == 1
    assert standin.mesh.messages("orders-dlq") == []
    outcomes = [e.outcome for e in standin.mesh.journal if e.event_id == "e-404"]
    assert outcomes == [Outcome.NOT_FOUND]


def test_without_dead_letter_topic_the_component_keeps_retrying(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    subscriptions = [{**SUBSCRIPTIONS[0], "deadLetterTopic": None}]
    failures = {"left": 9}

    def answer(received: Received) -> tuple[int, Any]:
        if failures["left"] > 0:
            failures["left"] -= 1
            return 500, None
        return 200, {"status": "SUCCESS"}

    probe = ProbeApp(subscriptions=subscriptions, answer=answer)
    sdk_env(attach(probe))

    publish("e-stubborn")

    # Two rounds of (1 + 3 retries) fail, the component redelivers, the tenth attempt works.
    wait_until(lambda: len(probe.calls("/placed")) == 10, what="tenth attempt")
    wait_until(lambda: standin.mesh.lag("probe", "orders") == 0, what="commit")
    assert standin.mesh.messages("orders-dlq") == []


def test_unmatched_events_are_dead_lettered_when_no_default_route(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    routes = {"rules": [{"match": 'event.type == "order.placed.v1"', "path": "/placed"}]}
    probe = ProbeApp(subscriptions=[{**SUBSCRIPTIONS[0], "routes": routes}])
    sdk_env(attach(probe))

    publish("e-unrouted", event_type="order.unknown.v1")

    wait_until(lambda: standin.mesh.messages("orders-dlq"), what="dead letter")
    assert probe.received == [] or all(r.path == "/dapr/subscribe" for r in probe.received)


def test_order_is_kept_per_key_and_an_event_goes_to_one_instance_of_an_app(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    standin.mesh.faults.reorder_jitter = 0.01
    first, second, other_app = (ProbeApp(subscriptions=SUBSCRIPTIONS) for _ in range(3))
    sidecar = attach(first, app_id="shop")
    attach(second, app_id="shop")
    attach(other_app, app_id="audit")
    sdk_env(sidecar)

    keys = [f"key-{n}" for n in range(8)]
    with DaprClient() as client:
        for seq in range(10):
            for key in keys:
                client.publish_event(
                    "pubsub",
                    "orders",
                    json.dumps({"key": key, "seq": seq}),
                    data_content_type="application/json",
                    publish_metadata={
                        "cloudevent.id": f"{key}-{seq}",
                        "cloudevent.type": "order.placed.v1",
                        "partitionKey": key,
                    },
                )

    wait_until(lambda: len(first.calls("/placed")) + len(second.calls("/placed")) == 80)
    wait_until(lambda: len(other_app.calls("/placed")) == 80)
    shop = [e["data"] for e in first.events("/placed")] + [
        e["data"] for e in second.events("/placed")
    ]
    assert len({(d["key"], d["seq"]) for d in shop}) == 80  # once each, across both instances
    assert first.calls("/placed") and second.calls("/placed")  # the partitions are shared
    for instance in (first, second, other_app):
        seen: dict[str, list[int]] = {}
        for data in (e["data"] for e in instance.events("/placed")):
            seen.setdefault(data["key"], []).append(data["seq"])
        assert all(seqs == sorted(seqs) for seqs in seen.values())
    arrival = [e["data"]["key"] for e in other_app.events("/placed")]
    assert arrival != [key for _ in range(10) for key in keys]  # keys interleave differently
