"""task.completed.v1 → one next-occurrence request to the backend, through Dapr invocation."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from apps.local.standin import MeshThread
from tests.apps.local.probe_app import ProbeApp, Received
from tests.apps.recurring.conftest import PLATFORM, completed_task, completion_event

NEXT = "/next-occurrence"


def _deliver(http: TestClient, body: bytes, route: str = "/events/task-completed") -> str:
    answer = http.post(
        route, content=body, headers={"content-type": "application/cloudevents+json", **PLATFORM}
    )
    assert answer.status_code == 200, answer.text
    status: str = answer.json()["status"]
    return status


def _consumed(outcome: str) -> float:
    labels = {
        "service": "recurring",
        "topic": "task-events",
        "type": "task.completed.v1",
        "outcome": outcome,
    }
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


def _asks(backend: ProbeApp) -> list[Received]:
    return [r for r in backend.received if r.path.endswith(NEXT)]


def test_a_completion_asks_the_backend_for_the_next_occurrence(
    client: tuple[TestClient, MeshThread], backend: ProbeApp
) -> None:
    http, _ = client
    task = completed_task()
    event_id, body = completion_event(task)
    answers = iter([201, 200, 200])  # what the backend answers a repeated completion
    backend.answer = lambda received: (next(answers), {"id": "successor"})
    successes, duplicates = _consumed("success"), _consumed("duplicate")

    statuses = [_deliver(http, body) for _ in range(3)]

    assert statuses == ["SUCCESS"] * 3
    asks = _asks(backend)
    assert len(asks) == 3 and len({a.body for a in asks}) == 1  # the same request each time
    ask = asks[0]
    assert ask.path == f"/internal/v1/tasks/{task['id']}/next-occurrence"
    assert ask.headers["dapr-api-token"] == "backend-token"
    assert ask.headers["dapr-caller-app-id"] == "recurring"
    assert ask.json() == {
        "user_id": "alice",
        "due_at": "2030-03-11T08:00:00+00:00",
        "rrule": "FREQ=WEEKLY;COUNT=2",
        "completion_event_id": event_id,
    }
    assert (_consumed("success"), _consumed("duplicate")) == (successes + 1, duplicates + 2)


def test_tasks_without_a_next_occurrence_ask_nothing(
    client: tuple[TestClient, MeshThread], backend: ProbeApp
) -> None:
    http, _ = client
    one_off = completed_task(recurrence=None)
    last = completed_task(recurrence={"rrule": "FREQ=DAILY;COUNT=1", "anchor": "due"})
    ended = completed_task(
        recurrence={"rrule": "FREQ=DAILY;UNTIL=20300304T090000Z", "anchor": "due"}
    )
    for task in (one_off, last, ended):
        assert _deliver(http, completion_event(task)[1]) == "SUCCESS"
    assert _asks(backend) == []


def test_other_task_events_are_acknowledged_on_the_default_route(
    client: tuple[TestClient, MeshThread], backend: ProbeApp
) -> None:
    http, _ = client
    assert _deliver(http, b"{}", route="/events/task-events") == "SUCCESS"
    assert _asks(backend) == []


def test_backend_trouble_is_retried_and_refusals_are_dead_lettered(
    client: tuple[TestClient, MeshThread], backend: ProbeApp
) -> None:
    http, _ = client
    answers = {"status": 503}

    def answer(received: Received) -> tuple[int, Any]:
        return answers["status"], {"detail": [{"loc": ["body"], "msg": "x", "type": "y"}]}

    backend.answer = answer
    _, body = completion_event(completed_task())
    assert _deliver(http, body) == "RETRY"
    answers["status"] = 422
    assert _deliver(http, body) == "DROP"
    answers["status"] = 409  # reopened meanwhile: nothing to create, and done with
    assert _deliver(http, body) == "SUCCESS"
    assert len(_asks(backend)) == 3


def test_an_absent_sidecar_means_retry(client: tuple[TestClient, MeshThread]) -> None:
    http, standin = client
    own = next(s for s in standin.mesh.sidecars.values() if s.app_id == "recurring")
    standin.call(standin.mesh.take_down, own)
    assert _deliver(http, completion_event(completed_task())[1]) == "RETRY"


def test_rules_that_cannot_continue_are_dead_lettered(
    client: tuple[TestClient, MeshThread], backend: ProbeApp
) -> None:
    http, _ = client
    never = completed_task(
        recurrence={"rrule": "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "anchor": "due"}
    )
    broken = completed_task(recurrence={"rrule": "FREQ=WEEKLY;BYDAY=XX", "anchor": "due"})
    assert _deliver(http, completion_event(never)[1]) == "DROP"
    assert _deliver(http, completion_event(broken)[1]) == "DROP"
    assert _asks(backend) == []


def _bulk(*events: bytes) -> bytes:
    """A bulk delivery as daprd posts it (dapr/dapr pkg/runtime/pubsub/bulksubscribe_events.go)."""
    return json.dumps(
        {
            "id": "bulk-1",
            "type": "com.dapr.event.sent.bulk",
            "topic": "task-events",
            "pubsubname": "pubsub",
            "metadata": {},
            "entries": [
                {
                    "entryId": f"entry-{n}",
                    "event": json.loads(event),
                    "metadata": {},
                    "contentType": "application/cloudevents+json",
                }
                for n, event in enumerate(events)
            ],
        }
    ).encode()


def _deliver_bulk(http: TestClient, body: bytes, route: str = "/events/task-completed") -> Any:
    answer = http.post(
        route, content=body, headers={"content-type": "application/json", **PLATFORM}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_bulk_delivery_gets_a_status_per_entry(
    client: tuple[TestClient, MeshThread], backend: ProbeApp
) -> None:
    """The batch's completions go to the backend in one call, each with its own trace;
    a poison entry among good ones alone is dropped; a completion delivered twice in the
    batch is one effect (the backend answers 200 for the second); backend trouble for
    one item retries only that entry."""
    http, _ = client
    first, second, troubled = completed_task(), completed_task(), completed_task()
    poison = completed_task(recurrence={"rrule": "FREQ=WEEKLY;BYDAY=XX", "anchor": "due"})
    seen: set[str] = set()

    def answer(received: Received) -> tuple[int, Any]:
        results = []
        for item in received.json()["items"]:
            if item["task_id"] == troubled["id"]:
                results.append({"status": 503, "error": None})
                continue
            created = item["task_id"] not in seen
            seen.add(item["task_id"])
            results.append({"status": 201 if created else 200, "error": None})
        return 200, {"results": results}

    backend.answer = answer
    duplicates = _consumed("duplicate")
    events = [completion_event(task)[1] for task in (first, poison, second, troubled)]
    body = _bulk(*events, events[0])

    answered = _deliver_bulk(http, body)

    assert answered == {
        "statuses": [
            {"entryId": "entry-0", "status": "SUCCESS"},
            {"entryId": "entry-1", "status": "DROP"},
            {"entryId": "entry-2", "status": "SUCCESS"},
            {"entryId": "entry-3", "status": "RETRY"},
            {"entryId": "entry-4", "status": "SUCCESS"},
        ]
    }
    (call,) = [r for r in backend.received if r.path.endswith("/next-occurrences")]
    assert call.headers["dapr-caller-app-id"] == "recurring"
    items = call.json()["items"]
    assert [i["task_id"] for i in items] == [t["id"] for t in (first, second, troubled, first)]
    assert items[0]["rrule"] == "FREQ=WEEKLY;COUNT=2"
    assert _asks(backend) == []  # no single-route calls
    assert _consumed("duplicate") == duplicates + 1


def test_a_batch_the_backend_refuses_whole_goes_item_by_item(
    client: tuple[TestClient, MeshThread], backend: ProbeApp
) -> None:
    http, _ = client
    tasks = [completed_task(), completed_task()]

    def answer(received: Received) -> tuple[int, Any]:
        if received.path.endswith("/next-occurrences"):
            return 422, {"detail": [{"loc": ["body"], "msg": "x", "type": "y"}]}
        return (422 if tasks[1]["id"] in received.path else 201), {"id": "successor"}

    backend.answer = answer
    answered = _deliver_bulk(http, _bulk(*(completion_event(t)[1] for t in tasks)))

    assert [s["status"] for s in answered["statuses"]] == ["SUCCESS", "DROP"]
    assert len(_asks(backend)) == 2


def test_a_lone_completion_in_a_bulk_delivery_takes_the_single_route(
    client: tuple[TestClient, MeshThread], backend: ProbeApp
) -> None:
    http, _ = client
    backend.answer = lambda received: (201, {"id": "successor"})
    answered = _deliver_bulk(http, _bulk(completion_event(completed_task())[1]))
    assert answered["statuses"][0]["status"] == "SUCCESS"
    assert len(_asks(backend)) == 1


def test_other_task_events_in_bulk_are_all_acknowledged(
    client: tuple[TestClient, MeshThread], backend: ProbeApp
) -> None:
    http, _ = client
    body = _bulk(b"{}", b'{"id": "x"}')
    assert _deliver_bulk(http, body, route="/events/task-events") == {
        "statuses": [
            {"entryId": "entry-0", "status": "SUCCESS"},
            {"entryId": "entry-1", "status": "SUCCESS"},
        ]
    }
    assert _asks(backend) == []
