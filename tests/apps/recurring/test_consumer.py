"""task.completed.v1 → one next-occurrence request to the backend, through Dapr invocation."""

from __future__ import annotations

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
