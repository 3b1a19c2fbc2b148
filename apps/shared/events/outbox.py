"""The outbox writer: validate the envelope, then add its row to the caller's transaction.

Nothing here commits. The row becomes visible exactly when the change it describes
does, and disappears with it on rollback, which is what makes delivery lossless.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from apps.contracts.events import TOPIC_OF
from apps.shared.events.envelope import new_envelope
from apps.shared.events.validation import validate_envelope
from apps.shared.models import OutboxEvent
from apps.shared.timeutil import utcnow
from apps.shared.tracing import TRACEPARENT, TRACESTATE, current_trace_headers


def outbox_values(
    *,
    event_type: str,
    data: Mapping[str, Any],
    partition_key: str,
    event_id: uuid.UUID | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The columns of a validated outbox row, for writers that insert it with Core
    (raises `EventSchemaError` before anything is written).

    The row keeps the current trace context (`traceparent`, `tracestate`; None outside
    a trace), so that the relay publishes the event as part of the writer's trace."""
    envelope = new_envelope(event_type, data, event_id=event_id, timestamp=timestamp)
    validate_envelope(envelope)
    now = utcnow()
    trace_headers = current_trace_headers()
    return {
        "event_id": uuid.UUID(envelope["event_id"]),
        "event_type": event_type,
        "topic": TOPIC_OF[event_type],
        "partition_key": partition_key,
        "payload": envelope,
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
        "traceparent": trace_headers.get(TRACEPARENT),
        "tracestate": trace_headers.get(TRACESTATE),
    }


def outbox_row(
    *,
    event_type: str,
    data: Mapping[str, Any],
    partition_key: str,
    event_id: uuid.UUID | None = None,
    timestamp: datetime | None = None,
) -> OutboxEvent:
    """Build a validated outbox row (raises `EventSchemaError` before anything is written)."""
    return OutboxEvent(
        **outbox_values(
            event_type=event_type,
            data=data,
            partition_key=partition_key,
            event_id=event_id,
            timestamp=timestamp,
        )
    )


def write_event(
    session: AsyncSession,
    *,
    event_type: str,
    data: Mapping[str, Any],
    partition_key: str,
    event_id: uuid.UUID | None = None,
    timestamp: datetime | None = None,
) -> OutboxEvent:
    """Validate and add an event to `session`'s transaction; the caller commits."""
    row = outbox_row(
        event_type=event_type,
        data=data,
        partition_key=partition_key,
        event_id=event_id,
        timestamp=timestamp,
    )
    session.add(row)
    return row


# Many rows in one statement of a fixed text (arrays, not a VALUES list per row count),
# so psycopg converts it and the server plans it once; ids follow the arrays' order.
_INSERT_MANY = sa.text(
    """
    INSERT INTO outbox (event_id, event_type, topic, partition_key, payload, created_at,
                        attempts, next_attempt_at, traceparent, tracestate)
    SELECT e, t, tp, k, CAST(p AS jsonb), c, 0, c, tr, ts
    FROM unnest(
        CAST(:event_ids AS uuid[]), CAST(:event_types AS text[]), CAST(:topics AS text[]),
        CAST(:keys AS text[]), CAST(:payloads AS text[]), CAST(:created AS timestamptz[]),
        CAST(:traceparents AS text[]), CAST(:tracestates AS text[])
    ) AS u(e, t, tp, k, p, c, tr, ts)
    """
)


async def write_events(session: AsyncSession, events: Sequence[Mapping[str, Any]]) -> None:
    """Add many validated rows (`outbox_values`) to `session`'s transaction in one
    statement; the caller commits. For writers of many events at once (the reminder
    scan): an ORM object per row costs more than the rest of the work."""
    if not events:
        return
    await session.execute(
        _INSERT_MANY,
        {
            "event_ids": [e["event_id"] for e in events],
            "event_types": [e["event_type"] for e in events],
            "topics": [e["topic"] for e in events],
            "keys": [e["partition_key"] for e in events],
            "payloads": [json.dumps(e["payload"], separators=(",", ":")) for e in events],
            "created": [e["created_at"] for e in events],
            "traceparents": [e["traceparent"] for e in events],
            "tracestates": [e["tracestate"] for e in events],
        },
    )
