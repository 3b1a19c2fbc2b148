"""Bad input answers 4xx naming the field and the reason, and writes nothing (§5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

Query = Callable[..., list[tuple[Any, ...]]]
DUE = "2026-06-01T09:00:00+02:00"


def _nothing_written(db: Query) -> None:
    counts = db(
        "SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM tags), "
        "(SELECT count(*) FROM reminders), (SELECT count(*) FROM outbox)"
    )
    assert counts == [(0, 0, 0, 0)]


def _error_locs(response: Any) -> list[list[str | int]]:
    body = response.json()
    assert all(item["msg"] and item["type"] for item in body["detail"])
    return [item["loc"] for item in body["detail"]]


@pytest.mark.parametrize(
    ("body", "loc", "reason"),
    [
        ({"title": ""}, ["body", "title"], "at least 1 character"),
        ({"title": "   "}, ["body", "title"], "at least 1 character"),
        ({"title": "x" * 201}, ["body", "title"], "at most 200 characters"),
        ({"title": "t", "description": "d" * 4001}, ["body", "description"], "at most 4000"),
        ({"title": "t", "due_at": "2026-06-01T09:00:00"}, ["body", "due_at"], "timezone"),
        ({"title": "t", "timezone": "Mars/Olympus"}, ["body", "timezone"], "IANA time zone"),
        (
            {"title": "t", "due_at": DUE, "recurrence": {"rrule": "FREQ=SOMETIMES"}},
            ["body", "recurrence", "rrule"],
            "FREQ must be one of",
        ),
        (
            {"title": "t", "due_at": DUE, "recurrence": {"rrule": "FREQ=DAILY;BYHOUR=25"}},
            ["body", "recurrence", "rrule"],
            "not a valid RFC 5545 RRULE",
        ),
        (
            {"title": "t", "recurrence": {"rrule": "FREQ=DAILY"}},
            ["body", "recurrence"],
            "needs the task to have a due_at",
        ),
        (
            {"title": "t", "due_at": DUE, "recurrence": {"rrule": "FREQ=DAILY", "anchor": "x"}},
            ["body", "recurrence", "anchor"],
            "'due' or 'completion'",
        ),
        ({"title": "t", "priority": "critical"}, ["body", "priority"], "'low', 'medium'"),
        (
            {"title": "t", "tags": [f"tag{i}" for i in range(21)]},
            ["body", "tags"],
            "at most 20 items",
        ),
        ({"title": "t", "tags": ["x" * 33]}, ["body", "tags", 0], "at most 32 characters"),
        ({"title": "t", "tags": [""]}, ["body", "tags", 0], "at least 1 character"),
        ({"title": "t", "titel": "typo"}, ["body", "titel"], "Extra inputs are not permitted"),
        (
            {"title": "t", "reminders": [{"before_minutes": 10}]},
            ["body", "reminders"],
            "need the task to have a due_at",
        ),
        (
            {"title": "t", "due_at": DUE, "reminders": [{"before_minutes": 5, "at": DUE}]},
            ["body", "reminders", 0],
            "exactly one of before_minutes or at",
        ),
        (
            {"title": "t", "reminders": [{"at": "2026-06-01T08:00:00"}]},
            ["body", "reminders", 0, "at"],
            "timezone",
        ),
        ({"title": "nul\x00byte"}, ["body", "title"], "NUL"),
        ({"title": "t", "due_at": "0001-01-01T00:00:00+14:00"}, ["body", "due_at"], "years"),
        ({"title": 5}, ["body", "title"], "valid string"),
    ],
)
def test_bad_task_is_rejected_and_nothing_written(
    client: TestClient,
    alice: dict[str, str],
    db: Query,
    body: dict[str, Any],
    loc: list[str | int],
    reason: str,
) -> None:
    response = client.post("/api/v1/tasks", json=body, headers=alice)
    assert response.status_code == 422
    assert loc in _error_locs(response)
    assert any(reason in item["msg"] for item in response.json()["detail"])
    _nothing_written(db)


def test_malformed_json_is_rejected(client: TestClient, alice: dict[str, str], db: Query) -> None:
    response = client.post(
        "/api/v1/tasks",
        content=b'{"title": "unterminated',
        headers={**alice, "content-type": "application/json"},
    )
    assert response.status_code == 422
    [item] = response.json()["detail"]
    assert item["loc"][0] == "body" and item["type"] == "json_invalid"
    _nothing_written(db)


def test_body_that_is_not_an_object_is_rejected(
    client: TestClient, alice: dict[str, str], db: Query
) -> None:
    response = client.post("/api/v1/tasks", json=["title"], headers=alice)
    assert response.status_code == 422
    assert ["body"] in _error_locs(response)
    _nothing_written(db)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": "0"}, ["query", "limit"]),
        ({"limit": "201"}, ["query", "limit"]),
        ({"offset": "-1"}, ["query", "offset"]),
        ({"sort": "colour"}, ["query", "sort"]),
        ({"order": "sideways"}, ["query", "order"]),
        ({"status": "done"}, ["query", "status"]),
        ({"priority": "critical"}, ["query", "priority", 0]),
        ({"due_from": "2026-01-01T00:00:00"}, ["query", "due_from"]),
        ({"overdue": "perhaps"}, ["query", "overdue"]),
        ({"stauts": "open"}, ["query", "stauts"]),
        ({"q": "nul\x00"}, ["query", "q"]),
    ],
)
def test_bad_list_query_is_rejected(
    client: TestClient, alice: dict[str, str], params: dict[str, str], loc: list[str | int]
) -> None:
    response = client.get("/api/v1/tasks", params=params, headers=alice)
    assert response.status_code == 422
    assert loc in _error_locs(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/tasks/not-a-uuid"),
        ("PATCH", "/api/v1/tasks/12345"),
        ("DELETE", "/api/v1/tasks/xyz"),
        ("POST", "/api/v1/tasks/xyz/complete"),
        ("POST", "/api/v1/tasks/xyz/reopen"),
    ],
)
def test_malformed_id_is_rejected(
    client: TestClient, alice: dict[str, str], db: Query, method: str, path: str
) -> None:
    response = client.request(method, path, json={}, headers=alice)
    assert response.status_code == 422
    assert ["path", "task_id"] in _error_locs(response)
    _nothing_written(db)


def _create(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/tasks", json={"title": "base", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _snapshot(db: Query) -> list[tuple[Any, ...]]:
    return db(
        "SELECT t.title, t.due_at, t.rrule, t.updated_at, "
        "(SELECT count(*) FROM tags), (SELECT count(*) FROM reminders), "
        "(SELECT count(*) FROM outbox) FROM tasks t"
    )


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"title": None}, ["body", "title"]),
        ({"title": ""}, ["body", "title"]),
        ({"tags": None}, ["body", "tags"]),
        ({"priority": "critical"}, ["body", "priority"]),
        ({"completed": True}, ["body", "completed"]),
        ({"due_at": "2026-01-01T10:00:00"}, ["body", "due_at"]),
        ({"due_at": None}, ["body", "due_at"]),  # the task recurs and has reminders
        ({"recurrence": {"rrule": "FREQ=DAILY;INTERVAL=0"}}, ["body", "recurrence", "rrule"]),
    ],
)
def test_bad_update_is_rejected_and_task_unchanged(
    client: TestClient,
    alice: dict[str, str],
    db: Query,
    patch: dict[str, Any],
    loc: list[str | int],
) -> None:
    task = _create(
        client,
        alice,
        due_at=DUE,
        tags=["a"],
        reminders=[{"before_minutes": 15}],
        recurrence={"rrule": "FREQ=WEEKLY"},
    )
    before = _snapshot(db)
    response = client.patch(f"/api/v1/tasks/{task['id']}", json=patch, headers=alice)
    assert response.status_code == 422
    assert loc in _error_locs(response)
    assert _snapshot(db) == before


def test_recurrence_added_to_undated_task_names_recurrence(
    client: TestClient, alice: dict[str, str], db: Query
) -> None:
    task = _create(client, alice)
    before = _snapshot(db)
    response = client.patch(
        f"/api/v1/tasks/{task['id']}", json={"recurrence": {"rrule": "FREQ=DAILY"}}, headers=alice
    )
    assert response.status_code == 422
    assert _error_locs(response) == [["body", "recurrence"]]
    assert _snapshot(db) == before
