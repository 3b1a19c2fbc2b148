"""Bulk publish and bulk subscribe in the stand-in, with daprd's per-entry semantics."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from dapr.clients import BulkPublishEntry, DaprClient
from dapr.clients.exceptions import DaprGrpcError

from apps.local.standin import MeshThread, Sidecar
from apps.local.standin.delivery import BULK_EVENT_TYPE, Outcome
from tests.apps.local.probe_app import ProbeApp, Received, wait_until

BULK = {"enabled": True, "maxMessagesCount": 10, "maxAwaitDurationMs": 200}
SUBSCRIPTIONS: list[dict[str, Any]] = [
    {
        "pubsubname": "pubsub",
        "topic": "orders",
        "routes": {
            "rules": [{"match": 'event.type == "order.placed.v1"', "path": "/placed"}],
            "default": "/other",
        },
        "deadLetterTopic": "orders-dlq",
        "bulkSubscribe": BULK,
    }
]


def bulk_publish(events: list[tuple[str, str]], key: str = "k1") -> None:
    """`(event id, event type)` pairs in one bulk call, all on one key (one partition)."""
    with DaprClient() as client:
        client.publish_events(
            "pubsub",
            "orders",
            [
                BulkPublishEntry(
                    event=json.dumps({"id": event_id}),
                    metadata={
                        "cloudevent.id": event_id,
                        "cloudevent.type": event_type,
                        "partitionKey": key,
                    },
                    content_type="application/json",
                    entry_id=event_id,
                )
                for event_id, event_type in events
            ],
        )


def entries(received: Received) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = received.json()["entries"]
    return body


def ids(received: Received) -> list[str]:
    return [entry["event"]["id"] for entry in entries(received)]


def by_event(statuses: dict[str, str | None]) -> Callable[[Received], tuple[int, Any]]:
    """Answer each entry with the status named for its event id (SUCCESS otherwise);
    `None` leaves the entry without a status."""

    def answer(received: Received) -> tuple[int, Any]:
        if received.path == "/dapr/subscribe" or "entries" not in received.json():
            return 200, {"status": "SUCCESS"}
        answered = []
        for entry in entries(received):
            status = statuses.get(entry["event"]["id"], "SUCCESS")
            if status is not None:
                answered.append({"entryId": entry["entryId"], "status": status})
        return 200, {"statuses": answered}

    return answer


def test_bulk_published_events_arrive_in_one_bulk_request_per_route(
    attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    probe = ProbeApp(subscriptions=SUBSCRIPTIONS, answer=by_event({}))
    sdk_env(attach(probe, app_token="app-secret"))

    bulk_publish(
        [("e-1", "order.placed.v1"), ("e-2", "order.cancelled.v1"), ("e-3", "order.placed.v1")]
    )

    wait_until(lambda: probe.calls("/placed") and probe.calls("/other"))
    (placed,) = probe.calls("/placed")
    assert placed.headers["content-type"] == "application/json"
    assert placed.headers["dapr-api-token"] == "app-secret"
    body = placed.json()
    assert (body["type"], body["topic"], body["pubsubname"]) == (
        BULK_EVENT_TYPE,
        "orders",
        "pubsub",
    )
    assert ids(placed) == ["e-1", "e-3"]  # in offset order
    first = entries(placed)[0]
    assert first["contentType"] == "application/cloudevents+json"
    assert first["event"]["type"] == "order.placed.v1"
    assert first["event"]["data"] == {"id": "e-1"}
    assert len({entry["entryId"] for entry in entries(placed)}) == 2
    assert [ids(r) for r in probe.calls("/other")] == [["e-2"]]


def test_each_entry_is_settled_by_its_own_status(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    """SUCCESS is done, DROP goes alone to the dead-letter topic at once, and RETRY or a
    missing status is retried alone, then dead-lettered: the rest are not sent again."""
    probe = ProbeApp(
        subscriptions=SUBSCRIPTIONS,
        answer=by_event({"e-drop": "DROP", "e-retry": "RETRY", "e-silent": None}),
    )
    sdk_env(attach(probe))

    bulk_publish(
        [(name, "order.placed.v1") for name in ("e-ok", "e-drop", "e-retry", "e-silent", "e-ok2")]
    )

    wait_until(lambda: len(standin.mesh.messages("orders-dlq")) == 3, what="dead letters")
    wait_until(lambda: standin.mesh.lag("probe", "orders") == 0, what="commit")
    calls = probe.calls("/placed")
    assert ids(calls[0]) == ["e-ok", "e-drop", "e-retry", "e-silent", "e-ok2"]
    # One attempt and three retries (the fast policy), resending only what failed.
    assert [ids(call) for call in calls[1:]] == [["e-retry", "e-silent"]] * 3
    dead = [event["id"] for event in standin.mesh.events("orders-dlq")]
    assert dead == ["e-drop", "e-retry", "e-silent"]
    journal = [(e.event_id, e.outcome) for e in standin.mesh.journal if e.bulk]
    assert ("e-drop", Outcome.DROP) in journal
    assert ("e-ok", Outcome.SUCCESS) in journal


def test_an_answer_without_statuses_retries_every_entry(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    """`{"status": "SUCCESS"}`, a single delivery's answer, names no entry: daprd takes
    every entry as unanswered, so as RETRY."""
    probe = ProbeApp(subscriptions=SUBSCRIPTIONS)
    sdk_env(attach(probe))

    bulk_publish([("e-1", "order.placed.v1"), ("e-2", "order.placed.v1")])

    wait_until(lambda: len(standin.mesh.messages("orders-dlq")) == 2, what="dead letters")
    assert [ids(call) for call in probe.calls("/placed")] == [["e-1", "e-2"]] * 4


def test_a_404_drops_the_whole_request_without_dead_letters(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    def answer(received: Received) -> tuple[int, Any]:
        return (404, None) if received.path == "/placed" else (200, {"status": "SUCCESS"})

    probe = ProbeApp(subscriptions=SUBSCRIPTIONS, answer=answer)
    sdk_env(attach(probe))

    bulk_publish([("e-1", "order.placed.v1"), ("e-2", "order.placed.v1")])

    wait_until(lambda: standin.mesh.lag("probe", "orders") == 0, what="commit")
    assert len(probe.calls("/placed")) == 1
    assert standin.mesh.messages("orders-dlq") == []


def test_without_dead_letter_topic_the_batch_is_committed_up_to_its_first_failure(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    """As the Kafka component does: the entries before the failed one are committed, and
    it and everything after it are delivered again (an entry that had succeeded too)."""
    failures = {"left": 4}  # the first attempt and the policy's three retries

    def answer(received: Received) -> tuple[int, Any]:
        if received.path != "/placed":
            return 200, {"status": "SUCCESS"}
        statuses = []
        for entry in entries(received):
            status = "SUCCESS"
            if entry["event"]["id"] == "e-2" and failures["left"] > 0:
                failures["left"] -= 1
                status = "RETRY"
            statuses.append({"entryId": entry["entryId"], "status": status})
        return 200, {"statuses": statuses}

    probe = ProbeApp(subscriptions=[{**SUBSCRIPTIONS[0], "deadLetterTopic": None}], answer=answer)
    sdk_env(attach(probe))

    bulk_publish([(name, "order.placed.v1") for name in ("e-1", "e-2", "e-3")])

    wait_until(lambda: standin.mesh.lag("probe", "orders") == 0, what="commit")
    delivered = [ids(call) for call in probe.calls("/placed")]
    assert delivered[0] == ["e-1", "e-2", "e-3"]
    assert delivered[-1] == ["e-2", "e-3"]  # redelivered from the failed entry on
    assert all("e-1" not in batch for batch in delivered[1:])
    assert standin.mesh.messages("orders-dlq") == []


def test_faults_apply_in_bulk_mode(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    """Duplicates come again as bulk requests of their own; an absent sidecar commits
    nothing and delivers once it is back."""
    standin.mesh.faults.duplicate_rate = 1.0
    standin.mesh.faults.duplicate_delay = (0.0, 0.05)
    probe = ProbeApp(subscriptions=SUBSCRIPTIONS, answer=by_event({}))
    sidecar = attach(probe)
    sdk_env(sidecar)

    bulk_publish([("e-1", "order.placed.v1"), ("e-2", "order.placed.v1")])

    def duplicates() -> list[str]:
        return sorted(str(e.event_id) for e in standin.mesh.journal if e.duplicate and e.bulk)

    wait_until(lambda: len(duplicates()) == 2, what="duplicates")
    assert duplicates() == ["e-1", "e-2"]
    assert sum(len(ids(c)) for c in probe.calls("/placed")) == 4

    standin.mesh.faults.duplicate_rate = 0.0
    standin.call(lambda: standin.mesh.take_down(sidecar))
    other = ProbeApp(subscriptions=SUBSCRIPTIONS)
    publisher = attach(other, app_id="publisher")
    sdk_env(publisher)
    bulk_publish([("e-3", "order.placed.v1")])
    assert standin.mesh.lag("probe", "orders") == 1
    standin.call(lambda: standin.mesh.bring_up(sidecar))
    wait_until(lambda: any("e-3" in ids(c) for c in probe.calls("/placed")), what="after outage")


def test_http_bulk_publish_answers_like_daprd(
    standin: MeshThread, attach: Callable[..., Sidecar]
) -> None:
    sidecar = attach(ProbeApp(subscriptions=SUBSCRIPTIONS))
    url = f"http://127.0.0.1:{sidecar.http_port}/v1.0-alpha1/publish/bulk/pubsub/orders"
    entry = {"entryId": "a", "event": {"id": "x"}, "contentType": "application/json"}

    assert httpx.post(url, json=[entry, {**entry, "entryId": "b"}]).status_code == 204

    standin.mesh.faults.publish_failures = 1
    failed = httpx.post(url, json=[{**entry, "entryId": "c"}, {**entry, "entryId": "d"}])
    assert failed.status_code == 500
    body = failed.json()
    assert body["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
    assert [e["entryId"] for e in body["failedEntries"]] == ["c"]

    repeated = httpx.post(url, json=[entry, entry])
    assert repeated.status_code == 400
    assert len(standin.mesh.messages("orders")) == 3  # a, b, d


def test_grpc_bulk_publish_fails_the_call_when_an_entry_fails(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    """daprd answers a partly failed gRPC bulk publish with an error status and no
    failed entries: the caller must take every entry as not published."""
    sdk_env(attach(ProbeApp(subscriptions=SUBSCRIPTIONS)))
    standin.mesh.faults.publish_failures = 1
    with pytest.raises(DaprGrpcError):
        bulk_publish([("e-1", "order.placed.v1"), ("e-2", "order.placed.v1")])
    assert [e["id"] for e in standin.mesh.events("orders")] == ["e-2"]
