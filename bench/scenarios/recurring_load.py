"""Completing recurring tasks: the tasks seeded, the API driven closed- and open-loop,
and the baseline that writes the same rows straight through psycopg."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from apps.contracts.events import TASK_COMPLETED, TASK_CREATED
from apps.shared.events.envelope import new_envelope
from bench.client import HttpConnection, http_request

USERS = 50
RRULE = "FREQ=WEEKLY"


def seed_recurring(url: str, count: int) -> list[str]:
    """`count` open weekly tasks (each its own series) over USERS users; their ids."""
    due = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY tasks (id, user_id, title, due_at, timezone, rrule, recurrence_anchor, "
            "series_id, created_at, updated_at) FROM STDIN"
        ) as copy:
            for n, task_id in enumerate(ids):
                copy.write_row(
                    (
                        task_id,
                        f"user-{n % USERS}",
                        f"chore {n}",
                        due,
                        "UTC",
                        RRULE,
                        "due",
                        task_id,
                        now,
                        now,
                    )
                )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE tasks")
    return [str(task_id) for task_id in ids]


@dataclass
class Run:
    started: dict[str, float] = field(default_factory=dict)
    errors: int = 0


async def complete_closed_loop(
    port: int, token_of: dict[str, str], ids: Sequence[str], workers: int
) -> Run:
    run = Run()
    queue = list(reversed(ids))

    async def worker() -> None:
        connection = await HttpConnection.open(port)
        try:
            while queue:
                task_id = queue.pop()
                run.started[task_id] = time.perf_counter()
                status, _ = await connection.request(
                    http_request("POST", f"/api/v1/tasks/{task_id}/complete", token_of[task_id])
                )
                if status != 200:
                    run.errors += 1
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(workers)))
    return run


async def complete_open_loop(
    port: int, token_of: dict[str, str], ids: Sequence[str], rate: float
) -> Run:
    """Offer completions at `rate` per second whatever the answers' pace (no coordinated
    omission: a slow answer does not delay the next request)."""
    run = Run()
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await HttpConnection.open(port))
    begin = time.perf_counter()

    async def one(index: int, task_id: str) -> None:
        await asyncio.sleep(max(0.0, begin + index / rate - time.perf_counter()))
        run.started[task_id] = time.perf_counter()
        connection = await pool.get()
        try:
            status, _ = await connection.request(
                http_request("POST", f"/api/v1/tasks/{task_id}/complete", token_of[task_id])
            )
            if status != 200:
                run.errors += 1
        finally:
            pool.put_nowait(connection)

    await asyncio.gather(*(one(index, task_id) for index, task_id in enumerate(ids)))
    while not pool.empty():
        await pool.get_nowait().close()
    return run


def _task_data(task_id: str, now: datetime) -> dict[str, Any]:
    """An event's data as the backend writes it (same shape and size)."""
    stamp = now.isoformat()
    return {
        "id": task_id,
        "user_id": "baseline",
        "title": "next",
        "description": "",
        "priority": "medium",
        "due_at": stamp,
        "timezone": "UTC",
        "tags": [],
        "reminders": [],
        "recurrence": {"rrule": RRULE, "anchor": "due"},
        "completed": False,
        "completed_at": None,
        "series_id": task_id,
        "created_at": stamp,
        "updated_at": stamp,
    }


async def baseline(url: str, ids: Sequence[str], workers: int) -> float:
    """The same rows straight into the database; completions per second."""
    queue = list(reversed(ids))
    now = datetime.now(UTC)

    async def worker() -> None:
        async with await psycopg.AsyncConnection.connect(url) as connection:
            while queue:
                task_id = queue.pop()
                async with connection.transaction():
                    await connection.execute(
                        "UPDATE tasks SET completed = true, completed_at = now(), "
                        "updated_at = now() WHERE id = %s",
                        (task_id,),
                    )
                    completed = new_envelope(TASK_COMPLETED, _task_data(task_id, now))
                    # Written as already published: the running relay must leave them be.
                    await connection.execute(
                        "INSERT INTO outbox (event_id, event_type, topic, partition_key, payload, "
                        "published_at) VALUES (%s, %s, 'task-events', %s, %s, now())",
                        (completed["event_id"], TASK_COMPLETED, task_id, Jsonb(completed)),
                    )
                async with connection.transaction():
                    successor = uuid.uuid4()
                    await connection.execute(
                        "INSERT INTO tasks (id, user_id, title, due_at, timezone, rrule, "
                        "recurrence_anchor, series_id, previous_task_id, created_at, updated_at) "
                        "VALUES (%s, 'baseline', 'next', %s, 'UTC', %s, 'due', %s, %s, %s, %s)",
                        (successor, now, RRULE, task_id, task_id, now, now),
                    )
                    created = new_envelope(TASK_CREATED, _task_data(str(successor), now))
                    await connection.execute(
                        "INSERT INTO outbox (event_id, event_type, topic, partition_key, payload, "
                        "published_at) VALUES (%s, %s, 'task-events', %s, %s, now())",
                        (created["event_id"], TASK_CREATED, str(successor), Jsonb(created)),
                    )

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return len(ids) / (time.perf_counter() - began)
