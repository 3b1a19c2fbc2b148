"""Tables of the notification service: notifications, their deliveries, user settings."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from apps.shared.timeutil import utcnow


class Channel(enum.StrEnum):
    in_app = "in_app"
    webhook = "webhook"


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


def _timestamp(*, nullable: bool) -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Notification(SQLModel, table=True):
    """One reminder that reached its user; `event_id` is the reminder.due.v1 event's id."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_user_created", "user_id", "created_at", "id"),
        sa.Index(
            "ix_notifications_user_unread",
            "user_id",
            "created_at",
            postgresql_where=sa.text("read_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, sa_column=sa.Column(pg.UUID(as_uuid=True), primary_key=True)
    )
    user_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    event_id: uuid.UUID = Field(
        sa_column=sa.Column(pg.UUID(as_uuid=True), nullable=False, unique=True)
    )
    reminder_id: uuid.UUID = Field(sa_column=sa.Column(pg.UUID(as_uuid=True), nullable=False))
    task_id: uuid.UUID = Field(sa_column=sa.Column(pg.UUID(as_uuid=True), nullable=False))
    title: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    due_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    remind_at: datetime = Field(sa_column=_timestamp(nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    read_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))


class NotificationDelivery(SQLModel, table=True):
    """A notification on one channel: pending → delivered | failed, with its attempts.

    In-app deliveries are delivered when recorded. Webhook deliveries are claimed by a
    worker that leases them (`next_attempt_at` moves past the lease) before calling out.
    """

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("notification_id", "channel", name="uq_deliveries_channel"),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="ck_deliveries_status"
        ),
        sa.CheckConstraint("channel IN ('in_app', 'webhook')", name="ck_deliveries_channel"),
        sa.Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, sa_column=sa.Column(pg.UUID(as_uuid=True), primary_key=True)
    )
    notification_id: uuid.UUID = Field(
        sa_column=sa.Column(
            pg.UUID(as_uuid=True),
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    channel: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    target: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    # The W3C trace context of the event handling that recorded the delivery (migration
    # 0005): the webhook worker calls out as part of that trace (apps.shared.tracing).
    traceparent: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    tracestate: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class UserNotificationSettings(SQLModel, table=True):
    """Per user: where webhooks go and the secret their signature is made with; after a
    rotation, also the secret it replaced and until when that one still signs."""

    __tablename__ = "notification_settings"
    __table_args__ = (
        sa.CheckConstraint(
            "(webhook_secret_previous IS NULL) = (webhook_secret_previous_expires_at IS NULL)",
            name="ck_settings_previous_secret_expires",
        ),
    )

    user_id: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    webhook_url: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    webhook_secret: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    webhook_secret_previous: str | None = Field(
        default=None, sa_column=sa.Column(sa.Text, nullable=True)
    )
    webhook_secret_previous_expires_at: datetime | None = Field(
        default=None, sa_column=_timestamp(nullable=True)
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
