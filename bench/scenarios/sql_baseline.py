"""The raw-SQL baseline of the task API: the statements the API sends for a list or
search page, and the same rows it writes for create and complete, through psycopg."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql.expression import Executable

from apps.backend.schemas import TaskQuery
from apps.backend.store.queries import task_by_id_select, task_list_params, task_list_statement
from apps.contracts import events
from apps.shared.events.envelope import new_envelope
from bench.client import SqlOperation
from bench.scenarios.task_data import USER


def compiled(statement: Executable, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """SQL text and parameters of a SQLAlchemy statement, as the API's driver gets them."""
    result = statement.params(params).compile(  # type: ignore[attr-defined]
        dialect=PGDialect_psycopg(),  # type: ignore[no-untyped-call]
        compile_kwargs={"render_postcompile": True},  # expand IN (...) like at run time
    )
    return str(result), dict(result.construct_expanded_state().parameters)


def sql_list(query: TaskQuery) -> SqlOperation:
    """The statement the API sends for one list page (its rows carry the total)."""
    text, params = compiled(task_list_statement(query), task_list_params(user_id=USER, query=query))

    async def run(connection: psycopg.AsyncConnection[Any]) -> bool:
        async with connection.transaction():
            cursor = await connection.execute(text, params)
            await cursor.fetchall()
        return True

    return run


def task_document(
    task_id: str, now: datetime, body: dict[str, Any], reminders: list[dict[str, Any]]
) -> dict[str, Any]:
    """A created task as the API shows it (the data of its event)."""
    stamp = now.isoformat().replace("+00:00", "Z")
    return {
        "id": task_id,
        "title": body["title"],
        "description": body["description"],
        "priority": body["priority"],
        "due_at": body["due_at"],
        "timezone": "UTC",
        "tags": sorted(body["tags"]),
        "reminders": reminders,
        "recurrence": None,
        "completed": False,
        "completed_at": None,
        "series_id": None,
        "created_at": stamp,
        "updated_at": stamp,
        "user_id": USER,
    }


_INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, event_type, topic, partition_key, payload) "
    "VALUES (%s, %s, %s, %s, %s)"
)


def sql_create(body: dict[str, Any]) -> SqlOperation:
    """The rows the API writes for a create: task, tags, reminders, outbox event."""
    due_at = datetime.fromisoformat(body["due_at"])
    minutes = [reminder["before_minutes"] for reminder in body["reminders"]]
    tags = sorted(body["tags"])
    tag_sql = "INSERT INTO tags (task_id, name, user_id) VALUES " + ", ".join(
        ["(%s, %s, %s)"] * len(tags)
    )
    reminder_sql = (
        "INSERT INTO reminders (id, task_id, user_id, before_minutes, at, remind_at, fired_at) "
        "VALUES " + ", ".join(["(%s, %s, %s, %s, NULL, %s, NULL)"] * len(minutes))
    )

    async def run(connection: psycopg.AsyncConnection[Any]) -> bool:
        task_id, now = uuid.uuid4(), datetime.now(UTC)
        reminders = [(uuid.uuid4(), m, due_at - timedelta(minutes=m)) for m in minutes]
        document = task_document(
            str(task_id),
            now,
            body,
            [
                {
                    "before_minutes": m,
                    "at": None,
                    "id": str(rid),
                    "remind_at": at.isoformat().replace("+00:00", "Z"),
                    "fired_at": None,
                }
                for rid, m, at in reminders
            ],
        )
        envelope = new_envelope(events.TASK_CREATED, document)
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO tasks (id, user_id, title, description, priority, due_at, "
                "timezone, rrule, recurrence_anchor, completed, series_id, previous_task_id, "
                "created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, 'UTC', NULL, NULL, false, NULL, NULL, %s, %s)",
                (task_id, USER, body["title"], body["description"], body["priority"], due_at)
                + (now, now),
            )
            await connection.execute(
                tag_sql, [value for tag in tags for value in (task_id, tag, USER)]
            )
            await connection.execute(
                reminder_sql,
                [v for rid, m, at in reminders for v in (rid, task_id, USER, m, at)],
            )
            await connection.execute(
                _INSERT_OUTBOX,
                (
                    envelope["event_id"],
                    events.TASK_CREATED,
                    events.TOPIC_OF[events.TASK_CREATED],
                    str(task_id),
                    Jsonb(envelope),
                ),
            )
        return True

    return run


def sql_complete(take: Callable[[], str | None]) -> SqlOperation:
    """What the API does to complete a task: read it locked, update it and its unfired
    reminders, write the event (with the task as the API shows it)."""
    text, params = compiled(
        task_by_id_select(for_update=True), {"task_id": uuid.uuid4(), "user_id": USER}
    )

    async def run(connection: psycopg.AsyncConnection[Any]) -> bool | None:
        task_id = take()
        if task_id is None:
            return None
        now = datetime.now(UTC)
        async with connection.transaction():
            cursor = await connection.execute(text, {**params, "task_id": uuid.UUID(task_id)})
            row = await cursor.fetchone()
            if row is None:
                return False
            names = [column.name for column in cursor.description or []]
            current = dict(zip(names, row, strict=True))
            await connection.execute(
                "UPDATE tasks SET completed = true, completed_at = %s, updated_at = %s "
                "WHERE tasks.id = %s",
                (now, now, task_id),
            )
            current["reminders"] = current["reminders"] or []  # NULL: no reminders
            if any(reminder["fired_at"] is None for reminder in current["reminders"]):
                await connection.execute(
                    "UPDATE reminders SET remind_at = NULL "
                    "WHERE reminders.task_id = %s AND reminders.fired_at IS NULL",
                    (task_id,),
                )
            current.update(completed=True, completed_at=now, updated_at=now, user_id=USER)
            document = json.loads(json.dumps(current, default=str))
            envelope = new_envelope(events.TASK_COMPLETED, document)
            await connection.execute(
                _INSERT_OUTBOX,
                (
                    envelope["event_id"],
                    events.TASK_COMPLETED,
                    events.TOPIC_OF[events.TASK_COMPLETED],
                    task_id,
                    Jsonb(envelope),
                ),
            )
        return True

    return run
