"""A task's reminders: when each fires, and writing, re-arming and ordering them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from apps.backend.models import Reminder
from apps.backend.schemas import ReminderCreate, ReminderPublic

_REMINDERS = Reminder.__table__  # type: ignore[attr-defined]


def fire_time(
    *, before_minutes: int | None, at: datetime | None, due_at: datetime | None
) -> datetime | None:
    """When a reminder fires: a fixed `at`, or `before_minutes` before the due time."""
    if at is not None:
        return at
    if before_minutes is not None and due_at is not None:
        return due_at - timedelta(minutes=before_minutes)
    return None


def new_reminders(
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


async def insert_reminders(
    session: AsyncSession,
    *,
    task_id: uuid.UUID,
    user_id: str,
    reminders: Sequence[ReminderCreate],
    due_at: datetime | None,
    previous: Sequence[ReminderPublic],
) -> list[ReminderPublic]:
    """Insert reminders (see `new_reminders`) and return them as the API shows them."""
    created = new_reminders(reminders, due_at=due_at, previous=previous)
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


async def rearm_relative_reminders(
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
