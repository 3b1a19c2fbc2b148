"""Event schemas, the outbox writer and processed-event records."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from jsonschema import Draft202012Validator

from apps.contracts import events
from apps.shared.db import create_db_engine, make_session_factory
from apps.shared.events.envelope import new_envelope
from apps.shared.events.outbox import outbox_row, write_event
from apps.shared.events.validation import SCHEMA_DIR, EventSchemaError, schema_errors
from apps.shared.idempotency import record_processed

TASK: dict[str, Any] = {
    "id": "0b7e3f5e-5f0c-4a55-9b43-0d9b0a1d2c11",
    "user_id": "alice",
    "title": "t",
    "description": "",
    "priority": "medium",
    "tags": [],
    "due_at": None,
    "timezone": "UTC",
    "reminders": [],
    "recurrence": None,
    "completed": False,
    "completed_at": None,
    "series_id": None,
    "created_at": "2026-01-04T10:00:00Z",
    "updated_at": "2026-01-04T10:00:00Z",
}
REMINDER: dict[str, Any] = {
    "reminder_id": "a4c5b0f2-1f4e-4f2e-8a9c-2a1b3c4d5e6f",
    "task_id": TASK["id"],
    "user_id": "alice",
    "title": "t",
    "due_at": None,
    "remind_at": "2026-01-04T10:00:00Z",
}


def test_every_event_type_has_a_valid_draft_2020_12_schema() -> None:
    for event_type in events.EVENT_TYPES:
        schema = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("event_type", events.EVENT_TYPES)
def test_valid_envelopes_pass(event_type: str) -> None:
    data = REMINDER if event_type == events.REMINDER_DUE else TASK
    assert schema_errors(new_envelope(event_type, data)) == []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda e: e["data"].pop("title"), "'title' is a required property"),
        (lambda e: e["data"].update(priority="critical"), "'critical' is not one of"),
        (lambda e: e["data"].update(due_at="2026-01-04T10:00:00"), "is not a 'date-time'"),
        (lambda e: e.update(event_id="not-a-uuid"), "is not a 'uuid'"),
        (lambda e: e.update(extra=1), "Additional properties"),
        (lambda e: e.update(event_type="task.exploded.v1"), "unknown event type"),
    ],
)
def test_invalid_envelopes_fail(mutate: Any, problem: str) -> None:
    envelope = new_envelope(events.TASK_CREATED, dict(TASK))
    mutate(envelope)
    assert any(problem in error for error in schema_errors(envelope))


def test_outbox_row_routes_by_event_type() -> None:
    row = outbox_row(event_type=events.REMINDER_DUE, data=REMINDER, partition_key="k")
    assert row.topic == "reminders" and row.payload["event_type"] == "reminder.due.v1"
    assert str(row.event_id) == row.payload["event_id"]
    with pytest.raises(EventSchemaError):
        outbox_row(event_type=events.TASK_CREATED, data={"id": "x"}, partition_key="k")


def test_envelope_timestamp_is_utc_rfc3339() -> None:
    moment = datetime(2026, 1, 4, 11, 0, tzinfo=UTC)
    envelope = new_envelope(events.TASK_CREATED, TASK, timestamp=moment)
    assert envelope["timestamp"] == "2026-01-04T11:00:00Z"
    assert envelope["schema_version"] == "1.0"


async def _write_then(database_url: str, *, commit: bool) -> None:
    engine = create_db_engine(database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            write_event(
                session, event_type=events.TASK_CREATED, data=TASK, partition_key=TASK["id"]
            )
            if commit:
                await session.commit()
    finally:
        await engine.dispose()


def test_written_event_lands_only_with_the_commit(database_url: str) -> None:
    asyncio.run(_write_then(database_url, commit=False))
    asyncio.run(_write_then(database_url, commit=True))
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT topic, partition_key, attempts, published_at, payload->>'event_type' "
            "FROM outbox"
        ).fetchall()
    assert rows == [("task-events", TASK["id"], 0, None, "task.created.v1")]


def test_processed_event_is_recorded_once(database_url: str) -> None:
    event_id = uuid.uuid4()

    async def record(consumer: str, *, commit: bool = True) -> bool:
        engine = create_db_engine(database_url, pool_size=1)
        try:
            async with make_session_factory(engine)() as session:
                first = await record_processed(session, consumer=consumer, event_id=event_id)
                if commit:
                    await session.commit()
                return first
        finally:
            await engine.dispose()

    assert asyncio.run(record("recurring", commit=False)) is True
    assert asyncio.run(record("recurring")) is True  # the rolled-back one left no record
    assert asyncio.run(record("recurring")) is False
    assert asyncio.run(record("notification")) is True
