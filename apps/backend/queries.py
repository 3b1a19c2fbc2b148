"""SELECT statements for reading tasks as the API shows them, in one round trip.

Tags come back as a sorted array and reminders as a JSON array from correlated
subqueries, and the list's total from a window count, so a page costs one query.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from apps.backend.models import Reminder, Tag, Task
from apps.backend.schemas import SortField, TaskQuery

_TASKS = Task.__table__  # type: ignore[attr-defined]
_TAGS = Tag.__table__  # type: ignore[attr-defined]
_REMINDERS = Reminder.__table__  # type: ignore[attr-defined]

SEARCH_CONFIG = "english"

_PUBLIC_COLUMNS = [column for column in _TASKS.c if column.name not in ("user_id", "search_vector")]

_SORT_COLUMNS: dict[SortField, Any] = {
    "due_at": _TASKS.c.due_at,
    "priority": _TASKS.c.priority,
    "created_at": _TASKS.c.created_at,
    "updated_at": _TASKS.c.updated_at,
    "title": _TASKS.c.title,
}
_ASCENDING_BY_DEFAULT = {"due_at", "title"}


def _tags_array() -> sa.ColumnElement[Any]:
    names = (
        sa.select(_TAGS.c.name)
        .where(_TAGS.c.task_id == _TASKS.c.id)
        .order_by(_TAGS.c.name)
        .scalar_subquery()
    )
    return sa.func.array(names).label("tags")


def _reminders_json() -> sa.ColumnElement[Any]:
    # Ordered like the Python side orders them: by fire time, disarmed last, then id.
    return sa.literal_column(
        "(SELECT coalesce(json_agg(json_build_object("
        "'id', r.id, 'before_minutes', r.before_minutes, 'at', r.at, "
        "'remind_at', r.remind_at, 'fired_at', r.fired_at) "
        "ORDER BY r.remind_at IS NULL, r.remind_at, r.id), '[]'::json) "
        "FROM reminders AS r WHERE r.task_id = tasks.id)"
    ).label("reminders")


def public_task_select() -> sa.Select[Any]:
    """Every column the API shows, plus tags and reminders, for tasks (filter it)."""
    return sa.select(*_PUBLIC_COLUMNS, _tags_array(), _reminders_json())


def task_list_select(*, user_id: str, query: TaskQuery) -> sa.Select[Any]:
    """One page of the user's tasks matching `query`, each row with the `total` count."""
    statement = public_task_select().add_columns(sa.func.count().over().label("total"))
    statement = statement.where(_TASKS.c.user_id == user_id)
    if query.status != "all":
        statement = statement.where(_TASKS.c.completed.is_(query.status == "completed"))
    if query.priority:
        statement = statement.where(_TASKS.c.priority.in_(query.priority))
    if query.tag:
        tagged = (
            sa.select(_TAGS.c.task_id)
            .where(_TAGS.c.user_id == user_id, _TAGS.c.name.in_(sorted(set(query.tag))))
            .group_by(_TAGS.c.task_id)
            .having(sa.func.count() == len(set(query.tag)))
        )
        statement = statement.where(_TASKS.c.id.in_(tagged))
    if query.due_from is not None:
        statement = statement.where(_TASKS.c.due_at >= query.due_from)
    if query.due_to is not None:
        statement = statement.where(_TASKS.c.due_at <= query.due_to)
    if query.overdue is not None:
        # due_at IS NOT NULL keeps the negation two-valued for undated tasks.
        overdue = sa.and_(
            _TASKS.c.due_at.is_not(None),
            _TASKS.c.due_at < sa.func.now(),
            _TASKS.c.completed.is_(False),
        )
        statement = statement.where(overdue if query.overdue else sa.not_(overdue))
    tsquery = None
    if query.q is not None:
        tsquery = sa.func.websearch_to_tsquery(sa.literal(SEARCH_CONFIG, pg.REGCONFIG), query.q)
        statement = statement.where(_TASKS.c.search_vector.bool_op("@@")(tsquery))
    return statement.order_by(*_ordering(query, tsquery)).limit(query.limit).offset(query.offset)


def _ordering(query: TaskQuery, tsquery: sa.ColumnElement[Any] | None) -> list[Any]:
    if query.sort is None and tsquery is not None:
        rank = sa.func.ts_rank(_TASKS.c.search_vector, tsquery)
        return [rank.desc(), _TASKS.c.created_at.desc(), _TASKS.c.id.desc()]
    sort = query.sort or "created_at"
    order = query.order or ("asc" if sort in _ASCENDING_BY_DEFAULT else "desc")
    column = _SORT_COLUMNS[sort]
    if order == "asc":
        # Undated tasks sort last either way: "no due date" is not "due first".
        return [column.asc().nulls_last(), _TASKS.c.id.asc()]
    return [column.desc().nulls_last(), _TASKS.c.id.desc()]
