"""Creating the next occurrence of a completed recurring task (for the recurring service).

The recurring service computes when the next occurrence is due and which rule it
carries; the backend creates it from the completed task as it stands now.

This is where the recurring service's event takes effect, so this is where its
processed-event record (consumer `recurring`, the completion event's id) is written —
in the same transaction as the new task. With the completed task's row locked first,
however many times (and from however many recurring instances) a completion is
delivered, exactly one successor exists: a repeated completion event gets the one
already created, and `tasks.previous_task_id` (unique) also keeps a task that was
reopened and completed again to a single successor.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import sqlalchemy as sa
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from apps.backend.models import Task
from apps.backend.schemas import (
    NextOccurrenceItem,
    NextOccurrenceRequest,
    Recurrence,
    ReminderCreate,
    ReminderPublic,
    TaskCreate,
    TaskPublic,
)
from apps.backend.store import driver
from apps.backend.store.changes import create_task, creation
from apps.backend.store.queries import public_task_select
from apps.backend.store.reads import get_task, public_from_row
from apps.backend.store.writes import CREATE_TASK
from apps.contracts.services import AppId
from apps.shared.errors import ApiError, invalid, not_found
from apps.shared.idempotency import RECORD_PROCESSED
from apps.shared.models import ProcessedEvent
from apps.shared.tracing import context_from, tracer

_TASK_LOC: list[str | int] = ["path", "task_id"]
_TASKS = Task.__table__  # type: ignore[attr-defined]
_PROCESSED = ProcessedEvent.__table__  # type: ignore[attr-defined]
# Whose event this route applies: the recurring service's (its processed-event records).
RECURRING_CONSUMER = AppId.RECURRING.value


def _carried_reminder(reminder: ReminderPublic, shift_seconds: float) -> ReminderCreate:
    """Relative reminders carry over as they are; fixed ones move with the due time."""
    if reminder.before_minutes is not None:
        return ReminderCreate(before_minutes=reminder.before_minutes)
    assert reminder.at is not None
    return ReminderCreate(at=reminder.at + timedelta(seconds=shift_seconds))


def _record_and_find_successor_statement() -> sa.Select[Any]:
    """The processed-event record and the successor lookup (a cheap look at the unique
    index; the full task is read only when there is one) in one round trip."""
    recorded = RECORD_PROCESSED.cte("recorded")
    successor = sa.select(_TASKS.c.id).where(_TASKS.c.previous_task_id == sa.bindparam("task_id"))
    return sa.select(
        sa.exists(sa.select(recorded.c.event_id)).label("first_delivery"),
        successor.scalar_subquery().label("successor_id"),
    )


_RECORD_AND_FIND_SUCCESSOR = _record_and_find_successor_statement()


async def _record_and_find_successor(
    session: AsyncSession, *, task_id: uuid.UUID, event_id: uuid.UUID
) -> tuple[bool, uuid.UUID | None]:
    """Whether this is the completion's first delivery (its record is written now), and
    the successor created so far.

    The successor is read from the statement's snapshot, taken before the insert: that
    is enough because the caller holds the completed task's row lock, which every
    delivery of this completion takes first, so what an earlier one committed is in it.
    """
    params = {"p_consumer": RECURRING_CONSUMER, "p_event_id": event_id, "task_id": task_id}
    row = (await session.execute(_RECORD_AND_FIND_SUCCESSOR, params)).one()
    return bool(row.first_delivery), row.successor_id


@dataclass(frozen=True)
class NextOccurrence:
    """What one next-occurrence request came to."""

    task: TaskPublic
    """The successor: created now, or by an earlier delivery of the same completion."""
    created: bool
    """Whether this call created it (else it is the earlier one)."""
    completed_at: datetime | None
    """When the predecessor was completed: the start of the pipeline-freshness clock."""


async def create_next_occurrence(
    session: AsyncSession, *, task_id: uuid.UUID, request: NextOccurrenceRequest
) -> NextOccurrence:
    """The successor of `task_id` and whether this call created it; the caller commits."""
    current = await get_task(session, user_id=request.user_id, task_id=task_id, for_update=True)
    first_delivery, successor_id = await _record_and_find_successor(
        session, task_id=task_id, event_id=request.completion_event_id
    )
    if successor_id is not None:
        existing = await get_task(session, user_id=request.user_id, task_id=successor_id)
        return NextOccurrence(existing, False, current.completed_at)
    if not first_delivery:
        raise _already_handled()
    created = await create_task(
        session,
        user_id=request.user_id,
        data=successor_data(current, request),
        series_id=current.series_id or current.id,
        previous_task_id=current.id,
    )
    return NextOccurrence(created, True, current.completed_at)


def _already_handled() -> ApiError:
    # Handled before, and its successor has been deleted since: do not bring it back.
    return ApiError(409, _TASK_LOC, "completion already handled", "completion_already_handled")


def successor_data(current: TaskPublic, request: NextOccurrenceRequest) -> TaskCreate:
    """What the successor of `current` is made of: the task as it stands, due when the
    recurring service says, with the rule it sends; a 409 for a task that cannot have
    one, a 422 when the result would not be a valid task."""
    if not current.completed:
        raise ApiError(409, _TASK_LOC, "task is not completed", "task_not_completed")
    if current.recurrence is None or current.due_at is None:
        raise ApiError(409, _TASK_LOC, "task has no recurrence", "task_not_recurring")
    shift = (request.due_at - current.due_at).total_seconds()
    try:
        return TaskCreate(
            title=current.title,
            description=current.description,
            priority=current.priority,
            due_at=request.due_at,
            timezone=current.timezone,
            tags=current.tags,
            reminders=[_carried_reminder(r, shift) for r in current.reminders],
            recurrence=Recurrence(rrule=request.rrule, anchor=current.recurrence.anchor),
        )
    except ValidationError as exc:
        raise invalid(["body", "due_at"], f"cannot build the next occurrence: {exc}") from None


@dataclass(frozen=True)
class ItemOutcome:
    """What one item of a batch came to, as the single route would answer it."""

    status: int
    """201 created, 200 created before, or the single route's error status."""
    error: str | None
    """The error's type when it failed."""
    completed_at: datetime | None = None
    """When its predecessor was completed, for a successor created now (freshness)."""


def _batch_statements() -> tuple[driver.Sql, ...]:
    """The batch's statements: its tasks read and locked in id order (with their owner),
    which of them have a successor, which completions were handled, and the records of
    those handled now. Parameters `task_ids`, `event_ids` (arrays) and `p_consumer`."""
    ids = sa.bindparam("task_ids", type_=pg.ARRAY(_TASKS.c.id.type))
    event_ids = sa.bindparam("event_ids", type_=pg.ARRAY(_PROCESSED.c.event_id.type))
    consumer = sa.bindparam("p_consumer", type_=_PROCESSED.c.consumer.type)
    locked = (
        public_task_select()
        .add_columns(_TASKS.c.user_id.label("owner_id"))
        .where(_TASKS.c.id == sa.any_(ids))
        .order_by(_TASKS.c.id)
        .with_for_update(of=_TASKS)
    )
    succeeded = sa.select(_TASKS.c.previous_task_id).where(
        _TASKS.c.previous_task_id == sa.any_(ids)
    )
    handled = sa.select(_PROCESSED.c.event_id).where(
        _PROCESSED.c.consumer == consumer, _PROCESSED.c.event_id == sa.any_(event_ids)
    )
    record = (
        insert(_PROCESSED)
        .from_select(["consumer", "event_id"], sa.select(consumer, sa.func.unnest(event_ids)))
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    )
    return tuple(driver.compile_sql(s) for s in (locked, succeeded, handled, record))


_LOCK_TASKS, _SUCCEEDED, _HANDLED, _RECORD_HANDLED = _batch_statements()
_CREATE = driver.compile_sql(CREATE_TASK)


async def create_next_occurrences(
    connection: psycopg.AsyncConnection[Any], *, items: Sequence[NextOccurrenceItem]
) -> list[ItemOutcome]:
    """`create_next_occurrence` for many completions, in one transaction of its own and a
    handful of statements whatever the batch's size (the single route's five statements
    and a savepoint per item cost the backend and the database more than the rest of a
    completion's way together).

    Every task of the batch is locked first, in id order (two batches that share tasks
    cannot deadlock, and a delivery of the same completion through the single route
    waits too); what was created and handled before is read after the locks are held,
    so it includes what any earlier delivery committed. Items are then decided in task
    order (for one task, in the given order) as the single route would decide each,
    seeing what the items before them did; a refused item writes nothing, so no item
    needs a savepoint. Each item is decided in its own trace (the recurring service's
    call for it), so its successor's event carries that trace. One outcome per item, in
    the given order.
    """
    results: list[ItemOutcome] = [ItemOutcome(500, None)] * len(items)
    task_ids = sorted({item.task_id for item in items})
    event_ids = list({item.completion_event_id for item in items})
    ids = {"task_ids": task_ids, "event_ids": event_ids, "p_consumer": RECURRING_CONSUMER}
    async with connection.transaction():
        rows = await (await driver.execute(connection, _LOCK_TASKS, ids)).fetchall()
        locked = [dict(zip(_LOCK_TASKS.columns, row, strict=True)) for row in rows]
        tasks = {row["id"]: row for row in locked}
        succeeded = await (await driver.execute(connection, _SUCCEEDED, ids)).fetchall()
        with_successor = {row[0] for row in succeeded}
        handled_rows = await (await driver.execute(connection, _HANDLED, ids)).fetchall()
        handled = {row[0] for row in handled_rows}
        creations: list[dict[str, Any]] = []
        newly_handled: set[uuid.UUID] = set()
        for index in sorted(range(len(items)), key=lambda i: items[i].task_id):
            item = items[index]
            with tracer().start_as_current_span(
                "next-occurrence",
                context=context_from(item.traceparent, item.tracestate),
                kind=SpanKind.SERVER,
                attributes={"todo.task_id": str(item.task_id)},
            ) as span:
                try:
                    outcome, creation_params = _decide(
                        item, tasks.get(item.task_id), with_successor, handled
                    )
                except ApiError as exc:
                    span.set_status(Status(StatusCode.ERROR, exc.item.type))
                    results[index] = ItemOutcome(exc.status_code, exc.item.type)
                    continue
            results[index] = outcome
            if creation_params is not None:
                creations.append(creation_params)
                with_successor.add(item.task_id)
            handled.add(item.completion_event_id)
            newly_handled.add(item.completion_event_id)
        if creations:
            await driver.execute_many(connection, _CREATE, creations)
        if newly_handled:
            record = {**ids, "event_ids": list(newly_handled)}
            await driver.execute(connection, _RECORD_HANDLED, record)
    return results


def _decide(
    item: NextOccurrenceItem,
    row: dict[str, Any] | None,
    with_successor: set[uuid.UUID],
    handled: set[uuid.UUID],
) -> tuple[ItemOutcome, dict[str, Any] | None]:
    """What the single route would answer for `item`, given its task's locked row and
    what exists so far (before the batch and from its earlier items), and the parameters
    of the successor's `CREATE_TASK` when it creates one; an ApiError for a refusal."""
    if row is None or row["owner_id"] != item.user_id:
        raise not_found(_TASK_LOC, "task")
    if item.task_id in with_successor:
        return ItemOutcome(200, None), None
    if item.completion_event_id in handled:
        raise _already_handled()
    current = public_from_row(row)
    _, values = creation(
        user_id=item.user_id,
        data=successor_data(current, item),
        series_id=current.series_id or current.id,
        previous_task_id=current.id,
    )
    return ItemOutcome(201, None, current.completed_at), driver.bind(_CREATE, values)
