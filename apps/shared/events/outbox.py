"""The outbox writer: validate the envelope, then add its row to the caller's transaction.

Nothing here commits. The row becomes visible exactly when the change it describes
does, and disappears with it on rollback, which is what makes delivery lossless.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
