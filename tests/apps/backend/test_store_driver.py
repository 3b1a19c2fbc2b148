"""The driver's hot paths (apps.backend.store.driver) read and write what the session's do,
and give the pool its connections back as they found them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.backend import store
from apps.backend.schemas import TaskCreate, TaskQuery
from apps.backend.store import driver
from apps.shared.db import create_db_engine, driver_connection, make_session_factory

QUERIES: list[dict[str, Any]] = [
    {},
    {"status": "open", "priority": ["high", "urgent"], "sort": "due_at", "limit": 3},
    {"tag": ["work", "home"], "sort": "title", "order": "desc"},
    {"q": "budget review", "limit": 2, "offset": 1},
    {"q": "budget", "sort": "created_at"},
    {"overdue": False, "due_from": "2020-01-01T00:00:00Z", "offset": 50},
]


def _tasks() -> list[TaskCreate]:
    due = datetime(2031, 5, 1, 9, tzinfo=UTC)
    words = ["budget review", "garden", "budget plan", "review the review", "taxes"]
    return [
        TaskCreate.model_validate(
            {
                "title": f"{words[i % len(words)]} {i}",
                "description": "budget" if i % 3 else "",
                "priority": ["low", "medium", "high", "urgent"][i % 4],
                "due_at": (due + timedelta(hours=i)).isoformat() if i % 5 else None,
                "tags": [["work"], ["work", "home"], []][i % 3],
                "reminders": [{"before_minutes": 30}] if i % 5 and i % 2 else [],
            }
        )
        for i in range(12)
    ]


async def _compare(database_url: str) -> None:
    engine = create_db_engine(database_url, pool_size=1)
    try:
        async with driver_connection(engine) as connection:
            for data in _tasks():
                await driver.create_task(connection, user_id="alice", data=data)
        pages = []
        for fields in QUERIES:
            query = TaskQuery.model_validate(fields)
            async with make_session_factory(engine)() as session:
                expected = await store.list_tasks(session, user_id="alice", query=query)
            async with driver_connection(engine) as connection:
                got = await driver.list_tasks(connection, user_id="alice", query=query)
            assert got == expected, fields
            pages.append(got)
        assert pages[0]["total"] == 12 and pages[-1] == {
            "items": [],
            "total": 9,
        }  # dated, not overdue
        task_id = next(task["id"] for task in pages[0]["items"] if task["reminders"])
        async with driver_connection(engine) as connection:
            done = await driver.complete_task(connection, user_id="alice", task_id=task_id)
        async with make_session_factory(engine)() as session:
            assert done == await store.get_task(session, user_id="alice", task_id=task_id)
            assert done.completed and all(r.remind_at is None for r in done.reminders)
        # The pool's one connection went back in its own mode: a session's transaction
        # is still a transaction.
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None and raw.autocommit is False
    finally:
        await engine.dispose()


def test_driver_lists_and_completes_like_the_session(database_url: str) -> None:
    asyncio.run(_compare(database_url))
