"""Data access for tasks: every change writes its event to the outbox in the same transaction.

Functions take the caller's session and never commit: the caller (a route, or the
internal next-occurrence route) decides the transaction boundary, so a change and its
event always commit or roll back together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from apps.backend.fields import Priority
from apps.backend.models import Reminder, Tag, Task
from apps.backend.queries import (
    public_task_select,
    task_by_id_select,
    task_count_statement,
    task_list_params,
    task_list_statement,
)
from apps.backend.schemas import (
    REMINDER_DATA,
    Recurrence,
    ReminderCreate,
    ReminderPublic,
    TagCount,
    TaskCreate,
    TaskData,
    TaskListData,
    TaskPublic,
    TaskQuery,
    TaskUpdate,
)
from apps.contracts import events
from apps.shared.errors import invalid, not_found
from apps.shared.events.outbox import outbox_values
from apps.shared.models import OutboxEvent
from apps.shared.timeutil import utcnow

_TASKS = Task.__table__  # type: ignore[attr-defined]
_TAGS = Tag.__table__  # type: ignore[attr-defined]
_REMINDERS = Reminder.__table__  # type: ignore[attr-defined]

# Built once and executed with parameters (the SET or VALUES columns are the keys
# given): building a statement per call costs more than executing a cached one.
_OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
_INSERT_EVENT = sa.insert(_OUTBOX)
_UPDATE_TASK = sa.update(_TASKS).where(_TASKS.c.id == sa.bindparam("task_key"))

_ID_LOC: list[str | int] = ["path", "task_id"]

_CREATED_COLUMNS = (
    "id",
    "user_id",
    "title",
    "description",
    "priority",
    "due_at",
    "timezone",
    "rrule",
    "recurrence_anchor",
    "completed",
    "series_id",
    "previous_task_id",
    "created_at",
    "updated_at",
)
_EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "topic",
    "partition_key",
    "payload",
    "created_at",
    "attempts",
    "next_attempt_at",
)
_REMINDER_FIELDS = ("id", "before_minutes", "at", "remind_at", "fired_at")


def _create_statement() -> sa.Insert:
    """A task with its tags, its reminders and its event, written by one statement.

    One round trip instead of five (task, tags, reminders, outbox row, each through the
    driver and SQLAlchemy): data-modifying CTEs all run, whether or not the outer
    statement reads them, and foreign keys are checked at the end of the statement, when
    the task row exists. Tags and reminders come in as arrays (`unnest`), so the SQL is
    the same for any number of them and stays prepared. Parameters (prefixed: a bind
    parameter may not be named like a column): the task's columns as `task_*`, `tags`,
    the reminders' columns as `reminder_*` arrays, the outbox row's as `event_*`.
    """
    task_values = {
        name: sa.bindparam(f"task_{name}", type_=_TASKS.c[name].type) for name in _CREATED_COLUMNS
    }
    task_key, user_id = task_values["id"], task_values["user_id"]
    task = sa.insert(_TASKS).values(task_values)
    tag_names = sa.func.unnest(sa.bindparam("tags", type_=pg.ARRAY(_TAGS.c.name.type)))
    tags = sa.insert(_TAGS).from_select(
        ["task_id", "name", "user_id"], sa.select(task_key, tag_names, user_id)
    )
    arrays = [
        sa.bindparam(f"reminder_{name}", type_=pg.ARRAY(_REMINDERS.c[name].type))
        for name in _REMINDER_FIELDS
    ]
    rows = sa.func.unnest(*arrays).table_valued(*_REMINDER_FIELDS).render_derived(name="r")
    reminders = sa.insert(_REMINDERS).from_select(
        ["task_id", "user_id", *_REMINDER_FIELDS],
        sa.select(task_key, user_id, *(rows.c[name] for name in _REMINDER_FIELDS)),
    )
    return _insert_event().add_cte(
        task.cte("new_task"), tags.cte("new_tags"), reminders.cte("new_reminders")
    )


def _insert_event() -> sa.Insert:
    """The outbox row, its columns as parameters `event_*` (see `_event_params`)."""
    return sa.insert(_OUTBOX).values(
        {name: sa.bindparam(f"event_{name}", type_=_OUTBOX.c[name].type) for name in _EVENT_COLUMNS}
    )


def _complete_statement() -> sa.Insert:
    """Mark a task done, disarm its unfired reminders and write its event: one statement
    (one round trip instead of three). Parameters `task_key`, `completed_at` and the
    outbox row's `event_*`."""
    task_key = sa.bindparam("task_key", type_=_TASKS.c.id.type)
    moment = sa.bindparam("completed_at", type_=_TASKS.c.completed_at.type)
    done = (
        sa.update(_TASKS)
        .where(_TASKS.c.id == task_key)
        .values(completed=sa.true(), completed_at=moment, updated_at=moment)
    )
    disarmed = (
        sa.update(_REMINDERS)
        .where(_REMINDERS.c.task_id == task_key, _REMINDERS.c.fired_at.is_(None))
        .values(remind_at=sa.null())
    )
    return _insert_event().add_cte(done.cte("done"), disarmed.cte("disarmed"))


_CREATE = _create_statement()
_COMPLETE = _complete_statement()


def fire_time(
    *, before_minutes: int | None, at: datetime | None, due_at: datetime | None
) -> datetime | None:
    """When a reminder fires: a fixed `at`, or `before_minutes` before the due time."""
    if at is not None:
        return at
    if before_minutes is not None and due_at is not None:
        return due_at - timedelta(minutes=before_minutes)
    return None


def event_data(task: TaskPublic, *, user_id: str) -> dict[str, Any]:
    """The data of a task.*.v1 event: the task as the API shows it, plus its owner."""
    data = task.model_dump(mode="json")
    data["user_id"] = user_id
    return data


def _event_values(event_type: str, task: TaskPublic, *, user_id: str) -> dict[str, Any]:
    """The outbox row of the task's event (validated the same way `write_event` does)."""
    return outbox_values(
        event_type=event_type,
        data=event_data(task, user_id=user_id),
        partition_key=str(task.id),
    )


def _event_params(event_type: str, task: TaskPublic, *, user_id: str) -> dict[str, Any]:
    """`_event_values` as the parameters `event_*` of a statement built with `_insert_event`."""
    values = _event_values(event_type, task, user_id=user_id)
    return {f"event_{name}": value for name, value in values.items()}


async def _emit(session: AsyncSession, event_type: str, task: TaskPublic, *, user_id: str) -> None:
    """Write the task's event to the outbox, in the caller's transaction.

    The row `write_event` would add, inserted with Core: the ORM's unit of work for one
    object (construction, flush, RETURNING the id) cost about as much as a whole insert
    statement.
    """
    await session.execute(_INSERT_EVENT, _event_values(event_type, task, user_id=user_id))


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
    now = utcnow()
    task_id = uuid.uuid4()
    if data.recurrence is not None and series_id is None:
        series_id = task_id
    recurrence = data.recurrence
    reminders = _new_reminders(data.reminders, due_at=data.due_at, previous=[])
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
    for name in _REMINDER_FIELDS:
        params[f"reminder_{name}"] = [getattr(reminder, name) for reminder in reminders]
    params.update(_event_params(events.TASK_CREATED, public, user_id=user_id))
    await session.execute(_CREATE, params)
    return public


async def get_task(
    session: AsyncSession, *, user_id: str, task_id: uuid.UUID, for_update: bool = False
) -> TaskPublic:
    """The task as the API shows it; 404 when it is missing or someone else's."""
    statement = task_by_id_select(for_update=for_update)
    params = {"task_id": task_id, "user_id": user_id}
    row = (await session.execute(statement, params)).mappings().first()
    if row is None:
        raise not_found(_ID_LOC, "task")
    return _public_from_row(row)


async def find_successor(
    session: AsyncSession, *, user_id: str, previous_task_id: uuid.UUID
) -> TaskPublic | None:
    """The occurrence generated from `previous_task_id`, if there is one already."""
    statement = public_task_select().where(
        _TASKS.c.previous_task_id == previous_task_id, _TASKS.c.user_id == user_id
    )
    row = (await session.execute(statement)).mappings().first()
    return None if row is None else _public_from_row(row)


async def list_tasks(session: AsyncSession, *, user_id: str, query: TaskQuery) -> TaskListData:
    """One page of tasks as plain data, to serialise with `TASK_LIST_DATA` (a `TaskList`)."""
    params = task_list_params(user_id=user_id, query=query)
    rows = (await session.execute(task_list_statement(query), params)).mappings()
    items: list[TaskData] = []
    total: int | None = None
    for row in rows:
        total = row["total"]
        items.append(_data_from_row(row))
    if total is None:
        # An offset past the end returns no row to read the count from.
        total = await _count(session, params=params, query=query) if query.offset else 0
    return {"items": items, "total": total}


def _data_from_row(row: Any) -> TaskData:
    """A task as the API shows it, from a row of `public_task_select` (not re-validated:
    the database holds only what validated input put there)."""
    rrule = row["rrule"]
    reminders = row["reminders"]
    return {
        "title": row["title"],
        "description": row["description"],
        "priority": row["priority"],
        "due_at": row["due_at"],
        "timezone": row["timezone"],
        "id": row["id"],
        "tags": row["tags"],
        "reminders": REMINDER_DATA.validate_python(reminders) if reminders else [],
        "recurrence": (
            None if rrule is None else {"rrule": rrule, "anchor": row["recurrence_anchor"]}
        ),
        "completed": row["completed"],
        "completed_at": row["completed_at"],
        "series_id": row["series_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def _count(session: AsyncSession, *, params: dict[str, Any], query: TaskQuery) -> int:
    return int((await session.execute(task_count_statement(query), params)).scalar_one())


async def list_tags(session: AsyncSession, *, user_id: str) -> list[TagCount]:
    statement = (
        sa.select(_TAGS.c.name, sa.func.count().label("count"))
        .where(_TAGS.c.user_id == user_id)
        .group_by(_TAGS.c.name)
        .order_by(_TAGS.c.name)
    )
    rows = (await session.execute(statement)).all()
    return [TagCount(name=name, count=count) for name, count in rows]


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
        reminders = await _insert_reminders(
            session,
            task_id=task_id,
            user_id=user_id,
            reminders=changes.reminders,
            due_at=None if current.completed else merged.due_at,
            previous=current.reminders,
        )
    elif due_changed and not current.completed:
        reminders = await _rearm_relative_reminders(
            session, reminders=current.reminders, due_at=merged.due_at
        )
    public = merged.model_copy(
        update={"tags": new_tags, "reminders": reminders, "series_id": series_id, "updated_at": now}
    )
    await _emit(session, events.TASK_UPDATED, public, user_id=user_id)
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
    now = utcnow()
    reminders = [
        reminder if reminder.fired_at else reminder.model_copy(update={"remind_at": None})
        for reminder in current.reminders
    ]
    public = current.model_copy(
        update={"completed": True, "completed_at": now, "updated_at": now, "reminders": reminders}
    )
    params = _event_params(events.TASK_COMPLETED, public, user_id=user_id)
    await session.execute(_COMPLETE, {"task_key": task_id, "completed_at": now, **params})
    return public


async def reopen_task(session: AsyncSession, *, user_id: str, task_id: uuid.UUID) -> TaskPublic:
    """Mark not done (idempotent). Unfired reminders whose time is still ahead are re-armed;
    those whose time passed while the task was done stay disarmed rather than fire late."""
    current = await get_task(session, user_id=user_id, task_id=task_id, for_update=True)
    if not current.completed:
        return current
    now = utcnow()
    await session.execute(
        _UPDATE_TASK,
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
    await _emit(session, events.TASK_REOPENED, public, user_id=user_id)
    return public


async def delete_task(session: AsyncSession, *, user_id: str, task_id: uuid.UUID) -> TaskPublic:
    """Delete the task (tags and reminders cascade) and write `task.deleted.v1`."""
    current = await get_task(session, user_id=user_id, task_id=task_id, for_update=True)
    await session.execute(sa.delete(_TASKS).where(_TASKS.c.id == task_id))
    await _emit(session, events.TASK_DELETED, current, user_id=user_id)
    return current


async def _insert_tags(
    session: AsyncSession, *, task_id: uuid.UUID, user_id: str, tags: list[str]
) -> None:
    if tags:
        await session.execute(
            insert(_TAGS),
            [{"task_id": task_id, "name": name, "user_id": user_id} for name in tags],
        )


def _new_reminders(
    reminders: Sequence[ReminderCreate],
    *,
    due_at: datetime | None,
    previous: Sequence[ReminderPublic],
) -> list[ReminderPublic]:
    """New reminder rows with their fire times (none when `due_at`-relative and undated),
    in the order the API shows them.

    A reminder identical to one that already fired keeps its `fired_at`, so re-sending
    the same list does not fire it twice.
    """
    fired = {(r.before_minutes, r.at, r.remind_at): r.fired_at for r in previous if r.fired_at}
    created: list[ReminderPublic] = []
    for reminder in reminders:
        remind_at = fire_time(before_minutes=reminder.before_minutes, at=reminder.at, due_at=due_at)
        created.append(
            ReminderPublic(
                id=uuid.uuid4(),
                before_minutes=reminder.before_minutes,
                at=reminder.at,
                remind_at=remind_at,
                fired_at=fired.get((reminder.before_minutes, reminder.at, remind_at)),
            )
        )
    return sorted(created, key=_reminder_order)


async def _insert_reminders(
    session: AsyncSession,
    *,
    task_id: uuid.UUID,
    user_id: str,
    reminders: Sequence[ReminderCreate],
    due_at: datetime | None,
    previous: Sequence[ReminderPublic],
) -> list[ReminderPublic]:
    """Insert reminders (see `_new_reminders`) and return them as the API shows them."""
    created = _new_reminders(reminders, due_at=due_at, previous=previous)
    if created:
        await session.execute(
            insert(_REMINDERS),
            [
                {
                    "id": r.id,
                    "task_id": task_id,
                    "user_id": user_id,
                    "before_minutes": r.before_minutes,
                    "at": r.at,
                    "remind_at": r.remind_at,
                    "fired_at": r.fired_at,
                }
                for r in created
            ],
        )
    return created


async def _rearm_relative_reminders(
    session: AsyncSession, *, reminders: list[ReminderPublic], due_at: datetime | None
) -> list[ReminderPublic]:
    """The due time moved: recompute `before_minutes` fire times and re-arm them."""
    updated: list[ReminderPublic] = []
    for reminder in reminders:
        if reminder.before_minutes is not None and due_at is not None:
            when = due_at - timedelta(minutes=reminder.before_minutes)
            if when != reminder.remind_at:
                await session.execute(
                    sa.update(_REMINDERS)
                    .where(_REMINDERS.c.id == reminder.id)
                    .values(remind_at=when, fired_at=None)
                )
                reminder = reminder.model_copy(update={"remind_at": when, "fired_at": None})
        updated.append(reminder)
    return sorted(updated, key=_reminder_order)


def _reminder_order(reminder: ReminderPublic) -> tuple[bool, datetime | None, str]:
    return (reminder.remind_at is None, reminder.remind_at, str(reminder.id))


def _public_from_row(row: Any) -> TaskPublic:
    rrule = row["rrule"]
    return TaskPublic(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        priority=Priority(row["priority"]),
        due_at=row["due_at"],
        timezone=row["timezone"],
        tags=row["tags"],
        reminders=[ReminderPublic.model_validate(r) for r in row["reminders"] or ()],
        recurrence=(
            Recurrence(rrule=rrule, anchor=row["recurrence_anchor"]) if rrule is not None else None
        ),
        completed=row["completed"],
        completed_at=row["completed_at"],
        series_id=row["series_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
