"""Event types, the topic each one travels on, and the envelope around its data."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

SCHEMA_VERSION: Final = "1.0"

TASK_EVENTS_TOPIC: Final = "task-events"
REMINDERS_TOPIC: Final = "reminders"
TASK_EVENTS_DLQ_TOPIC: Final = "task-events-dlq"
REMINDERS_DLQ_TOPIC: Final = "reminders-dlq"

TASK_CREATED: Final = "task.created.v1"
TASK_UPDATED: Final = "task.updated.v1"
TASK_COMPLETED: Final = "task.completed.v1"
TASK_REOPENED: Final = "task.reopened.v1"
TASK_DELETED: Final = "task.deleted.v1"
REMINDER_DUE: Final = "reminder.due.v1"

TOPIC_OF: Final[Mapping[str, str]] = {
    TASK_CREATED: TASK_EVENTS_TOPIC,
    TASK_UPDATED: TASK_EVENTS_TOPIC,
    TASK_COMPLETED: TASK_EVENTS_TOPIC,
    TASK_REOPENED: TASK_EVENTS_TOPIC,
    TASK_DELETED: TASK_EVENTS_TOPIC,
    REMINDER_DUE: REMINDERS_TOPIC,
}
EVENT_TYPES: Final = tuple(TOPIC_OF)


def rfc3339(moment: datetime) -> str:
    """UTC timestamp with a `Z` suffix, the form every event carries."""
    if moment.tzinfo is None:
        raise ValueError("event timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_envelope(
    event_type: str,
    data: Mapping[str, Any],
    *,
    event_id: uuid.UUID | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The §4 envelope; `data` must already be JSON-compatible (strings for ids and times)."""
    if event_type not in TOPIC_OF:
        raise ValueError(f"unknown event type {event_type!r}")
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "schema_version": SCHEMA_VERSION,
        "timestamp": rfc3339(timestamp or datetime.now(UTC)),
        "data": dict(data),
    }
