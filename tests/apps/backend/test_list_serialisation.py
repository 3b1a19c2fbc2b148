"""List pages are serialised from plain data: the same document TaskList would give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from pydantic import BaseModel

from apps.backend.schemas import (
    Recurrence,
    RecurrenceData,
    ReminderData,
    ReminderPublic,
    TaskData,
    TaskList,
    TaskListData,
    TaskPublic,
)

Headers = dict[str, str]


def test_plain_shapes_have_the_models_fields_in_order() -> None:
    pairs: list[tuple[type[Any], type[BaseModel]]] = [
        (TaskData, TaskPublic),
        (ReminderData, ReminderPublic),
        (RecurrenceData, Recurrence),
        (TaskListData, TaskList),
    ]
    for plain, model in pairs:
        assert list(plain.__annotations__) == list(model.model_fields), plain.__name__


def test_list_page_is_the_task_list_document(client: TestClient, alice: Headers) -> None:
    due = datetime.now(UTC).replace(microsecond=123456) + timedelta(days=2)
    past = datetime.now(UTC) - timedelta(hours=1)
    specs: list[dict[str, Any]] = [
        {"title": "plain"},
        {
            "title": "everything",
            "description": 'with ünïcode and "quotes"',
            "priority": "urgent",
            "tags": ["Work", "home"],
            "due_at": due.isoformat(),
            "timezone": "Europe/Berlin",
            "reminders": [{"before_minutes": 30}, {"at": past.isoformat()}],
            "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "anchor": "completion"},
        },
        {"title": "done", "due_at": due.isoformat(), "reminders": [{"before_minutes": 5}]},
    ]
    for spec in specs:
        assert client.post("/api/v1/tasks", json=spec, headers=alice).status_code == 201
    done = client.get("/api/v1/tasks", params={"q": "done"}, headers=alice).json()["items"][0]
    client.post(f"/api/v1/tasks/{done['id']}/complete", headers=alice)

    response = client.get("/api/v1/tasks", headers=alice)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    page = response.json()
    assert page["total"] == 3
    # Byte for byte what FastAPI would have made of the TaskList ...
    assert response.content == TaskList.model_validate(page).model_dump_json().encode()
    # ... and each task as the single-task route shows it.
    for item in page["items"]:
        assert client.get(f"/api/v1/tasks/{item['id']}", headers=alice).json() == item
