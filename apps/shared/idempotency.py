"""Processed-event records: a consumer's effect and its record commit together."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from apps.shared.models import ProcessedEvent

_PROCESSED = ProcessedEvent.__table__  # type: ignore[attr-defined]
# Built once, on the table (Core): building it per call, and the ORM's bulk-insert path
# an entity insert takes, cost more than executing it. Parameters `p_consumer` and
# `p_event_id`; returns a row only when the record is new.
RECORD_PROCESSED = (
    insert(_PROCESSED)
    .values(consumer=sa.bindparam("p_consumer"), event_id=sa.bindparam("p_event_id"))
    .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    .returning(_PROCESSED.c.event_id)
)


async def record_processed(session: AsyncSession, *, consumer: str, event_id: uuid.UUID) -> bool:
    """Record `(consumer, event_id)` in the caller's transaction.

    Returns False when it was already recorded: the event is a duplicate and the caller
    must skip its effect. A concurrent first delivery blocks on the primary key until the
    other transaction ends, so exactly one of two racing deliveries sees True.
    """
    result = await session.execute(
        RECORD_PROCESSED, {"p_consumer": consumer, "p_event_id": event_id}
    )
    return result.first() is not None
