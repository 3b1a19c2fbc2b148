"""Faults: sidecars absent for a while lose nothing, broker hiccups lose nothing, poison
events end in the dead-letter topics — and everything emitted matches its schema."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from apps.contracts.events import TASK_COMPLETED
from apps.local.standin.delivery import Outcome
from apps.local.system import LocalSystem
from apps.shared.events.envelope import new_envelope
from apps.shared.events.validation import schema_errors
from tests.e2e.conftest import Api, eventually, settle

# The events this module poisons on purpose; every other event must be valid.
POISON_TASK_EVENT = uuid.UUID("00000000-0000-4000-8000-00000000dead")
POISON_REMINDER_EVENT = "poison-not-json"


def _recurring(api: Api, n: int) -> list[dict[str, Any]]:
    return [
        api.create(
            title=f"recurring {k}",
            due_at="2030-06-03T08:00:00Z",
            recurrence={"rrule": "FREQ=DAILY", "anchor": "due"},
        )
        for k in range(n)
    ]


def _sidecars(system: LocalSystem, app_id: str) -> list[Any]:
    return [instance.sidecar for instance in system.of(app_id)]


def test_backend_sidecars_absent_for_a_while_lose_nothing(
    system: LocalSystem, user: Callable[[], Api]
) -> None:
    api = user()
    tasks = _recurring(api, 6)
    eventually(lambda: system.standin.mesh.lag("recurring", "task-events") == 0, what="idle")
    for sidecar in _sidecars(system, "backend"):
        system.standin.call(system.standin.mesh.take_down, sidecar)
    try:
        for task in tasks:
            api.complete(str(task["id"]))  # the API keeps accepting changes
        more = _recurring(api, 2)
        settle(1.5)
        assert len(api.tasks()) == 8  # nothing could be published meanwhile
    finally:
        for sidecar in _sidecars(system, "backend"):
            system.standin.call(system.standin.mesh.bring_up, sidecar)
    eventually(lambda: len(api.tasks()) == 14, timeout=30, what="6 successors")
    settle(1.0)
    assert len(api.tasks()) == 14
    created = {
        e["data"]["data"]["id"]
        for e in system.standin.mesh.events("task-events")
        if e["type"] == "task.created.v1"
    }
    assert {str(t["id"]) for t in tasks + more} <= created


def test_consumer_sidecars_absent_for_a_while_lose_nothing(
    system: LocalSystem, user: Callable[[], Api]
) -> None:
    api = user()
    tasks = _recurring(api, 5)
    for sidecar in _sidecars(system, "recurring"):
        system.standin.call(system.standin.mesh.take_down, sidecar)
    try:
        for task in tasks:
            api.complete(str(task["id"]))
        eventually(
            lambda: system.standin.mesh.lag("recurring", "task-events") >= 5,
            what="completions waiting in the broker",
        )
        assert len(api.tasks()) == 5
    finally:
        for sidecar in _sidecars(system, "recurring"):
            system.standin.call(system.standin.mesh.bring_up, sidecar)
    eventually(lambda: len(api.tasks()) == 10, timeout=30, what="5 successors")


def test_broker_hiccups_are_absorbed_by_the_outbox(
    system: LocalSystem, user: Callable[[], Api]
) -> None:
    faults = system.standin.mesh.faults
    faults.publish_failures = 8
    faults.publish_failure_rate = 0.3
    api = user()
    tasks = _recurring(api, 8)
    for task in tasks:
        api.complete(str(task["id"]))
    eventually(lambda: len(api.tasks()) == 16, timeout=40, what="8 successors")
    faults.reset()
    settle(1.0)
    assert len(api.tasks()) == 16
    metrics = httpx.get(f"{system.url('backend')}/metrics").text
    assert 'outbox_publish_failures_total{service="backend",topic="task-events"}' in metrics


def _publish_raw(system: LocalSystem, topic: str, payload: bytes, event_id: str, kind: str) -> None:
    mesh = system.standin.mesh
    system.standin.call(
        mesh.publish,
        source="backend",
        pubsub_name="pubsub",
        topic=topic,
        data=payload,
        content_type="application/json",
        metadata={"cloudevent.id": event_id, "cloudevent.type": kind, "partitionKey": event_id},
    )


def test_poison_events_end_in_the_dead_letter_topics(system: LocalSystem) -> None:
    broken = new_envelope(TASK_COMPLETED, {"id": "not-a-task"}, event_id=POISON_TASK_EVENT)
    assert schema_errors(broken)  # it really is invalid
    _publish_raw(
        system, "task-events", json.dumps(broken).encode(), broken["event_id"], TASK_COMPLETED
    )
    _publish_raw(system, "reminders", b"\xff not json", POISON_REMINDER_EVENT, "reminder.due.v1")

    dead_tasks = eventually(
        lambda: system.standin.mesh.events("task-events-dlq"), what="task-events-dlq"
    )
    dead_reminders = eventually(
        lambda: system.standin.mesh.events("reminders-dlq"), what="reminders-dlq"
    )
    assert [e["id"] for e in dead_tasks] == [broken["event_id"]]
    assert [e["id"] for e in dead_reminders] == [POISON_REMINDER_EVENT]
    journal = system.standin.mesh.journal
    poisoned = [e for e in journal if e.event_id in (broken["event_id"], POISON_REMINDER_EVENT)]
    # Dropped at once (no retry loop), then dead-lettered by the sidecar.
    assert [e.outcome for e in poisoned if e.outcome is not Outcome.DEAD_LETTERED] == [
        Outcome.DROP,
        Outcome.DROP,
    ]


def test_everything_emitted_matches_its_schema_and_no_route_was_missing(
    system: LocalSystem,
) -> None:
    mesh = system.standin.mesh
    emitted = mesh.events("task-events") + mesh.events("reminders")
    assert emitted, "the earlier tests produced events"
    poisoned = {str(POISON_TASK_EVENT), POISON_REMINDER_EVENT}
    checked = [event for event in emitted if event["id"] not in poisoned]
    assert len(checked) == len(emitted) - 2
    for event in checked:
        envelope = event["data"]
        assert schema_errors(envelope) == [], event["id"]
        assert (event["id"], event["type"]) == (envelope["event_id"], envelope["event_type"])
    assert not [e for e in mesh.journal if e.outcome is Outcome.NOT_FOUND]
    assert not [e for e in mesh.journal if e.outcome is Outcome.UNMATCHED]
