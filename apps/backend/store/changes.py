"""Changing tasks: create, update, complete, reopen and delete, each with its event.

Every change writes its event to the outbox in the same transaction (see `writes`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from apps.backend.models import Reminder, Tag, Task
from apps.backend.schemas import ReminderCreate, ReminderPublic, TaskCreate, TaskPublic, TaskUpdate
from apps.backend.store.reads import get_task
from apps.backend.store.reminders import (
    fire_time,
    insert_reminders,
    new_reminders,
    rearm_relative_reminders,
)
from apps.backend.store.writes import (
    COMPLETE_TASK,
    CREATE_TASK,
    REMINDER_FIELDS,
    UPDATE_TASK,
    emit_event,
    event_params,
)
from apps.contracts import events
from apps.shared.errors import invalid
from apps.shared.timeutil import utcnow

_TASKS = Task.__table__  # type: ignore[attr-defined]
_TAGS = Tag.__table__  # type: ignore[attr-defined]
_REMINDERS = Reminder.__table__  # type: ignore[attr-defined]


async def create_task(
    session: AsyncSession,
    *,
    user_id: str,
    data: TaskCreate,
    series_id: uuid.UUID | None = None,
    previous_task_id: uuid.UUID | None = None,
) -> TaskPublic:
    """Insert a task with its tags and reminders and write `task.created.v1`.

    `series_id`/`previous_task_id` are set for generated occurrences; a recurring task
    created by a user starts its own series (its id). Inserting a second task with the
    same `previous_task_id` violates a unique constraint (one successor per completion).
    Everything (task, tags, reminders, event) is one statement, so a caller may also run
    it outside a transaction: it is atomic by itself.
    """
    public, params = creation(
        user_id=user_id, data=data, series_id=series_id, previous_task_id=previous_task_id
    )
    await session.execute(CREATE_TASK, params)
    return public


def creation(
    *,
    user_id: str,
    data: TaskCreate,
    series_id: uuid.UUID | None = None,
    previous_task_id: uuid.UUID | None = None,
) -> tuple[TaskPublic, dict[str, Any]]:
    """The task `create_task` creates, and the parameters of `CREATE_TASK` that write it."""
    now = utcnow()
    task_id = uuid.uuid4()
    if data.recurrence is not None and series_id is None:
        series_id = task_id
    recurrence = data.recurrence
    reminders = new_reminders(data.reminders, due_at=data.due_at, previous=[])
    public = TaskPublic(
        id=task_id,
        title=data.title,
        description=data.description,
        priority=data.priority,
        due_at=data.due_at,
        timezone=data.timezone,
        tags=data.tags,
        reminders=reminders,
        recurrence=recurrence,
        completed=False,
        completed_at=None,
        series_id=series_id,
        created_at=now,
        updated_at=now,
    )
    row: dict[str, Any] = {
        "id": task_id,
        "user_id": user_id,
        "title": data.title,
        "description": data.description,
        "priority": data.priority,
        "due_at": data.due_at,
        "timezone": data.timezone,
        "rrule": recurrence.rrule if recurrence else None,
        "recurrence_anchor": recurrence.anchor.value if recurrence else None,
        "completed": False,
        "series_id": series_id,
        "previous_task_id": previous_task_id,
        "created_at": now,
        "updated_at": now,
    }
    params = {f"task_{name}": value for name, value in row.items()}
    params["tags"] = data.tags
    for name in REMINDER_FIELDS:
        params[f"reminder_{name}"] = [getattr(reminder, name) for reminder in reminders]
    params.update(event_params(events.TASK_CREATED, public, user_id=user_id))
    return public, params


async def update_task(
    session: AsyncSession, *, user_id: str, task_id: uuid.UUID, changes: TaskUpdate
) -> TaskPublic:
    """Apply a partial update; writes `task.updated.v1` when something actually changed."""
    current = await get_task(session, user_id=user_id, task_id=task_id, for_update=True)
    sent = changes.model_fields_set
    values: dict[str, Any] = {
        name: getattr(changes, name)
        for name in ("title", "description", "priority", "due_at", "timezone", "recurrence")
        if name in sent
    }
    merged = current.model_copy(update=values)
    _check_update(merged, changes)
    new_tags = changes.tags if "tags" in sent and changes.tags is not None else current.tags
    reminders_sent = "reminders" in sent and changes.reminders is not None
    due_changed = merged.due_at != current.due_at
    series_id = current.series_id
    if merged.recurrence is not None and series_id is None:
        series_id = current.id

    changed = (
        _row_fields(merged) != _row_fields(current)
        or new_tags != current.tags
        or reminders_sent
        or series_id != current.series_id
    )
    if not changed:
        return current

    now = utcnow()
    recurrence = merged.recurrence
    await session.execute(
        sa.update(_TASKS)
        .where(_TASKS.c.id == task_id)
        .values(
            title=merged.title,
            description=merged.description,
            priority=merged.priority,
            due_at=merged.due_at,
            timezone=merged.timezone,
            rrule=recurrence.rrule if recurrence else None,
            recurrence_anchor=recurrence.anchor.value if recurrence else None,
            series_id=series_id,
            updated_at=now,
        )
    )
    if new_tags != current.tags:
        await session.execute(sa.delete(_TAGS).where(_TAGS.c.task_id == task_id))
        await _insert_tags(session, task_id=task_id, user_id=user_id, tags=new_tags)
    reminders = current.reminders
    if reminders_sent:
        assert changes.reminders is not None
        await session.execute(sa.delete(_REMINDERS).where(_REMINDERS.c.task_id == task_id))
        reminders = await insert_reminders(
            session,
            task_id=task_id,
            user_id=user_id,
            reminders=changes.reminders,
            due_at=None if current.completed else merged.due_at,
            previous=current.reminders,
        )
    elif due_changed and not current.completed:
        reminders = await rearm_relative_reminders(
            session, reminders=current.reminders, due_at=merged.due_at
        )
    public = merged.model_copy(
        update={"tags": new_tags, "reminders": reminders, "series_id": series_id, "updated_at": now}
    )
    await emit_event(session, events.TASK_UPDATED, public, user_id=user_id)
    return public


def _row_fields(task: TaskPublic) -> tuple[Any, ...]:
    return (
        task.title,
        task.description,
        task.priority,
        task.due_at,
        task.timezone,
        task.recurrence,
    )


def _check_update(merged: TaskPublic, changes: TaskUpdate) -> None:
    """Rules that span fields, checked against the task as it would become."""
    if merged.due_at is None:
        if merged.recurrence is not None:
            loc: list[str | int] = [
                "body",
                "due_at" if "due_at" in changes.model_fields_set else "recurrence",
            ]
            raise invalid(loc, "recurrence needs the task to have a due_at")
        reminders: Sequence[ReminderCreate | ReminderPublic] = (
            changes.reminders if changes.reminders is not None else merged.reminders
        )
        if any(reminder.before_minutes is not None for reminder in reminders):
            field = "reminders" if changes.reminders is not None else "due_at"
            raise invalid(
                ["body", field], "before_minutes reminders need the task to have a due_at"
            )


async def complete_task(session: AsyncSession, *, user_id: str, task_id: uuid.UUID) -> TaskPublic:
    """Mark done (idempotent: completing a completed task changes nothing, emits nothing).

    Unfired reminders are disarmed (`remind_at` NULL) so the scan never fires them.
    """
    current = await get_task(session, user_id=user_id, task_id=task_id, for_update=True)
    if current.completed:
        return current
    public, params = completion(current, user_id=user_id)
    await session.execute(COMPLETE_TASK, params)
    return public


def completion(current: TaskPublic, *, user_id: str) -> tuple[TaskPublic, dict[str, Any]]:
    """An open task as `complete_task` leaves it, and the parameters of `COMPLETE_TASK`."""
    now = utcnow()
    reminders = [
        reminder if reminder.fired_at else reminder.model_copy(update={"remind_at": None})
        for reminder in current.reminders
    ]
    public = current.model_copy(
        update={"completed": True, "completed_at": now, "updated_at": now, "reminders": reminders}
    )
    params = event_params(events.TASK_COMPLETED, public, user_id=user_id)
    return public, {"task_key": current.id, "completed_at": now, **params}


async def reopen_task(session: AsyncSession, *, user_id: str, task_id: uuid.UUID) -> TaskPublic:
    """Mark not done (idempotent). Unfired reminders whose time is still ahead are re-armed;
    those whose time passed while the task was done stay disarmed rather than fire late."""
    current = await get_task(session, user_id=user_id, task_id=task_id, for_update=True)
    if not current.completed:
        return current
    now = utcnow()
    await session.execute(
        UPDATE_TASK,
        {"task_key": task_id, "completed": False, "completed_at": None, "updated_at": now},
    )
    reminders: list[ReminderPublic] = []
    for reminder in current.reminders:
        when = fire_time(
            before_minutes=reminder.before_minutes, at=reminder.at, due_at=current.due_at
        )
        if reminder.fired_at is None and when is not None and when > now:
            await session.execute(
                sa.update(_REMINDERS).where(_REMINDERS.c.id == reminder.id).values(remind_at=when)
            )
            reminder = reminder.model_copy(update={"remind_at": when})
        reminders.append(reminder)
    public = current.model_copy(
        update={"completed": False, "completed_at": None, "updated_at": now, "reminders": reminders}
    )
    await emit_event(session, events.TASK_REOPENED, public, user_id=user_id)
    return public


async def delete_task(session: AsyncSession, *, user_id: str, task_id: uuid.UUID) -> TaskPublic:
    """Delete the task (tags and reminders cascade) and write `task.deleted.v1`."""
    current = await get_task(session, user_id=user_id, task_id=task_id, for_update=True)
    await session.execute(sa.delete(_TASKS).where(_TASKS.c.id == task_id))
    await emit_event(session, events.TASK_DELETED, current, user_id=user_id)
    return current


async def _insert_tags(
    session: AsyncSession, *, task_id: uuid.UUID, user_id: str, tags: list[str]
) -> None:
    if tags:
        await session.execute(
            insert(_TAGS),
            [{"task_id": task_id, "name": name, "user_id": user_id} for name in tags],
        )
