"""reminder.due.v1 deliveries: SUCCESS once per event, DROP for poison, RETRY for trouble."""

from __future__ import annotations

import json

import psycopg
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from apps.notification.main import create_app
from apps.notification.settings import NotificationServiceSettings
from tests.apps.notification.conftest import (
    PLATFORM,
    bearer,
    bulk_delivery,
    cloud_event,
    deliver,
    reminder_envelope,
)


def _consumed(outcome: str, event_type: str = "reminder.due.v1") -> float:
    labels = {
        "service": "notification",
        "topic": "reminders",
        "type": event_type,
        "outcome": outcome,
    }
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


def _count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def test_an_event_becomes_one_notification_however_often_it_arrives(
    client: TestClient, database_url: str
) -> None:
    envelope = reminder_envelope()
    successes, duplicates = _consumed("success"), _consumed("duplicate")

    answers = [deliver(client, cloud_event(envelope)) for _ in range(3)]

    assert [a.json() for a in answers] == [{"status": "SUCCESS"}] * 3
    listed = client.get("/api/v1/notifications", headers=bearer("alice")).json()
    assert listed["total"] == 1
    (notification,) = listed["items"]
    assert notification["title"] == "Call mum" and notification["read"] is False
    assert notification["task_id"] == envelope["data"]["task_id"]
    assert [(d["channel"], d["status"]) for d in notification["deliveries"]] == [
        ("in_app", "delivered")
    ]
    assert _count(database_url, "processed_events") == 1
    assert _consumed("success") == successes + 1
    assert _consumed("duplicate") == duplicates + 2


def test_events_failing_their_schema_are_dropped_to_the_dead_letter_topic(
    client: TestClient, database_url: str
) -> None:
    dead = _consumed("deadletter")
    broken = reminder_envelope()
    del broken["data"]["remind_at"]
    wrong_type = reminder_envelope()
    wrong_type["event_type"] = "task.created.v1"
    mismatched = reminder_envelope()

    answers = [
        deliver(client, cloud_event(broken)),
        deliver(client, b"{not json"),
        deliver(client, json.dumps({"id": "x", "data": "plain text"}).encode()),
        deliver(client, cloud_event(wrong_type)),
        deliver(client, cloud_event(mismatched, id="another-id")),
    ]

    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["status"] for a in answers] == ["DROP"] * 5
    assert _count(database_url, "notifications") == 0
    # The label keeps the type only when the CloudEvent says reminder.due.v1.
    assert _consumed("deadletter") == dead + 2


def test_deliveries_without_the_app_token_are_refused(client: TestClient) -> None:
    body = cloud_event(reminder_envelope())
    assert deliver(client, body, headers={}).status_code == 401
    assert deliver(client, body, headers={"dapr-api-token": "wrong"}).status_code == 401


def test_database_trouble_asks_dapr_to_retry(
    notification_settings: NotificationServiceSettings, database_url: str
) -> None:
    missing = make_url(database_url).set(database="no_such_database")
    broken = notification_settings.model_copy(
        update={"database_url": SecretStr(missing.render_as_string(hide_password=False))}
    )
    retries = _consumed("retry")
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        answer = deliver(client, cloud_event(reminder_envelope()))
    assert answer.status_code == 200 and answer.json() == {"status": "RETRY"}
    assert _consumed("retry") == retries + 1


def test_lateness_is_observed(client: TestClient) -> None:
    before = REGISTRY.get_sample_value("reminder_lateness_seconds_count") or 0.0
    deliver(client, cloud_event(reminder_envelope()))
    assert REGISTRY.get_sample_value("reminder_lateness_seconds_count") == before + 1


def test_a_bulk_delivery_is_answered_entry_by_entry(client: TestClient, database_url: str) -> None:
    """A poison entry among good ones is the only one dropped (to the dead-letter
    topic); an entry delivered twice in the batch, and again later, has one effect."""
    first, second = reminder_envelope(), reminder_envelope(user_id="bob")
    poison = reminder_envelope()
    del poison["data"]["remind_at"]
    events = [cloud_event(e) for e in (first, poison, second, first)]
    body = bulk_delivery(*events)
    successes, duplicates, dead = (
        _consumed("success"),
        _consumed("duplicate"),
        _consumed("deadletter"),
    )

    answer = deliver(client, body, headers={**PLATFORM, "content-type": "application/json"})
    again = deliver(client, bulk_delivery(cloud_event(second)))

    assert answer.status_code == 200
    assert answer.json() == {
        "statuses": [
            {"entryId": "0", "status": "SUCCESS"},
            {"entryId": "1", "status": "DROP"},
            {"entryId": "2", "status": "SUCCESS"},
            {"entryId": "3", "status": "SUCCESS"},
        ]
    }
    assert again.json() == {"statuses": [{"entryId": "0", "status": "SUCCESS"}]}
    assert _count(database_url, "notifications") == 2
    assert _count(database_url, "processed_events") == 2
    assert _consumed("success") == successes + 2
    assert _consumed("duplicate") == duplicates + 2
    assert _consumed("deadletter") == dead + 1


def test_database_trouble_retries_every_entry_of_a_bulk_delivery(
    notification_settings: NotificationServiceSettings, database_url: str
) -> None:
    missing = make_url(database_url).set(database="no_such_database")
    broken = notification_settings.model_copy(
        update={"database_url": SecretStr(missing.render_as_string(hide_password=False))}
    )
    body = bulk_delivery(cloud_event(reminder_envelope()), cloud_event(reminder_envelope()))
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        answer = deliver(client, body)
    assert [s["status"] for s in answer.json()["statuses"]] == ["RETRY", "RETRY"]
