"""The task API end to end on a real database: behaviour, ownership and the events written."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

Query = Callable[..., list[tuple[Any, ...]]]
Headers = dict[str, str]


def create(client: TestClient, headers: Headers, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/tasks", json={"title": "task", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def events(db: Query) -> list[tuple[str, str, dict[str, Any]]]:
    rows = db("SELECT event_type, partition_key, payload FROM outbox ORDER BY id")
    return [(row[0], row[1], row[2]) for row in rows]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_create_returns_the_task_and_writes_its_event(
    client: TestClient, alice: Headers, db: Query
) -> None:
    response = client.post(
        "/api/v1/tasks",
        json={
            "title": "  Water the plants ",
            "description": "the ones on the balcony",
            "priority": "high",
            "tags": ["Home", "home", "garden"],
            "due_at": "2026-07-01T18:00:00+02:00",
            "timezone": "Europe/Berlin",
            "reminders": [{"before_minutes": 60}],
        },
        headers=alice,
    )
    assert response.status_code == 201
    task = response.json()
    assert response.headers["location"] == f"/api/v1/tasks/{task['id']}"
    assert task["title"] == "Water the plants"
    assert task["tags"] == ["garden", "home"]
    assert task["due_at"] == "2026-07-01T16:00:00Z"
    assert task["reminders"][0]["remind_at"] == "2026-07-01T15:00:00Z"
    assert task["completed"] is False and task["series_id"] is None
    [(event_type, key, envelope)] = events(db)
    assert (event_type, key) == ("task.created.v1", task["id"])
    assert envelope["data"] == {**task, "user_id": "alice"}
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=alice).json() == task


def test_other_users_tasks_answer_404(
    client: TestClient, alice: Headers, bob: Headers, db: Query
) -> None:
    task = create(client, alice)
    path = f"/api/v1/tasks/{task['id']}"
    for method, url in [
        ("GET", path),
        ("PATCH", path),
        ("DELETE", path),
        ("POST", f"{path}/complete"),
        ("POST", f"{path}/reopen"),
    ]:
        response = client.request(method, url, json={"title": "mine"}, headers=bob)
        assert response.status_code == 404, (method, url)
        assert response.json()["detail"][0]["loc"] == ["path", "task_id"]
    assert client.get("/api/v1/tasks", headers=bob).json() == {"items": [], "total": 0}
    assert client.get(path, headers=alice).json()["title"] == "task"
    assert len(events(db)) == 1


def test_unknown_id_answers_404(client: TestClient, alice: Headers) -> None:
    response = client.get(f"/api/v1/tasks/{uuid.uuid4()}", headers=alice)
    assert response.status_code == 404
    assert response.json()["detail"][0]["msg"] == "task not found"


def test_complete_and_reopen_are_idempotent(client: TestClient, alice: Headers, db: Query) -> None:
    task = create(client, alice)
    path = f"/api/v1/tasks/{task['id']}"
    first = client.post(f"{path}/complete", headers=alice).json()
    again = client.post(f"{path}/complete", headers=alice).json()
    assert first["completed"] is True and first["completed_at"] is not None
    assert again == first
    reopened = client.post(f"{path}/reopen", headers=alice).json()
    assert client.post(f"{path}/reopen", headers=alice).json() == reopened
    assert reopened["completed"] is False and reopened["completed_at"] is None
    assert [event[0] for event in events(db)] == [
        "task.created.v1",
        "task.completed.v1",
        "task.reopened.v1",
    ]
    assert events(db)[1][2]["data"]["completed_at"] == first["completed_at"]


def test_update_changes_only_what_was_sent(client: TestClient, alice: Headers, db: Query) -> None:
    task = create(client, alice, description="keep me", tags=["a"], priority="low")
    path = f"/api/v1/tasks/{task['id']}"
    updated = client.patch(path, json={"title": "renamed", "tags": ["B", "c"]}, headers=alice)
    assert updated.status_code == 200
    body = updated.json()
    assert body["title"] == "renamed" and body["tags"] == ["b", "c"]
    assert body["description"] == "keep me" and body["priority"] == "low"
    assert body["updated_at"] > task["updated_at"]
    assert db("SELECT name FROM tags ORDER BY name") == [("b",), ("c",)]
    assert [event[0] for event in events(db)] == ["task.created.v1", "task.updated.v1"]
    assert events(db)[1][2]["data"]["title"] == "renamed"


def test_update_without_change_writes_no_event(
    client: TestClient, alice: Headers, db: Query
) -> None:
    task = create(client, alice, title="same", tags=["x"])
    path = f"/api/v1/tasks/{task['id']}"
    response = client.patch(path, json={"title": "same", "tags": ["X"]}, headers=alice)
    assert response.json() == task
    assert len(events(db)) == 1


def test_delete_removes_task_tags_reminders_and_writes_event(
    client: TestClient, alice: Headers, db: Query
) -> None:
    due = iso(datetime.now(UTC) + timedelta(days=1))
    task = create(client, alice, tags=["a"], due_at=due, reminders=[{"before_minutes": 5}])
    response = client.delete(f"/api/v1/tasks/{task['id']}", headers=alice)
    assert response.status_code == 204 and response.content == b""
    assert db(
        "SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM tags), "
        "(SELECT count(*) FROM reminders)"
    ) == [(0, 0, 0)]
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=alice).status_code == 404
    event_type, _, envelope = events(db)[-1]
    assert event_type == "task.deleted.v1" and envelope["data"]["id"] == task["id"]
    assert client.delete(f"/api/v1/tasks/{task['id']}", headers=alice).status_code == 404


def test_reminder_times_follow_due_at_and_completion(
    client: TestClient, alice: Headers, db: Query
) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    fixed = due - timedelta(days=1)
    task = create(
        client,
        alice,
        due_at=iso(due),
        reminders=[{"before_minutes": 30}, {"at": iso(fixed)}],
    )
    path = f"/api/v1/tasks/{task['id']}"

    def fire_times() -> list[datetime | None]:
        return [row[0] for row in db("SELECT remind_at FROM reminders ORDER BY at NULLS FIRST")]

    assert fire_times() == [due - timedelta(minutes=30), fixed]
    later = due + timedelta(hours=3)
    moved = client.patch(path, json={"due_at": iso(later)}, headers=alice).json()
    assert fire_times() == [later - timedelta(minutes=30), fixed]
    assert [r["remind_at"] for r in moved["reminders"]] == [
        iso(fixed),
        iso(later - timedelta(minutes=30)),
    ]
    completed = client.post(f"{path}/complete", headers=alice).json()
    assert fire_times() == [None, None]
    assert all(r["remind_at"] is None for r in completed["reminders"])
    client.post(f"{path}/reopen", headers=alice)
    assert fire_times() == [later - timedelta(minutes=30), fixed]


def test_reopen_leaves_passed_reminders_disarmed(
    client: TestClient, alice: Headers, db: Query
) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    task = create(client, alice, reminders=[{"at": iso(past)}])
    path = f"/api/v1/tasks/{task['id']}"
    client.post(f"{path}/complete", headers=alice)
    reopened = client.post(f"{path}/reopen", headers=alice).json()
    assert reopened["reminders"][0]["remind_at"] is None
    assert db("SELECT remind_at FROM reminders") == [(None,)]


def test_recurring_task_starts_a_series(client: TestClient, alice: Headers) -> None:
    task = create(
        client,
        alice,
        due_at="2026-03-02T09:00:00Z",
        recurrence={"rrule": "RRULE:FREQ=WEEKLY;BYDAY=MO", "anchor": "completion"},
    )
    assert task["series_id"] == task["id"]
    assert task["recurrence"] == {"rrule": "FREQ=WEEKLY;BYDAY=MO", "anchor": "completion"}
    plain = create(client, alice, due_at="2026-03-02T09:00:00Z")
    made_recurring = client.patch(
        f"/api/v1/tasks/{plain['id']}", json={"recurrence": {"rrule": "FREQ=DAILY"}}, headers=alice
    ).json()
    assert made_recurring["series_id"] == plain["id"]
    assert made_recurring["recurrence"] == {"rrule": "FREQ=DAILY", "anchor": "due"}
    ended = client.patch(
        f"/api/v1/tasks/{plain['id']}", json={"recurrence": None}, headers=alice
    ).json()
    assert ended["recurrence"] is None


def test_tags_with_counts(client: TestClient, alice: Headers, bob: Headers) -> None:
    create(client, alice, tags=["work", "urgent"])
    create(client, alice, tags=["work"])
    create(client, bob, tags=["work", "private"])
    response = client.get("/api/v1/tags", headers=alice)
    assert response.json() == {
        "items": [{"name": "urgent", "count": 1}, {"name": "work", "count": 2}]
    }
