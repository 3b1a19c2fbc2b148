"""SELECT statements for reading tasks as the API shows them.

A list page is one statement (one round trip):

- its rows come from a LIMITed select on `tasks` alone, which the list indexes serve in
  sort order, so the scan stops after the page instead of visiting every match;
- tags (a sorted array) and reminders (a JSON array, NULL when there are none) are
  looked up for the page's rows only;
- `total` is a scalar subquery counting the same filters, which an index-only scan can
  answer without touching the rows.

Sorting by search relevance is the exception: ranking has to visit every match anyway,
so there one pass yields both the page and a window count.

Statements are built once per *shape* of query (which filters are present, the sort
and order) with bind parameters for the values, and cached: building one costs more
than executing it through SQLAlchemy's compiled cache. `task_list_params` gives the
values for one request.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from apps.backend.models import Reminder, Tag, Task
from apps.backend.schemas import SortField, TaskQuery

_TASKS = Task.__table__  # type: ignore[attr-defined]
_TAGS = Tag.__table__  # type: ignore[attr-defined]
_REMINDERS = Reminder.__table__  # type: ignore[attr-defined]

SEARCH_CONFIG = "english"

_HIDDEN = ("user_id", "search_vector", "previous_task_id")
_PUBLIC_COLUMNS = [column for column in _TASKS.c if column.name not in _HIDDEN]

_SORT_COLUMNS: dict[SortField, Any] = {
    "due_at": _TASKS.c.due_at,
    "priority": _TASKS.c.priority,
    "created_at": _TASKS.c.created_at,
    "updated_at": _TASKS.c.updated_at,
    "title": _TASKS.c.title,
}
_ASCENDING_BY_DEFAULT = {"due_at", "title"}

Order = Literal["asc", "desc"]


def _tags_array(task_id: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    names = (
        sa.select(_TAGS.c.name)
        .where(_TAGS.c.task_id == task_id)
        .order_by(_TAGS.c.name)
        .scalar_subquery()
    )
    return sa.func.array(names).label("tags")


def _reminders_json(task_id: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The task's reminders as a JSON array, NULL when it has none (nothing to parse).

    Ordered like the Python side orders them: by fire time, disarmed last, then id."""
    reminder = _REMINDERS
    fields: list[Any] = []
    for name in ("id", "before_minutes", "at", "remind_at", "fired_at"):
        fields += [sa.literal_column(f"'{name}'"), reminder.c[name]]
    document = sa.func.json_build_object(*fields)
    ordered = pg.aggregate_order_by(
        document, reminder.c.remind_at.is_(None), reminder.c.remind_at, reminder.c.id
    )
    return (
        sa.select(sa.func.json_agg(ordered, type_=sa.types.NullType()))
        .where(reminder.c.task_id == task_id)
        .scalar_subquery()
        .label("reminders")
    )


def public_task_select() -> sa.Select[Any]:
    """Every column the API shows, plus tags and reminders, for tasks (filter it)."""
    return sa.select(*_PUBLIC_COLUMNS, _tags_array(_TASKS.c.id), _reminders_json(_TASKS.c.id))


@lru_cache(maxsize=2)
def task_by_id_select(*, for_update: bool) -> sa.Select[Any]:
    """One task of one user (parameters `task_id`, `user_id`), locked if `for_update`."""
    statement = public_task_select().where(
        _TASKS.c.id == sa.bindparam("task_id"), _TASKS.c.user_id == sa.bindparam("user_id")
    )
    return statement.with_for_update(of=_TASKS) if for_update else statement


class _Shape(NamedTuple):
    """What decides a list statement's SQL; the values go in as bind parameters."""

    status: str
    priority: bool
    tag: bool
    due_from: bool
    due_to: bool
    overdue: bool | None
    search: bool
    sort: SortField | None
    order: Order


def _shape(query: TaskQuery) -> _Shape:
    order: Order
    if query.sort is None and query.q is not None:
        order = "desc"  # relevance
    else:
        sort = query.sort or "created_at"
        order = query.order or ("asc" if sort in _ASCENDING_BY_DEFAULT else "desc")
    return _Shape(
        status=query.status,
        priority=bool(query.priority),
        tag=bool(query.tag),
        due_from=query.due_from is not None,
        due_to=query.due_to is not None,
        overdue=query.overdue,
        search=query.q is not None,
        sort=query.sort,
        order=order,
    )


def _tsquery() -> sa.ColumnElement[Any]:
    return sa.func.websearch_to_tsquery(
        sa.literal(SEARCH_CONFIG, pg.REGCONFIG), sa.bindparam("q", type_=sa.Text)
    )


def _filters(shape: _Shape) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses over `tasks`. Comparisons on `completed` are written `= false`
    rather than `IS false` (the same for a NOT NULL column) so indexes can use them."""
    user_id = sa.bindparam("user_id", type_=sa.String)
    clauses: list[sa.ColumnElement[bool]] = [_TASKS.c.user_id == user_id]
    if shape.status != "all":
        clauses.append(
            _TASKS.c.completed == (sa.true() if shape.status == "completed" else sa.false())
        )
    if shape.priority:
        clauses.append(_TASKS.c.priority.in_(sa.bindparam("priority", expanding=True)))
    if shape.tag:
        tagged = (
            sa.select(_TAGS.c.task_id)
            .where(
                _TAGS.c.user_id == user_id, _TAGS.c.name.in_(sa.bindparam("tag", expanding=True))
            )
            .group_by(_TAGS.c.task_id)
            .having(sa.func.count() == sa.bindparam("tag_count", type_=sa.Integer))
        )
        clauses.append(_TASKS.c.id.in_(tagged))
    if shape.due_from:
        clauses.append(_TASKS.c.due_at >= sa.bindparam("due_from", type_=_TASKS.c.due_at.type))
    if shape.due_to:
        clauses.append(_TASKS.c.due_at <= sa.bindparam("due_to", type_=_TASKS.c.due_at.type))
    if shape.overdue is not None:
        # due_at IS NOT NULL keeps the negation two-valued for undated tasks.
        overdue = sa.and_(
            _TASKS.c.due_at.is_not(None),
            _TASKS.c.due_at < sa.func.now(),
            _TASKS.c.completed == sa.false(),
        )
        clauses.append(overdue if shape.overdue else sa.not_(overdue))
    if shape.search:
        clauses.append(_TASKS.c.search_vector.bool_op("@@")(_tsquery()))
    return clauses


def _direction(column: Any, order: Order, *, nullable: bool) -> Any:
    """`column` sorted in `order`, NULLs (undated tasks) last either way: "no due date"
    is not "due first". Only nullable columns say NULLS LAST: on a NOT NULL column it
    changes nothing, but it would keep PostgreSQL from reading a plain index in order."""
    ordered = column.asc() if order == "asc" else column.desc()
    return ordered.nulls_last() if nullable else ordered


def _ordering(shape: _Shape, column: Callable[[str], Any]) -> list[Any]:
    """ORDER BY of a page; `column(name)` is the table's column or the page subquery's."""
    if shape.sort is None and shape.search:
        return [column("rank").desc(), column("created_at").desc(), column("id").desc()]
    sort = _SORT_COLUMNS[shape.sort or "created_at"]
    return [
        _direction(column(sort.name), shape.order, nullable=sort.nullable),
        _direction(column("id"), shape.order, nullable=False),
    ]


@lru_cache(maxsize=256)
def _list_statement(shape: _Shape) -> sa.Select[Any]:
    if shape.sort is None and shape.search:
        return _relevance_statement(shape)
    page = (
        sa.select(*_PUBLIC_COLUMNS)
        .where(*_filters(shape))
        .order_by(*_ordering(shape, lambda name: _TASKS.c[name]))
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .offset(sa.bindparam("offset", type_=sa.Integer))
        .subquery("page")
    )
    return sa.select(
        *(page.c[column.name] for column in _PUBLIC_COLUMNS),
        _tags_array(page.c.id),
        _reminders_json(page.c.id),
        _count_statement(shape).scalar_subquery().label("total"),
    ).order_by(*_ordering(shape, lambda name: page.c[name]))


def _relevance_statement(shape: _Shape) -> sa.Select[Any]:
    """Search sorted by relevance: ranking visits every match anyway, so the same pass
    counts them (a window count). The pass carries only what sorting needs; the page's
    rows are read afterwards by id.

    The matches are ranked in a subquery of their own (`matches`, kept from being merged
    into the outer query by its OFFSET 0) so that each row the window count holds is
    id, created_at and rank: merged, PostgreSQL computes the rank above the window and
    makes it hold every match's search_vector too, about 200 bytes a row, which at 15,000
    matches (100,000 tasks) outgrew work_mem and spilled to disk, making a search cost
    twice as much per match as at 10,000 tasks.
    """
    rank = sa.func.ts_rank(_TASKS.c.search_vector, _tsquery()).label("rank")
    matches = (
        sa.select(_TASKS.c.id, _TASKS.c.created_at, rank)
        .where(*_filters(shape))
        .offset(sa.literal_column("0"))
        .subquery("matches")
    )
    ranked = (
        sa.select(matches, sa.func.count().over().label("total"))
        .order_by(*_ordering(shape, lambda name: matches.c[name]))
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .offset(sa.bindparam("offset", type_=sa.Integer))
        .subquery("ranked")
    )
    return (
        sa.select(
            *_PUBLIC_COLUMNS,
            _tags_array(_TASKS.c.id),
            _reminders_json(_TASKS.c.id),
            ranked.c.total,
        )
        .select_from(ranked.join(_TASKS, _TASKS.c.id == ranked.c.id))
        .order_by(*_ordering(shape, lambda name: ranked.c[name]))
    )


@lru_cache(maxsize=256)
def _count_statement(shape: _Shape) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(_TASKS).where(*_filters(shape)).correlate(None)


QueryShape = _Shape


def query_shape(query: TaskQuery) -> QueryShape:
    """What decides the SQL of `query`'s list statement (hashable; values aside)."""
    return _shape(query)


def list_statement(shape: QueryShape) -> sa.Select[Any]:
    """`task_list_statement` of the queries of one shape."""
    return _list_statement(shape)


def count_statement(shape: QueryShape) -> sa.Select[Any]:
    """`task_count_statement` of the queries of one shape."""
    return _count_statement(shape)


def task_list_statement(query: TaskQuery) -> sa.Select[Any]:
    """One page of a user's tasks matching `query`, each row with the `total` count;
    execute it with `task_list_params`."""
    return _list_statement(_shape(query))


def task_count_statement(query: TaskQuery) -> sa.Select[Any]:
    """How many of a user's tasks match `query` (same parameters)."""
    return _count_statement(_shape(query))


def task_list_params(*, user_id: str, query: TaskQuery) -> dict[str, Any]:
    """The bind parameters of `task_list_statement(query)` for one request."""
    params: dict[str, Any] = {"user_id": user_id, "limit": query.limit, "offset": query.offset}
    if query.priority:
        params["priority"] = list(query.priority)
    if query.tag:
        tags = sorted(set(query.tag))
        params["tag"], params["tag_count"] = tags, len(tags)
    if query.due_from is not None:
        params["due_from"] = query.due_from
    if query.due_to is not None:
        params["due_to"] = query.due_to
    if query.q is not None:
        params["q"] = query.q
    return params
