"""Tables shared by the services: the transactional outbox and processed-event records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from apps.shared.timeutil import utcnow


class OutboxEvent(SQLModel, table=True):
    """An event written in the same transaction as the change it describes.

    The relay publishes unpublished rows in `id` order per `partition_key`, claiming them
    with FOR UPDATE SKIP LOCKED; `attempts`/`next_attempt_at`/`last_error` drive retries.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=sa.text("published_at IS NULL"),
        ),
        # The relay's "oldest unpublished event of this key" lookup (migration 0002).
        sa.Index(
            "ix_outbox_pending_key",
            "partition_key",
            "id",
            postgresql_where=sa.text("published_at IS NULL"),
        ),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    event_id: uuid.UUID = Field(
        sa_column=sa.Column(pg.UUID(as_uuid=True), nullable=False, unique=True)
    )
    event_type: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    topic: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    partition_key: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    payload: dict[str, Any] = Field(sa_column=sa.Column(pg.JSONB, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    next_attempt_at: datetime = Field(
        default_factory=utcnow,
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    published_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )
    # The W3C trace context of the request that wrote the row (migration 0005): the
    # relay publishes the event as part of that trace (apps.shared.tracing).
    traceparent: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    tracestate: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class ProcessedEvent(SQLModel, table=True):
    """A consumer handled an event: written in the same transaction as the effect."""

    __tablename__ = "processed_events"

    consumer: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    event_id: uuid.UUID = Field(sa_column=sa.Column(pg.UUID(as_uuid=True), primary_key=True))
    processed_at: datetime = Field(
        default_factory=utcnow,
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
