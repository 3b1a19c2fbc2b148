"""POST /internal/v1/tasks/{id}/next-occurrence: platform-only, one successor per completion."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.apps.backend.conftest import APP_TOKEN

PLATFORM = {"dapr-api-token": APP_TOKEN}


def _completed_weekly_task(client: TestClient, alice: dict[str, str], **extra: Any) -> Any:
    body = {
        "title": "Water the plants",
        "priority": "high",
        "tags": ["home"],
        "due_at": "2030-03-04T09:00:00+01:00",
        "timezone": "Europe/Berlin",
        "reminders": [{"before_minutes": 30}, {"at": "2030-03-04T07:00:00+00:00"}],
        "recurrence": {"rrule": "FREQ=WEEKLY;COUNT=4", "anchor": "due"},
        **extra,
    }
    task = client.post("/api/v1/tasks", json=body, headers=alice).json()
    client.post(f"/api/v1/tasks/{task['id']}/complete", headers=alice).raise_for_status()
    return task


def _ask(client: TestClient, task_id: str, **overrides: Any) -> Any:
    body = {
        "user_id": "alice",
        "due_at": "2030-03-11T08:00:00Z",
        "rrule": "FREQ=WEEKLY;COUNT=3",
        "completion_event_id": str(uuid.uuid4()),
        **overrides,
    }
    return client.post(f"/internal/v1/tasks/{task_id}/next-occurrence", json=body, headers=PLATFORM)


def test_creates_the_successor_then_returns_it_again(
    client: TestClient, alice: dict[str, str]
) -> None:
    task = _completed_weekly_task(client, alice)

    first = _ask(client, task["id"])
    again = _ask(client, task["id"], completion_event_id=str(uuid.uuid4()))

    assert first.status_code == 201 and again.status_code == 200
    successor = first.json()
    assert again.json()["id"] == successor["id"]
    assert successor["due_at"] == "2030-03-11T08:00:00Z"
    assert successor["recurrence"] == {"rrule": "FREQ=WEEKLY;COUNT=3", "anchor": "due"}
    assert successor["series_id"] == task["series_id"] == task["id"]
    assert (successor["title"], successor["priority"], successor["tags"]) == (
        "Water the plants",
        "high",
        ["home"],
    )
    assert not successor["completed"]
    reminders = {(r["before_minutes"], r["at"]) for r in successor["reminders"]}
    # The fixed reminder moved with the due time (one week on); the relative one stayed.
    assert reminders == {(30, None), (None, "2030-03-11T07:00:00Z")}
    listed = client.get("/api/v1/tasks", headers=alice).json()
    assert listed["total"] == 2


def test_concurrent_requests_create_exactly_one_successor(
    client: TestClient, alice: dict[str, str], db: Any
) -> None:
    task = _completed_weekly_task(client, alice)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: _ask(client, task["id"]), range(8)))

    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert db("SELECT count(*) FROM tasks WHERE previous_task_id = %s", task["id"]) == [(1,)]


def test_only_the_platform_may_ask(client: TestClient, alice: dict[str, str]) -> None:
    task = _completed_weekly_task(client, alice)
    url = f"/internal/v1/tasks/{task['id']}/next-occurrence"
    body = {
        "user_id": "alice",
        "due_at": "2030-03-11T08:00:00Z",
        "rrule": "FREQ=WEEKLY",
        "completion_event_id": str(uuid.uuid4()),
    }
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers=alice).status_code == 401
    wrong = client.post(url, json=body, headers={"dapr-api-token": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"][0]["loc"] == ["header", "dapr-api-token"]


def test_refusals_name_the_reason(client: TestClient, alice: dict[str, str]) -> None:
    open_task = client.post(
        "/api/v1/tasks",
        json={
            "title": "Not done",
            "due_at": "2030-01-01T10:00:00Z",
            "recurrence": {"rrule": "FREQ=DAILY"},
        },
        headers=alice,
    ).json()
    done = _completed_weekly_task(client, alice)

    not_completed = _ask(client, open_task["id"])
    someone_else = _ask(client, done["id"], user_id="bob")
    unknown = _ask(client, str(uuid.uuid4()))
    bad_rule = _ask(client, done["id"], rrule="FREQ=SECONDLY")
    naive = _ask(client, done["id"], due_at="2030-03-11T08:00:00")

    assert not_completed.status_code == 409
    assert not_completed.json()["detail"][0]["type"] == "task_not_completed"
    assert someone_else.status_code == unknown.status_code == 404
    assert bad_rule.status_code == 422
    assert bad_rule.json()["detail"][0]["loc"] == ["body", "rrule"]
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["loc"] == ["body", "due_at"]


def test_a_reopened_task_gets_no_successor(client: TestClient, alice: dict[str, str]) -> None:
    task = _completed_weekly_task(client, alice)
    client.post(f"/api/v1/tasks/{task['id']}/reopen", headers=alice).raise_for_status()
    assert _ask(client, task["id"]).status_code == 409


def test_the_completion_is_recorded_with_the_successor_and_never_redone(
    client: TestClient, alice: dict[str, str], db: Any
) -> None:
    task = _completed_weekly_task(client, alice)
    event_id = str(uuid.uuid4())
    created = _ask(client, task["id"], completion_event_id=event_id)
    assert created.status_code == 201
    assert db("SELECT consumer FROM processed_events WHERE event_id = %s", event_id) == [
        ("recurring",)
    ]

    client.delete(f"/api/v1/tasks/{created.json()['id']}", headers=alice).raise_for_status()
    redelivered = _ask(client, task["id"], completion_event_id=event_id)

    assert redelivered.status_code == 409
    assert redelivered.json()["detail"][0]["type"] == "completion_already_handled"
    assert client.get("/api/v1/tasks", headers=alice).json()["total"] == 1


def _delay_samples() -> tuple[float, float]:
    """(count, sum) of next_occurrence_delay_seconds in this process's registry."""
    count = REGISTRY.get_sample_value("next_occurrence_delay_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("next_occurrence_delay_seconds_sum") or 0.0
    return count, total


def test_each_successor_created_records_the_pipelines_delay_once(
    client: TestClient, alice: dict[str, str]
) -> None:
    """The pipeline-freshness SLI: completion → successor committed, once per successor
    (a repeated delivery that returns the existing one adds nothing)."""
    task = _completed_weekly_task(client, alice)
    completed_at = datetime.fromisoformat(
        client.get(f"/api/v1/tasks/{task['id']}", headers=alice).json()["completed_at"]
    )
    count, total = _delay_samples()
    before = datetime.now(UTC)
    assert _ask(client, task["id"]).status_code == 201
    after = datetime.now(UTC)
    assert _ask(client, task["id"], completion_event_id=str(uuid.uuid4())).status_code == 200
    new_count, new_total = _delay_samples()
    assert new_count == count + 1
    observed = new_total - total
    assert (before - completed_at).total_seconds() <= observed
    assert observed <= (after - completed_at).total_seconds()
    # Exposed on /metrics with the SLO's bucket boundary.
    metrics = client.get("/metrics").text
    assert 'next_occurrence_delay_seconds_bucket{le="5.0"}' in metrics


def _ask_many(client: TestClient, items: list[dict[str, Any]]) -> Any:
    defaults = {
        "user_id": "alice",
        "due_at": "2030-03-11T08:00:00Z",
        "rrule": "FREQ=WEEKLY;COUNT=3",
    }
    body = {"items": [{**defaults, **item} for item in items]}
    return client.post("/internal/v1/tasks/next-occurrences", json=body, headers=PLATFORM)


def test_a_batch_answers_each_completion_as_the_single_route_would(
    client: TestClient, alice: dict[str, str], db: Any
) -> None:
    """One call and one transaction: a completion twice in the batch gets one successor
    (201 then 200), a refused item rolls back alone, and the rest are committed."""
    first, second = (_completed_weekly_task(client, alice) for _ in range(2))
    open_task = client.post(
        "/api/v1/tasks",
        json={"title": "not done", "due_at": "2030-03-04T09:00:00Z"},
        headers=alice,
    ).json()
    event = str(uuid.uuid4())
    items = [
        {"task_id": first["id"], "completion_event_id": event},
        {"task_id": open_task["id"], "completion_event_id": str(uuid.uuid4())},
        {"task_id": str(uuid.uuid4()), "completion_event_id": str(uuid.uuid4())},
        {"task_id": second["id"], "completion_event_id": str(uuid.uuid4())},
        {"task_id": first["id"], "completion_event_id": event},
    ]

    answer = _ask_many(client, items)

    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [
        {"status": 201, "error": None},
        {"status": 409, "error": "task_not_completed"},
        {"status": 404, "error": "not_found"},
        {"status": 201, "error": None},
        {"status": 200, "error": None},
    ]
    for task in (first, second):
        assert db("SELECT count(*) FROM tasks WHERE previous_task_id = %s", task["id"]) == [(1,)]
    assert db("SELECT count(*) FROM tasks WHERE previous_task_id = %s", open_task["id"]) == [(0,)]
    again = _ask_many(client, items[:1])
    assert again.json()["results"] == [{"status": 200, "error": None}]


def test_a_batch_records_the_pipelines_delay_once_per_successor_it_creates(
    client: TestClient, alice: dict[str, str]
) -> None:
    first, second = (_completed_weekly_task(client, alice) for _ in range(2))
    event = str(uuid.uuid4())
    items = [
        {"task_id": first["id"], "completion_event_id": event},
        {"task_id": second["id"], "completion_event_id": str(uuid.uuid4())},
        {"task_id": first["id"], "completion_event_id": event},  # the same: no second
        {"task_id": str(uuid.uuid4()), "completion_event_id": str(uuid.uuid4())},  # 404
    ]
    count, _ = _delay_samples()
    statuses = [r["status"] for r in _ask_many(client, items).json()["results"]]
    assert statuses == [201, 201, 200, 404]
    assert _delay_samples()[0] == count + 2


def test_a_batch_is_for_the_platform_only_and_checked_whole(
    client: TestClient, alice: dict[str, str]
) -> None:
    task = _completed_weekly_task(client, alice)
    item = {"task_id": task["id"], "completion_event_id": str(uuid.uuid4())}
    body = {"items": [{"user_id": "alice", "due_at": "2030-03-11T08:00:00Z", "rrule": "x", **item}]}
    assert client.post("/internal/v1/tasks/next-occurrences", json=body).status_code == 401
    assert _ask_many(client, [{**item, "rrule": "not a rule"}]).status_code == 422
    assert _ask_many(client, []).status_code == 422


def test_concurrent_batches_and_single_calls_create_exactly_one_successor(
    client: TestClient, alice: dict[str, str], db: Any
) -> None:
    """Batches lock their tasks before they look for successors and handled completions,
    as the single route does: racing deliveries of the same completions, through either
    route, still come to one successor each."""
    first, second = (_completed_weekly_task(client, alice) for _ in range(2))
    events = {task["id"]: str(uuid.uuid4()) for task in (first, second)}
    batch = [{"task_id": tid, "completion_event_id": ev} for tid, ev in events.items()]

    def deliver(n: int) -> list[int]:
        if n % 3 == 2:
            answer = _ask(client, first["id"], completion_event_id=events[first["id"]])
            return [answer.status_code]
        ordered = batch if n % 2 else batch[::-1]
        return [r["status"] for r in _ask_many(client, ordered).json()["results"]]

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = [s for answer in pool.map(deliver, range(9)) for s in answer]

    assert sorted(statuses).count(201) == 2
    assert set(statuses) == {200, 201}
    for task in (first, second):
        assert db("SELECT count(*) FROM tasks WHERE previous_task_id = %s", task["id"]) == [(1,)]


def test_a_batch_item_for_someone_elses_task_is_not_found_and_changes_nothing(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], db: Any
) -> None:
    """The batch reads its tasks by id alone (one statement for all of them): an item
    naming a user other than the task's owner must still be a 404, as in the single
    route, and leave the task and the processed-event records as they were."""
    alices = _completed_weekly_task(client, alice)
    event = str(uuid.uuid4())
    items = [
        {"task_id": alices["id"], "user_id": "bob", "completion_event_id": event},
        {"task_id": alices["id"], "user_id": "alice", "completion_event_id": str(uuid.uuid4())},
    ]
    answer = _ask_many(client, items)
    assert answer.json()["results"] == [
        {"status": 404, "error": "not_found"},
        {"status": 201, "error": None},
    ]
    assert db("SELECT count(*) FROM processed_events WHERE event_id = %s", event) == [(0,)]
    assert client.get("/api/v1/tasks", headers=bob).json()["total"] == 0
    assert db("SELECT user_id FROM tasks WHERE previous_task_id = %s", alices["id"]) == [("alice",)]
