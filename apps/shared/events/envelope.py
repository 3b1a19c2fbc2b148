"""The envelope around an event's data (§4); the event types are in `apps.contracts.events`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from apps.contracts.events import SCHEMA_VERSION, TOPIC_OF


def rfc3339(moment: datetime) -> str:
    """UTC timestamp with a `Z` suffix, the form every event carries."""
    if moment.tzinfo is None:
        raise ValueError("event timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_envelope(
    event_type: str,
    data: Mapping[str, Any],
    *,
    event_id: uuid.UUID | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The §4 envelope; `data` must already be JSON-compatible (strings for ids and times)."""
    if event_type not in TOPIC_OF:
        raise ValueError(f"unknown event type {event_type!r}")
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "schema_version": SCHEMA_VERSION,
        "timestamp": rfc3339(timestamp or datetime.now(UTC)),
        "data": dict(data),
    }
