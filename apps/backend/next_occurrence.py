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
from datetime import timedelta

import sqlalchemy as sa
from pydantic import Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel
from sqlmodel._compat import SQLModelConfig

from apps.backend import tasks
from apps.backend.fields import Moment, RRule
from apps.backend.models import Task
from apps.backend.schemas import Recurrence, ReminderCreate, ReminderPublic, TaskCreate, TaskPublic
from apps.shared.errors import ApiError, invalid
from apps.shared.idempotency import record_processed

_TASK_LOC: list[str | int] = ["path", "task_id"]
_TASKS = Task.__table__  # type: ignore[attr-defined]
# Whose event this route applies: the recurring service's (its processed-event records).
RECURRING_CONSUMER = "recurring"


class NextOccurrenceRequest(SQLModel):
    """What the recurring service sends for one completion."""

    model_config = SQLModelConfig(extra="forbid")

    user_id: str = Field(min_length=1, max_length=255, description="owner of the task")
    due_at: Moment = Field(description="when the next occurrence is due")
    rrule: RRule = Field(description="the rule the next occurrence carries (COUNT counted down)")
    completion_event_id: uuid.UUID = Field(description="the task.completed.v1 event handled")


def _carried_reminder(reminder: ReminderPublic, shift_seconds: float) -> ReminderCreate:
    """Relative reminders carry over as they are; fixed ones move with the due time."""
    if reminder.before_minutes is not None:
        return ReminderCreate(before_minutes=reminder.before_minutes)
    assert reminder.at is not None
    return ReminderCreate(at=reminder.at + timedelta(seconds=shift_seconds))


# Built once: building a statement per call costs more than executing a cached one.
_SUCCESSOR_ID = sa.select(_TASKS.c.id).where(_TASKS.c.previous_task_id == sa.bindparam("task_id"))


async def _successor_id(session: AsyncSession, task_id: uuid.UUID) -> uuid.UUID | None:
    """A cheap look at the unique index; the full task is read only when there is one."""
    found = await session.execute(_SUCCESSOR_ID, {"task_id": task_id})
    successor: uuid.UUID | None = found.scalar_one_or_none()
    return successor


async def create_next_occurrence(
    session: AsyncSession, *, task_id: uuid.UUID, request: NextOccurrenceRequest
) -> tuple[TaskPublic, bool]:
    """The successor of `task_id` and whether this call created it; the caller commits."""
    current = await tasks.get_task(
        session, user_id=request.user_id, task_id=task_id, for_update=True
    )
    first_delivery = await record_processed(
        session, consumer=RECURRING_CONSUMER, event_id=request.completion_event_id
    )
    successor_id = await _successor_id(session, task_id)
    if successor_id is not None:
        existing = await tasks.get_task(session, user_id=request.user_id, task_id=successor_id)
        return existing, False
    if not first_delivery:
        # Handled before, and its successor has been deleted since: do not bring it back.
        raise ApiError(409, _TASK_LOC, "completion already handled", "completion_already_handled")
    if not current.completed:
        raise ApiError(409, _TASK_LOC, "task is not completed", "task_not_completed")
    if current.recurrence is None or current.due_at is None:
        raise ApiError(409, _TASK_LOC, "task has no recurrence", "task_not_recurring")
    shift = (request.due_at - current.due_at).total_seconds()
    try:
        data = TaskCreate(
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
    created = await tasks.create_task(
        session,
        user_id=request.user_id,
        data=data,
        series_id=current.series_id or current.id,
        previous_task_id=current.id,
    )
    return created, True
