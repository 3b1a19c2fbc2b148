"""Data access of the notification service; functions take the caller's session and never
commit, so the caller decides what goes into one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from apps.notification.models import (
    Channel,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    UserNotificationSettings,
)
from apps.notification.schemas import (
    DeliveryPublic,
    NotificationList,
    NotificationPublic,
    NotificationQuery,
    SettingsPublic,
    SettingsUpdate,
)
from apps.notification.signing import generate_secret
from apps.shared.errors import not_found
from apps.shared.timeutil import utcnow

_NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]
_DELIVERIES = NotificationDelivery.__table__  # type: ignore[attr-defined]
_SETTINGS = UserNotificationSettings.__table__  # type: ignore[attr-defined]
_ID_LOC: list[str | int] = ["path", "notification_id"]


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def record_notification(
    session: AsyncSession, *, event_id: uuid.UUID, data: Mapping[str, Any]
) -> tuple[uuid.UUID, bool]:
    """Record a `reminder.due.v1` as a notification: delivered in-app at once, and a
    pending webhook delivery when the user has a webhook. Returns (id, webhook pending)."""
    now = utcnow()
    notification_id = uuid.uuid4()
    remind_at = _moment(data["remind_at"])
    await session.execute(
        sa.insert(_NOTIFICATIONS).values(
            id=notification_id,
            user_id=data["user_id"],
            event_id=event_id,
            reminder_id=uuid.UUID(data["reminder_id"]),
            task_id=uuid.UUID(data["task_id"]),
            title=data["title"],
            due_at=_moment(data.get("due_at")),
            remind_at=remind_at,
            created_at=now,
        )
    )
    deliveries: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "notification_id": notification_id,
            "channel": Channel.in_app.value,
            "status": DeliveryStatus.delivered.value,
            "target": None,
            "attempts": 1,
            "next_attempt_at": now,
            "delivered_at": now,
            "created_at": now,
            "updated_at": now,
        }
    ]
    webhook_url = (
        await session.execute(
            sa.select(_SETTINGS.c.webhook_url).where(_SETTINGS.c.user_id == data["user_id"])
        )
    ).scalar_one_or_none()
    if webhook_url:
        deliveries.append(
            {
                "id": uuid.uuid4(),
                "notification_id": notification_id,
                "channel": Channel.webhook.value,
                "status": DeliveryStatus.pending.value,
                "target": webhook_url,
                "attempts": 0,
                "next_attempt_at": now,
                "delivered_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    # executemany: every row must carry the same keys.
    await session.execute(sa.insert(_DELIVERIES), deliveries)
    return notification_id, bool(webhook_url)


def _select_public() -> sa.Select[Any]:
    deliveries = (
        sa.select(
            sa.func.coalesce(
                sa.func.json_agg(
                    aggregate_order_by(
                        sa.func.json_build_object(
                            "channel",
                            _DELIVERIES.c.channel,
                            "status",
                            _DELIVERIES.c.status,
                            "attempts",
                            _DELIVERIES.c.attempts,
                            "last_error",
                            _DELIVERIES.c.last_error,
                            "delivered_at",
                            _DELIVERIES.c.delivered_at,
                            "updated_at",
                            _DELIVERIES.c.updated_at,
                        ),
                        _DELIVERIES.c.channel,
                    )
                ),
                sa.text("'[]'::json"),
            )
        )
        .where(_DELIVERIES.c.notification_id == _NOTIFICATIONS.c.id)
        .scalar_subquery()
    )
    return sa.select(
        _NOTIFICATIONS.c.id,
        _NOTIFICATIONS.c.task_id,
        _NOTIFICATIONS.c.reminder_id,
        _NOTIFICATIONS.c.title,
        _NOTIFICATIONS.c.due_at,
        _NOTIFICATIONS.c.remind_at,
        _NOTIFICATIONS.c.created_at,
        _NOTIFICATIONS.c.read_at,
        deliveries.label("deliveries"),
    )


def _public(row: Any) -> NotificationPublic:
    return NotificationPublic(
        id=row["id"],
        task_id=row["task_id"],
        reminder_id=row["reminder_id"],
        title=row["title"],
        due_at=row["due_at"],
        remind_at=row["remind_at"],
        created_at=row["created_at"],
        read=row["read_at"] is not None,
        read_at=row["read_at"],
        deliveries=[DeliveryPublic.model_validate(d) for d in row["deliveries"]],
    )


async def list_notifications(
    session: AsyncSession, *, user_id: str, query: NotificationQuery
) -> NotificationList:
    where = [_NOTIFICATIONS.c.user_id == user_id]
    if query.unread is True:
        where.append(_NOTIFICATIONS.c.read_at.is_(None))
    elif query.unread is False:
        where.append(_NOTIFICATIONS.c.read_at.is_not(None))
    page = (
        _select_public()
        .where(*where)
        .order_by(_NOTIFICATIONS.c.created_at.desc(), _NOTIFICATIONS.c.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    )
    rows = (await session.execute(page)).mappings().all()
    total = (
        await session.execute(sa.select(sa.func.count()).select_from(_NOTIFICATIONS).where(*where))
    ).scalar_one()
    return NotificationList(items=[_public(row) for row in rows], total=total)


async def mark_read(
    session: AsyncSession, *, user_id: str, notification_id: uuid.UUID
) -> NotificationPublic:
    """Idempotent: the first read time is kept. 404 for unknown or someone else's."""
    await session.execute(
        sa.update(_NOTIFICATIONS)
        .where(
            _NOTIFICATIONS.c.id == notification_id,
            _NOTIFICATIONS.c.user_id == user_id,
            _NOTIFICATIONS.c.read_at.is_(None),
        )
        .values(read_at=utcnow())
    )
    row = (
        (
            await session.execute(
                _select_public().where(
                    _NOTIFICATIONS.c.id == notification_id, _NOTIFICATIONS.c.user_id == user_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise not_found(_ID_LOC, "notification")
    return _public(row)


async def get_settings(session: AsyncSession, *, user_id: str) -> SettingsPublic:
    row = (
        (await session.execute(sa.select(_SETTINGS).where(_SETTINGS.c.user_id == user_id)))
        .mappings()
        .first()
    )
    if row is None:
        return SettingsPublic(webhook_url=None, webhook_secret_set=False, updated_at=None)
    return SettingsPublic(
        webhook_url=row["webhook_url"],
        webhook_secret_set=row["webhook_secret"] is not None,
        updated_at=row["updated_at"],
    )


async def put_settings(
    session: AsyncSession, *, user_id: str, update: SettingsUpdate
) -> SettingsPublic:
    """Replace the user's settings. A webhook without a secret gets a generated one, shown
    in this answer only; clearing the webhook clears its secret too."""
    now = utcnow()
    current = (
        await session.execute(
            sa.select(_SETTINGS.c.webhook_secret)
            .where(_SETTINGS.c.user_id == user_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    generated: str | None = None
    secret: str | None = None
    if update.webhook_url is not None:
        secret = update.webhook_secret or current
        if secret is None:
            secret = generated = generate_secret()
    values = {"webhook_url": update.webhook_url, "webhook_secret": secret, "updated_at": now}
    await session.execute(
        insert(_SETTINGS)
        .values(user_id=user_id, **values)
        .on_conflict_do_update(index_elements=[_SETTINGS.c.user_id], set_=values)
    )
    return SettingsPublic(
        webhook_url=update.webhook_url,
        webhook_secret_set=secret is not None,
        webhook_secret=generated,
        updated_at=now,
    )
