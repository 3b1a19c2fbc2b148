"""POST /reminder-scan: due reminders are claimed once, and their events go to the outbox."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from apps.backend.main import create_app
from apps.backend.settings import BackendSettings
from apps.shared.events.validation import schema_errors
from tests.apps.backend.conftest import APP_TOKEN

PLATFORM = {"dapr-api-token": APP_TOKEN}


def _task_with_reminders(client: TestClient, alice: dict[str, str], count: int = 1) -> Any:
    body = {
        "title": "Call mum",
        "due_at": "2030-05-01T18:00:00Z",
        "reminders": [{"before_minutes": 10 * (n + 1)} for n in range(count)],
    }
    return client.post("/api/v1/tasks", json=body, headers=alice).json()


def _make_due(database_url: str, *, task_id: str | None = None) -> None:
    """Move fire times into the past (the API sets them from the task's due time)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        if task_id is None:
            connection.execute("UPDATE reminders SET remind_at = now() - interval '1 minute'")
        else:
            connection.execute(
                "UPDATE reminders SET remind_at = now() - interval '1 minute' WHERE task_id = %s",
                (task_id,),
            )


def test_due_reminders_become_events_once(
    client: TestClient, alice: dict[str, str], db: Any, database_url: str
) -> None:
    due = _task_with_reminders(client, alice, count=2)
    later = _task_with_reminders(client, alice)
    _make_due(database_url, task_id=due["id"])

    first = client.post("/reminder-scan", headers=PLATFORM)
    second = client.post("/reminder-scan", headers=PLATFORM)

    assert first.status_code == 200 and first.json()["emitted"] == 2
    assert second.json()["emitted"] == 0
    rows = db(
        "SELECT payload, partition_key, topic FROM outbox "
        "WHERE event_type = 'reminder.due.v1' ORDER BY id"
    )
    assert len(rows) == 2
    for payload, partition_key, topic in rows:
        assert schema_errors(payload) == []
        assert topic == "reminders" and partition_key == due["id"]
        assert payload["data"]["task_id"] == due["id"]
        assert payload["data"]["user_id"] == "alice"
        assert payload["data"]["title"] == "Call mum"
    fired = db("SELECT task_id::text, fired_at IS NOT NULL FROM reminders ORDER BY task_id")
    assert {(task, flag) for task, flag in fired} == {(due["id"], True), (later["id"], False)}


def test_completed_tasks_fire_nothing(
    client: TestClient, alice: dict[str, str], database_url: str
) -> None:
    task = _task_with_reminders(client, alice)
    _make_due(database_url)
    client.post(f"/api/v1/tasks/{task['id']}/complete", headers=alice).raise_for_status()
    assert client.post("/reminder-scan", headers=PLATFORM).json()["emitted"] == 0


def test_only_the_platform_may_scan(client: TestClient) -> None:
    assert client.post("/reminder-scan").status_code == 401
    assert client.post("/reminder-scan", headers={"dapr-api-token": "x"}).status_code == 401


def test_the_cron_binding_probe_sees_the_route(client: TestClient) -> None:
    # daprd sends OPTIONS first and enables the binding on 2xx or 405.
    assert client.options("/reminder-scan").status_code == 405


def test_two_replicas_scanning_at_once_fire_each_reminder_once(
    backend_settings: BackendSettings,
    client: TestClient,
    alice: dict[str, str],
    db: Any,
    database_url: str,
) -> None:
    for _ in range(60):
        _task_with_reminders(client, alice, count=5)
    _make_due(database_url)
    settings = backend_settings
    emitted: list[int] = []
    lock = threading.Lock()

    def replica() -> None:
        with TestClient(create_app(settings)) as own:
            total = 0
            for _ in range(5):
                total += own.post("/reminder-scan", headers=PLATFORM).json()["emitted"]
            with lock:
                emitted.append(total)

    replicas = [threading.Thread(target=replica) for _ in range(2)]
    for thread in replicas:
        thread.start()
    for thread in replicas:
        thread.join()

    assert sum(emitted) == 300
    rows = db(
        "SELECT count(*), count(DISTINCT payload->'data'->>'reminder_id') FROM outbox "
        "WHERE event_type = 'reminder.due.v1'"
    )
    assert rows == [(300, 300)]
