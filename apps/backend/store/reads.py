"""Reading tasks as the API shows them: one task, a list page, the user's tags."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from apps.backend.fields import Priority
from apps.backend.models import Tag, Task
from apps.backend.schemas import (
    REMINDER_DATA,
    Recurrence,
    ReminderPublic,
    TagCount,
    TaskData,
    TaskListData,
    TaskPublic,
    TaskQuery,
)
from apps.backend.store.queries import (
    public_task_select,
    task_by_id_select,
    task_count_statement,
    task_list_params,
    task_list_statement,
)
from apps.shared.errors import not_found

_TASKS = Task.__table__  # type: ignore[attr-defined]
_TAGS = Tag.__table__  # type: ignore[attr-defined]

_ID_LOC: list[str | int] = ["path", "task_id"]


async def get_task(
    session: AsyncSession, *, user_id: str, task_id: uuid.UUID, for_update: bool = False
) -> TaskPublic:
    """The task as the API shows it; 404 when it is missing or someone else's."""
    statement = task_by_id_select(for_update=for_update)
    params = {"task_id": task_id, "user_id": user_id}
    row = (await session.execute(statement, params)).mappings().first()
    if row is None:
        raise not_found(_ID_LOC, "task")
    return public_from_row(row)


async def find_successor(
    session: AsyncSession, *, user_id: str, previous_task_id: uuid.UUID
) -> TaskPublic | None:
    """The occurrence generated from `previous_task_id`, if there is one already."""
    statement = public_task_select().where(
        _TASKS.c.previous_task_id == previous_task_id, _TASKS.c.user_id == user_id
    )
    row = (await session.execute(statement)).mappings().first()
    return None if row is None else public_from_row(row)


async def list_tasks(session: AsyncSession, *, user_id: str, query: TaskQuery) -> TaskListData:
    """One page of tasks as plain data, to serialise with `TASK_LIST_DATA` (a `TaskList`)."""
    params = task_list_params(user_id=user_id, query=query)
    statement = task_list_statement(query)
    rows = (await session.execute(statement, params)).all()
    at = positions(statement)
    items = [data_from_row(row, at) for row in rows]
    if rows:
        total = int(rows[-1][at.total])
    else:
        # An offset past the end returns no row to read the count from.
        total = await _count(session, params=params, query=query) if query.offset else 0
    return {"items": items, "total": total}


class Positions(NamedTuple):
    """Where each column of a list statement's rows is (rows are read by position: a
    mapping per row cost more than the rest of turning the row into a task)."""

    title: int
    description: int
    priority: int
    due_at: int
    timezone: int
    id: int
    tags: int
    reminders: int
    rrule: int
    recurrence_anchor: int
    completed: int
    completed_at: int
    series_id: int
    created_at: int
    updated_at: int
    total: int


def positions(statement: sa.Select[Any]) -> Positions:
    """The `Positions` of a list statement's columns (cached per statement)."""
    found = _POSITIONS.get(statement)
    if found is None:
        keys = [column.key for column in statement.selected_columns]
        found = _POSITIONS[statement] = Positions(*(keys.index(f) for f in Positions._fields))
    return found


_POSITIONS: dict[sa.Select[Any], Positions] = {}
# Priorities as the driver gives them (the enum's value) or SQLAlchemy does (the member).
_PRIORITIES: dict[Any, Priority] = {**{p.value: p for p in Priority}, **{p: p for p in Priority}}


def data_from_row(row: Sequence[Any], at: Positions) -> TaskData:
    """A task as the API shows it, from a row of a list statement (not re-validated: the
    database holds only what validated input put there), from SQLAlchemy or from the
    driver (apps.backend.store.driver)."""
    rrule = row[at.rrule]
    reminders = row[at.reminders]
    return {
        "title": row[at.title],
        "description": row[at.description],
        "priority": _PRIORITIES[row[at.priority]],
        "due_at": row[at.due_at],
        "timezone": row[at.timezone],
        "id": row[at.id],
        "tags": row[at.tags],
        "reminders": REMINDER_DATA.validate_python(reminders) if reminders else [],
        "recurrence": (
            None if rrule is None else {"rrule": rrule, "anchor": row[at.recurrence_anchor]}
        ),
        "completed": row[at.completed],
        "completed_at": row[at.completed_at],
        "series_id": row[at.series_id],
        "created_at": row[at.created_at],
        "updated_at": row[at.updated_at],
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


def public_from_row(row: Any) -> TaskPublic:
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
