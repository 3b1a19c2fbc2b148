"""The fast validator (jsonschema-rs) lets nothing through that jsonschema rejects.

`schema_errors` trusts jsonschema-rs's "valid" and asks jsonschema for the messages
otherwise, so jsonschema-rs accepting more than jsonschema would let an invalid event
through.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from apps.contracts import events
from apps.shared.events.envelope import new_envelope
from apps.shared.events.validation import fast_validator_for, schema_errors, validator_for

TASK: dict[str, Any] = {
    "id": "0b7e3f5e-5f0c-4a55-9b43-0d9b0a1d2c11",
    "user_id": "alice",
    "title": "Water the plants",
    "description": "the ones on the balcony",
    "priority": "high",
    "tags": ["garden", "home"],
    "due_at": "2026-07-01T16:00:00Z",
    "timezone": "Europe/Berlin",
    "reminders": [
        {
            "id": "a4c5b0f2-1f4e-4f2e-8a9c-2a1b3c4d5e6f",
            "before_minutes": 60,
            "at": None,
            "remind_at": "2026-07-01T15:00:00Z",
            "fired_at": None,
        }
    ],
    "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "anchor": "due"},
    "completed": False,
    "completed_at": None,
    "series_id": "0b7e3f5e-5f0c-4a55-9b43-0d9b0a1d2c11",
    "created_at": "2026-01-04T10:00:00.123456+00:00",
    "updated_at": "2026-01-04T10:00:00Z",
}
REMINDER: dict[str, Any] = {
    "reminder_id": "a4c5b0f2-1f4e-4f2e-8a9c-2a1b3c4d5e6f",
    "task_id": TASK["id"],
    "user_id": "alice",
    "title": "t",
    "due_at": None,
    "remind_at": "2026-01-04T10:00:00+02:00",
}

Mutation = Callable[[dict[str, Any]], object]
TASK_MUTATIONS: list[Mutation] = [
    lambda e: None,
    lambda e: e["data"].update(title=""),
    lambda e: e["data"].update(title="x" * 201),
    lambda e: e["data"].update(title="é" * 200),
    lambda e: e["data"].update(description="x" * 4001),
    lambda e: e["data"].update(priority="critical"),
    lambda e: e["data"].update(tags=["home", "home"]),
    lambda e: e["data"].update(tags=["x" * 33]),
    lambda e: e["data"].update(tags=[str(n) for n in range(21)]),
    lambda e: e["data"].update(due_at="2026-07-01T16:00:00"),
    lambda e: e["data"].update(due_at="2026-07-01 16:00:00+00:00"),
    lambda e: e["data"].update(due_at="2026-07-01t16:00:00z"),
    lambda e: e["data"].update(due_at="not a date"),
    lambda e: e["data"].update(due_at=12),
    lambda e: e["data"].update(completed="false"),
    lambda e: e["data"].update(completed=0),
    lambda e: e["data"].update(series_id="0b7e3f5e5f0c4a559b430d9b0a1d2c11"),
    lambda e: e["data"].update(recurrence={"rrule": "", "anchor": "due"}),
    lambda e: e["data"].update(recurrence={"rrule": "FREQ=DAILY", "anchor": "later"}),
    lambda e: e["data"].update(recurrence={"rrule": "FREQ=DAILY", "anchor": "due", "x": 1}),
    lambda e: e["data"].update(recurrence=None),
    lambda e: e["data"]["reminders"][0].update(before_minutes=-1),
    lambda e: e["data"]["reminders"][0].update(before_minutes=1.0),
    lambda e: e["data"]["reminders"][0].update(before_minutes=1.5),
    lambda e: e["data"]["reminders"][0].update(before_minutes=True),
    lambda e: e["data"]["reminders"][0].pop("fired_at"),
    lambda e: e["data"]["reminders"][0].update(extra="tolerated"),
    lambda e: e["data"].update(extra="tolerated"),
    lambda e: e["data"].pop("user_id"),
    lambda e: e["data"].update(user_id=""),
    lambda e: e.update(schema_version="2.0"),
    lambda e: e.update(schema_version="1.12"),
    lambda e: e.update(schema_version="1.2\n"),
    lambda e: e.update(event_id="not-a-uuid"),
    lambda e: e.update(extra=1),
    lambda e: e.pop("timestamp"),
    lambda e: e.update(data=[]),
]


def _agree(envelope: dict[str, Any]) -> None:
    """jsonschema-rs never accepts what jsonschema rejects (where it is stricter, as with
    `$` before a trailing newline, jsonschema is asked), and the outcome is jsonschema's."""
    event_type = envelope["event_type"]
    slow_valid = not list(validator_for(event_type).iter_errors(envelope))
    if fast_validator_for(event_type).is_valid(envelope):
        assert slow_valid
    assert (schema_errors(envelope) == []) is slow_valid


@pytest.mark.parametrize("event_type", sorted(set(events.EVENT_TYPES) - {events.REMINDER_DUE}))
@pytest.mark.parametrize("mutate", TASK_MUTATIONS)
def test_task_events(event_type: str, mutate: Mutation) -> None:
    envelope = new_envelope(event_type, copy.deepcopy(TASK))
    mutate(envelope)
    _agree(envelope)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: None,
        lambda e: e["data"].update(remind_at=None),
        lambda e: e["data"].update(due_at="2026-01-04T10:00:00"),
        lambda e: e["data"].pop("reminder_id"),
        lambda e: e["data"].update(title=""),
    ],
)
def test_reminder_events(mutate: Mutation) -> None:
    envelope = new_envelope(events.REMINDER_DUE, copy.deepcopy(REMINDER))
    mutate(envelope)
    _agree(envelope)


def test_values_that_are_not_json_are_reported_not_raised() -> None:
    from datetime import UTC, datetime

    envelope = new_envelope(events.TASK_CREATED, copy.deepcopy(TASK))
    envelope["data"]["due_at"] = datetime(2026, 7, 1, tzinfo=UTC)
    assert any("is not of type" in error for error in schema_errors(envelope))
