"""The task API's hot paths (a list page, create, complete) over psycopg directly.

The same statements as the session-based functions (`queries`, `writes`), compiled once
to SQL text by SQLAlchemy's psycopg dialect and sent by the driver itself, with the
values SQLAlchemy's bind processors would have given (an enum's value, JSONB wrapped):
SQLAlchemy's execution around each statement (a greenlet switch, an execution context,
result and row objects) cost more CPU than the driver's own work for a list page.
`apps.shared.db.driver_connection` lends the connection from the engine's pool.

When tracing is on, each statement gets a client span of its own, as the SQLAlchemy
instrumentation gives the session's statements (apps.shared.tracing).
"""

from __future__ import annotations

import enum
import uuid
from functools import lru_cache
from typing import Any, NamedTuple

import psycopg
import pydantic_core
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from apps.backend.schemas import TaskCreate, TaskListData, TaskPublic, TaskQuery
from apps.backend.store import reads
from apps.backend.store.changes import completion, creation
from apps.backend.store.queries import (
    QueryShape,
    count_statement,
    list_statement,
    query_shape,
    task_by_id_select,
    task_list_params,
)
from apps.backend.store.writes import COMPLETE_TASK, CREATE_TASK
from apps.shared.errors import not_found
from apps.shared.tracing import traced_statement

_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


class Sql(NamedTuple):
    """A statement as the driver takes it: its text, the values SQLAlchemy bound into it
    (literals such as the search configuration), the names of its result columns, and
    its IN (...) list parameters (spread over numbered placeholders)."""

    text: str
    constants: dict[str, Any]
    columns: tuple[str, ...]
    expanding: frozenset[str] = frozenset()


def compile_sql(statement: Any, expanding: dict[str, list[Any]] | None = None) -> Sql:
    """`statement` compiled for psycopg; `expanding` gives each IN (...) list parameter
    a list of the length the request has, which fixes its placeholders (`name_1`, ...)."""
    selected = getattr(statement, "selected_columns", None)
    columns = tuple(column.key for column in selected) if selected is not None else ()
    compiled = statement.compile(dialect=_DIALECT)
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    if expanding:
        # Rendering the lists' placeholders wants a value for every parameter.
        required = {name: None for name, value in compiled.params.items() if value is None}
        compiled = statement.params({**required, **expanding}).compile(
            dialect=_DIALECT, compile_kwargs={"render_postcompile": True}
        )
    return Sql(str(compiled), constants, columns, frozenset(expanding or ()))


def _value(value: Any) -> Any:
    """What SQLAlchemy's bind processing would send for `value` (the statements' types)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [_value(item) for item in value]
    return value


def _dumps(value: Any) -> bytes:
    return pydantic_core.to_json(value)


def bind(sql: Sql, values: dict[str, Any]) -> dict[str, Any]:
    """The statement's parameters: its constants and the request's values, lists of IN
    (...) parameters spread over their numbered placeholders, JSONB wrapped."""
    params = dict(sql.constants)
    for name, value in values.items():
        if name in sql.expanding:
            for index, item in enumerate(value, start=1):
                params[f"{name}_{index}"] = _value(item)
        elif name == "event_payload":
            params[name] = Jsonb(value, dumps=_dumps)
        else:
            params[name] = _value(value)
    return params


async def execute(
    connection: psycopg.AsyncConnection[Any], sql: Sql, params: dict[str, Any]
) -> psycopg.AsyncCursor[Any]:
    with traced_statement(sql.text):
        return await connection.execute(sql.text, params)


async def execute_many(
    connection: psycopg.AsyncConnection[Any], sql: Sql, params: list[dict[str, Any]]
) -> None:
    """`sql` once per parameter set, in one pipeline (psycopg's `executemany`): one
    round trip for all of them rather than one each."""
    with traced_statement(sql.text):
        async with connection.cursor() as cursor:
            await cursor.executemany(sql.text, params)


def _expanding(priorities: int, tags: int) -> dict[str, list[Any]]:
    expanding: dict[str, list[Any]] = {}
    if priorities:
        expanding["priority"] = ["low"] * priorities
    if tags:
        expanding["tag"] = ["x"] * tags
    return expanding


@lru_cache(maxsize=512)
def _list_sql(shape: QueryShape, priorities: int, tags: int) -> Sql:
    """The list statement of a shape of query, with this many priority and tag values."""
    return compile_sql(list_statement(shape), _expanding(priorities, tags))


@lru_cache(maxsize=512)
def _count_sql(shape: QueryShape, priorities: int, tags: int) -> Sql:
    return compile_sql(count_statement(shape), _expanding(priorities, tags))


async def list_tasks(
    connection: psycopg.AsyncConnection[Any], *, user_id: str, query: TaskQuery
) -> TaskListData:
    """`reads.list_tasks` over the driver: one page as plain data, with the total."""
    shape = query_shape(query)
    counts = (len(query.priority), len(set(query.tag)))
    sql = _list_sql(shape, *counts)
    values = task_list_params(user_id=user_id, query=query)
    cursor = await execute(connection, sql, bind(sql, values))
    rows = await cursor.fetchall()
    if not rows:
        # An offset past the end returns no row to read the count from.
        total = 0
        if query.offset:
            count = _count_sql(shape, *counts)
            row = await (await execute(connection, count, bind(count, values))).fetchone()
            total = int(row[0]) if row else 0
        return {"items": [], "total": total}
    at = reads.positions(list_statement(shape))
    return {"items": [reads.data_from_row(row, at) for row in rows], "total": rows[-1][at.total]}


_BY_ID = compile_sql(task_by_id_select(for_update=False))
_BY_ID_FOR_UPDATE = compile_sql(task_by_id_select(for_update=True))
_CREATE = compile_sql(CREATE_TASK)
_COMPLETE = compile_sql(COMPLETE_TASK)
_ID_LOC: list[str | int] = ["path", "task_id"]


async def get_task(
    connection: psycopg.AsyncConnection[Any],
    *,
    user_id: str,
    task_id: uuid.UUID,
    for_update: bool = False,
) -> TaskPublic:
    """`reads.get_task` over the driver; 404 when it is missing or someone else's."""
    sql = _BY_ID_FOR_UPDATE if for_update else _BY_ID
    cursor = await execute(connection, sql, {"task_id": task_id, "user_id": user_id})
    row = await cursor.fetchone()
    if row is None:
        raise not_found(_ID_LOC, "task")
    return reads.public_from_row(dict(zip(sql.columns, row, strict=True)))


async def create_task(
    connection: psycopg.AsyncConnection[Any], *, user_id: str, data: TaskCreate
) -> TaskPublic:
    """`changes.create_task` over the driver (one statement: atomic without a transaction)."""
    public, values = creation(user_id=user_id, data=data)
    await execute(connection, _CREATE, bind(_CREATE, values))
    return public


async def complete_task(
    connection: psycopg.AsyncConnection[Any], *, user_id: str, task_id: uuid.UUID
) -> TaskPublic:
    """`changes.complete_task` over the driver, in a transaction of its own (the task is
    read locked, then changed with its event)."""
    async with connection.transaction():
        current = await get_task(connection, user_id=user_id, task_id=task_id, for_update=True)
        if current.completed:
            return current
        public, values = completion(current, user_id=user_id)
        await execute(connection, _COMPLETE, bind(_COMPLETE, values))
    return public
