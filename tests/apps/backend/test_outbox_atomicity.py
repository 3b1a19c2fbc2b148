"""A change and its event commit together or not at all."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from apps.backend import store
from apps.backend.schemas import TaskCreate
from apps.shared.db import create_db_engine, make_session_factory
from apps.shared.events import envelope, outbox
from apps.shared.events.validation import EventSchemaError

Query = Callable[..., list[tuple[Any, ...]]]


def _counts(db: Query) -> tuple[Any, ...]:
    return db("SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM outbox)")[0]


async def _create(database_url: str, data: TaskCreate, *, commit: bool, **kwargs: Any) -> None:
    engine = create_db_engine(database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            await store.create_task(session, user_id="alice", data=data, **kwargs)
            if commit:
                await session.commit()
    finally:
        await engine.dispose()


def test_committed_change_has_its_event(database_url: str, db: Query) -> None:
    asyncio.run(_create(database_url, TaskCreate(title="kept"), commit=True))
    assert _counts(db) == (1, 1)


def test_rolled_back_change_leaves_no_event(database_url: str, db: Query) -> None:
    asyncio.run(_create(database_url, TaskCreate(title="dropped"), commit=False))
    assert _counts(db) == (0, 0)


def test_invalid_event_aborts_the_change(
    database_url: str, db: Query, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = envelope.new_envelope

    def broken_envelope(*args: Any, **kwargs: Any) -> dict[str, Any]:
        envelope = original(*args, **kwargs)
        del envelope["data"]["title"]
        return envelope

    monkeypatch.setattr(outbox, "new_envelope", broken_envelope)
    with pytest.raises(EventSchemaError, match="'title' is a required property"):
        asyncio.run(_create(database_url, TaskCreate(title="x"), commit=True))
    assert _counts(db) == (0, 0)


def test_one_successor_per_previous_task(database_url: str, db: Query) -> None:
    asyncio.run(_create(database_url, TaskCreate(title="first"), commit=True))
    [(first_id,)] = db("SELECT id FROM tasks")
    successor = TaskCreate(title="next")
    asyncio.run(_create(database_url, successor, commit=True, previous_task_id=first_id))
    with pytest.raises(IntegrityError):
        asyncio.run(_create(database_url, successor, commit=True, previous_task_id=first_id))
    assert _counts(db) == (2, 2)


def test_find_successor(database_url: str, db: Query) -> None:
    asyncio.run(_create(database_url, TaskCreate(title="first"), commit=True))
    [(first_id,)] = db("SELECT id FROM tasks")

    async def lookup(previous: uuid.UUID) -> str | None:
        engine = create_db_engine(database_url, pool_size=1)
        try:
            async with make_session_factory(engine)() as session:
                found = await store.find_successor(
                    session, user_id="alice", previous_task_id=previous
                )
                return None if found is None else found.title
        finally:
            await engine.dispose()

    assert asyncio.run(lookup(first_id)) is None
    asyncio.run(
        _create(database_url, TaskCreate(title="next"), commit=True, previous_task_id=first_id)
    )
    assert asyncio.run(lookup(first_id)) == "next"
