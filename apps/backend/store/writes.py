"""Write statements built once, and the task events they carry to the outbox.

Every change of a task writes its event (`task.*.v1`) in the same statement or the same
transaction as the change itself, so a change and its event commit or roll back
together. Statements are built once and executed with parameters (the SET or VALUES
columns are the keys given): building a statement per call costs more than executing a
cached one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from apps.backend.models import Reminder, Tag, Task
from apps.backend.schemas import TaskPublic
from apps.shared.events.outbox import outbox_values
from apps.shared.models import OutboxEvent

_TASKS = Task.__table__  # type: ignore[attr-defined]
_TAGS = Tag.__table__  # type: ignore[attr-defined]
_REMINDERS = Reminder.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
_INSERT_EVENT = sa.insert(_OUTBOX)
UPDATE_TASK = sa.update(_TASKS).where(_TASKS.c.id == sa.bindparam("task_key"))

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
    "traceparent",
    "tracestate",
)
REMINDER_FIELDS = ("id", "before_minutes", "at", "remind_at", "fired_at")


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
        for name in REMINDER_FIELDS
    ]
    rows = sa.func.unnest(*arrays).table_valued(*REMINDER_FIELDS).render_derived(name="r")
    reminders = sa.insert(_REMINDERS).from_select(
        ["task_id", "user_id", *REMINDER_FIELDS],
        sa.select(task_key, user_id, *(rows.c[name] for name in REMINDER_FIELDS)),
    )
    return _insert_event().add_cte(
        task.cte("new_task"), tags.cte("new_tags"), reminders.cte("new_reminders")
    )


def _insert_event() -> sa.Insert:
    """The outbox row, its columns as parameters `event_*` (see `event_params`)."""
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


CREATE_TASK = _create_statement()
COMPLETE_TASK = _complete_statement()


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


def event_params(event_type: str, task: TaskPublic, *, user_id: str) -> dict[str, Any]:
    """`_event_values` as the parameters `event_*` of a statement built with `_insert_event`."""
    values = _event_values(event_type, task, user_id=user_id)
    return {f"event_{name}": value for name, value in values.items()}


async def emit_event(
    session: AsyncSession, event_type: str, task: TaskPublic, *, user_id: str
) -> None:
    """Write the task's event to the outbox, in the caller's transaction.

    The row `write_event` would add, inserted with Core: the ORM's unit of work for one
    object (construction, flush, RETURNING the id) cost about as much as a whole insert
    statement.
    """
    await session.execute(_INSERT_EVENT, _event_values(event_type, task, user_id=user_id))
