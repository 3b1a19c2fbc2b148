"""Request and response models of the notification API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from apps.notification.models import Channel, DeliveryStatus
from apps.notification.signing import SECRET_FORMAT, parse_secret


class DeliveryPublic(BaseModel):
    channel: Channel
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    updated_at: datetime


class NotificationPublic(BaseModel):
    id: uuid.UUID
    task_id: uuid.UUID
    reminder_id: uuid.UUID
    title: str
    due_at: datetime | None
    remind_at: datetime
    created_at: datetime
    read: bool
    read_at: datetime | None
    deliveries: list[DeliveryPublic]


class NotificationList(BaseModel):
    items: list[NotificationPublic]
    total: int = Field(description="matching notifications, ignoring limit and offset")


class NotificationQuery(BaseModel):
    """Query parameters of GET /api/v1/notifications (unknown parameters are rejected)."""

    model_config = ConfigDict(extra="forbid")

    unread: bool | None = Field(default=None, description="true: only unread ones")
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class SettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = Field(
        max_length=2048,
        description=(
            "http(s) URL that receives signed webhooks; null: none. Refused (422): other "
            "schemes, credentials, a #fragment, ports outside 1-65535, IPv4 addresses not "
            "written a.b.c.d and, unless private targets are allowed, loopback, private, "
            "link-local and site-local hosts (localhost, .local, .internal, .svc, ...). "
            "Names are resolved and checked again at every call."
        ),
    )
    webhook_secret: str | None = Field(
        default=None,
        max_length=256,
        description=(
            f"the Standard Webhooks signing secret, {SECRET_FORMAT}; generated (and shown "
            "once) when not given and none is set. A secret given replaces the current one "
            "at once; to switch without a gap, rotate instead (POST "
            "/api/v1/notification-settings/webhook-secret/rotate)"
        ),
    )

    @field_validator("webhook_secret")
    @classmethod
    def _secret_format(cls, value: str | None) -> str | None:
        if value is not None:
            parse_secret(value)  # its ValueError names the format, never the value
        return value


class SettingsPublic(BaseModel):
    webhook_url: str | None
    webhook_secret_set: bool
    webhook_secret: str | None = Field(
        default=None,
        description="the signing secret, only in the answer that generated it (never again)",
    )
    previous_secret_expires_at: datetime | None = Field(
        default=None,
        description=(
            "after a rotation: until when the replaced secret still signs deliveries (as "
            "a second webhook-signature); null when there is none"
        ),
    )
    updated_at: datetime | None
