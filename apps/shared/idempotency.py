"""Processed-event records: a consumer's effect and its record commit together."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from apps.shared.models import ProcessedEvent


async def record_processed(session: AsyncSession, *, consumer: str, event_id: uuid.UUID) -> bool:
    """Record `(consumer, event_id)` in the caller's transaction.

    Returns False when it was already recorded: the event is a duplicate and the caller
    must skip its effect. A concurrent first delivery blocks on the primary key until the
    other transaction ends, so exactly one of two racing deliveries sees True.
    """
    statement = (
        insert(ProcessedEvent)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(ProcessedEvent.__table__.c.event_id)  # type: ignore[attr-defined]
    )
    result = await session.execute(statement)
    return result.first() is not None
