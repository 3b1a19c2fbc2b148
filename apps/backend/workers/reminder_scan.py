"""The reminder scan: claim due reminders and emit `reminder.due.v1` through the outbox.

Claiming is one statement per batch: it picks due, unfired reminders with
`FOR UPDATE SKIP LOCKED` and sets their `fired_at` — so when the cron binding fires on
several backend replicas at once, each reminder is claimed by exactly one of them — and
the events are written to the outbox in the same transaction as the claim. A reminder is
therefore marked fired if and only if its event is on its way.

`scan` is what the `reminder-scan` cron binding's call (routes/internal.py) runs on every
replica: batch after batch, each committed, up to REMINDER_SCAN_MAX_BATCHES.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from apps.backend.schemas import ScanSummary
from apps.backend.settings import ReminderScanSettings
from apps.contracts import events
from apps.shared.events.envelope import rfc3339
from apps.shared.events.outbox import outbox_values, write_events
from apps.shared.logs import get_logger

# The logger keeps the name it had before the scan moved here: its lines do not change.
_log = get_logger("apps.backend.pipeline")

_CLAIM = sa.text(
    """
    WITH due AS (
        SELECT r.id
        FROM reminders r
        WHERE r.fired_at IS NULL
          AND r.remind_at IS NOT NULL
          AND r.remind_at <= now()
        ORDER BY r.remind_at
        LIMIT :limit
        FOR UPDATE OF r SKIP LOCKED
    )
    UPDATE reminders r
    SET fired_at = now()
    FROM due, tasks t
    WHERE r.id = due.id AND t.id = r.task_id
    RETURNING r.id, r.task_id, r.user_id, r.remind_at, t.title, t.due_at
    """
)


def reminder_due_data(row: Any) -> dict[str, Any]:
    """The data of a `reminder.due.v1` event (architecture §4)."""
    due_at: datetime | None = row["due_at"]
    return {
        "reminder_id": str(row["id"]),
        "task_id": str(row["task_id"]),
        "user_id": row["user_id"],
        "title": row["title"],
        "due_at": rfc3339(due_at) if due_at is not None else None,
        "remind_at": rfc3339(row["remind_at"]),
    }


async def claim_due_reminders(session: AsyncSession, *, limit: int) -> int:
    """Claim up to `limit` due reminders and write their events; the caller commits."""
    rows = (await session.execute(_CLAIM, {"limit": limit})).mappings().all()
    # One statement for the batch's events (each validated as `write_event` does).
    await write_events(
        session,
        [
            outbox_values(
                event_type=events.REMINDER_DUE,
                data=reminder_due_data(row),
                # Keyed by task: a task's reminders reach the notification service in order.
                partition_key=str(row["task_id"]),
                event_id=uuid.uuid4(),
            )
            for row in rows
        ],
    )
    return len(rows)


# One scan at a time in a replica: daprd's cron binding fires on schedule whether or not
# the previous call has ended, and a scan still running claims what is due anyway; a
# firing that finds one running returns at once instead of piling up on the pool.
_RUNNING = asyncio.Lock()


async def scan(
    session: AsyncSession,
    *,
    limits: ReminderScanSettings,
    committed: Callable[[], None] = lambda: None,
) -> ScanSummary:
    """Claim due reminders batch by batch, committing each, until a batch comes back short
    or `limits.max_batches` have run (nothing when this replica's scan is running).
    `committed` is called after each batch that wrote events (to wake the relay)."""
    if _RUNNING.locked():
        return ScanSummary(emitted=0, batches=0)
    async with _RUNNING:
        return await _scan(session, limits=limits, committed=committed)


async def _scan(
    session: AsyncSession, *, limits: ReminderScanSettings, committed: Callable[[], None]
) -> ScanSummary:
    emitted = batches = 0
    while batches < limits.max_batches:
        claimed = await claim_due_reminders(session, limit=limits.batch_size)
        await session.commit()
        if claimed:
            committed()
        batches += 1
        emitted += claimed
        if claimed < limits.batch_size:
            break
    if emitted:
        _log.info("reminders emitted", emitted=emitted, batches=batches)
    return ScanSummary(emitted=emitted, batches=batches)
