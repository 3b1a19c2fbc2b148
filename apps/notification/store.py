"""Data access of the notification service; functions take the caller's session and never
commit, so the caller decides what goes into one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
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
from apps.shared.errors import ApiError, not_found
from apps.shared.timeutil import utcnow
from apps.shared.tracing import TRACEPARENT, TRACESTATE, current_trace_headers

_NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]
_DELIVERIES = NotificationDelivery.__table__  # type: ignore[attr-defined]
_SETTINGS = UserNotificationSettings.__table__  # type: ignore[attr-defined]
_ID_LOC: list[str | int] = ["path", "notification_id"]
_WEBHOOK_LOC: list[str | int] = ["webhook_url"]


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
            "traceparent": None,
            "tracestate": None,
        }
    ]
    webhook_url = (
        await session.execute(
            sa.select(_SETTINGS.c.webhook_url).where(_SETTINGS.c.user_id == data["user_id"])
        )
    ).scalar_one_or_none()
    if webhook_url:
        trace_headers = current_trace_headers()
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
                # The worker's call continues the trace this event arrived in.
                "traceparent": trace_headers.get(TRACEPARENT),
                "tracestate": trace_headers.get(TRACESTATE),
            }
        )
    # executemany: every row must carry the same keys.
    await session.execute(sa.insert(_DELIVERIES), deliveries)
    return notification_id, bool(webhook_url)


# A batch of reminder.due.v1 events in four statements whatever its size, each with a
# fixed text (arrays, not one VALUES list per row count), so psycopg converts and the
# server plans them once. Parameters are arrays, one element per event.
_RECORD_BATCH = sa.text(
    """
    INSERT INTO processed_events (consumer, event_id)
    SELECT :consumer, e FROM unnest(CAST(:event_ids AS uuid[])) AS e
    ON CONFLICT (consumer, event_id) DO NOTHING
    RETURNING event_id
    """
)
_WEBHOOKS_OF = sa.text(
    "SELECT user_id, webhook_url FROM notification_settings "
    "WHERE user_id = ANY(CAST(:users AS text[])) AND webhook_url IS NOT NULL"
)
_INSERT_NOTIFICATIONS = sa.text(
    """
    INSERT INTO notifications
        (id, user_id, event_id, reminder_id, task_id, title, due_at, remind_at, created_at)
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:users AS text[]), CAST(:event_ids AS uuid[]),
        CAST(:reminder_ids AS uuid[]), CAST(:task_ids AS uuid[]), CAST(:titles AS text[]),
        CAST(:due_ats AS timestamptz[]), CAST(:remind_ats AS timestamptz[]),
        CAST(:created_ats AS timestamptz[])
    )
    """
)
_INSERT_DELIVERIES = sa.text(
    """
    INSERT INTO notification_deliveries
        (id, notification_id, channel, status, target, attempts, next_attempt_at,
         delivered_at, created_at, updated_at, traceparent, tracestate)
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:notification_ids AS uuid[]), CAST(:channels AS text[]),
        CAST(:statuses AS text[]), CAST(:targets AS text[]), CAST(:attempts AS int[]),
        CAST(:next_attempt_ats AS timestamptz[]), CAST(:delivered_ats AS timestamptz[]),
        CAST(:created_ats AS timestamptz[]), CAST(:updated_ats AS timestamptz[]),
        CAST(:traceparents AS text[]), CAST(:tracestates AS text[])
    )
    """
)


async def record_notifications(
    session: AsyncSession,
    *,
    consumer: str,
    events: Sequence[tuple[uuid.UUID, Mapping[str, Any], Mapping[str, str]]],
) -> tuple[list[bool], bool]:
    """`record_notification` for a batch of `(event id, data, trace headers)`, with the
    consumer's processed-event records, in the caller's transaction: which events were
    new (a repeated id, in the batch or from before, is not) and whether a webhook
    delivery is pending. The trace headers go with each event's webhook delivery."""
    recorded = await session.execute(
        _RECORD_BATCH, {"consumer": consumer, "event_ids": [e[0] for e in events]}
    )
    fresh = {row[0] for row in recorded}
    new: list[bool] = []
    chosen: list[tuple[uuid.UUID, Mapping[str, Any], Mapping[str, str]]] = []
    for event in events:
        first = event[0] in fresh
        new.append(first)
        if first:
            fresh.discard(event[0])
            chosen.append(event)
    if not chosen:
        return new, False
    users = sorted({str(data["user_id"]) for _, data, _ in chosen})
    found = await session.execute(_WEBHOOKS_OF, {"users": users})
    webhooks: dict[str, str] = {str(user): str(url) for user, url in found}
    now = utcnow()
    ids = [uuid.uuid4() for _ in chosen]
    await session.execute(
        _INSERT_NOTIFICATIONS,
        {
            "ids": ids,
            "users": [data["user_id"] for _, data, _ in chosen],
            "event_ids": [event_id for event_id, _, _ in chosen],
            "reminder_ids": [uuid.UUID(data["reminder_id"]) for _, data, _ in chosen],
            "task_ids": [uuid.UUID(data["task_id"]) for _, data, _ in chosen],
            "titles": [data["title"] for _, data, _ in chosen],
            "due_ats": [_moment(data.get("due_at")) for _, data, _ in chosen],
            "remind_ats": [_moment(data["remind_at"]) for _, data, _ in chosen],
            "created_ats": [now] * len(chosen),
        },
    )
    rows: list[dict[str, Any]] = []
    for notification_id, (_, data, trace_headers) in zip(ids, chosen, strict=True):
        rows.append(_delivery_row(notification_id, Channel.in_app, None, now, {}))
        target = webhooks.get(data["user_id"])
        if target:
            rows.append(_delivery_row(notification_id, Channel.webhook, target, now, trace_headers))
    await session.execute(
        _INSERT_DELIVERIES,
        {
            "ids": [r["id"] for r in rows],
            "notification_ids": [r["notification_id"] for r in rows],
            "channels": [r["channel"] for r in rows],
            "statuses": [r["status"] for r in rows],
            "targets": [r["target"] for r in rows],
            "attempts": [r["attempts"] for r in rows],
            "next_attempt_ats": [r["next_attempt_at"] for r in rows],
            "delivered_ats": [r["delivered_at"] for r in rows],
            "created_ats": [r["created_at"] for r in rows],
            "updated_ats": [r["updated_at"] for r in rows],
            "traceparents": [r["traceparent"] for r in rows],
            "tracestates": [r["tracestate"] for r in rows],
        },
    )
    return new, any(r["channel"] == Channel.webhook.value for r in rows)


def _delivery_row(
    notification_id: uuid.UUID,
    channel: Channel,
    target: str | None,
    now: datetime,
    trace_headers: Mapping[str, str],
) -> dict[str, Any]:
    """A delivery as `record_notification` writes it: in-app delivered at once, a webhook
    pending and carrying the trace its worker's call continues."""
    in_app = channel is Channel.in_app
    return {
        "id": uuid.uuid4(),
        "notification_id": notification_id,
        "channel": channel.value,
        "status": (DeliveryStatus.delivered if in_app else DeliveryStatus.pending).value,
        "target": target,
        "attempts": 1 if in_app else 0,
        "next_attempt_at": now,
        "delivered_at": now if in_app else None,
        "created_at": now,
        "updated_at": now,
        "traceparent": trace_headers.get(TRACEPARENT),
        "tracestate": trace_headers.get(TRACESTATE),
    }


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


async def _settings_row(session: AsyncSession, *, user_id: str) -> sa.RowMapping | None:
    """The user's settings row, locked until the transaction ends (they are rewritten)."""
    query = sa.select(_SETTINGS).where(_SETTINGS.c.user_id == user_id)
    return (await session.execute(query.with_for_update())).mappings().first()


def _previous_until(row: sa.RowMapping, now: datetime) -> datetime | None:
    """Until when the secret a rotation replaced still signs; None once it no longer
    does (expired secrets stay stored until the settings are next written)."""
    expires: datetime | None = row["webhook_secret_previous_expires_at"]
    return expires if expires is not None and expires > now else None


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
        previous_secret_expires_at=_previous_until(row, utcnow()),
        updated_at=row["updated_at"],
    )


async def put_settings(
    session: AsyncSession, *, user_id: str, update: SettingsUpdate
) -> SettingsPublic:
    """Replace the user's settings. A webhook without a secret gets a generated one, shown
    in this answer only. A secret given replaces the current one at once, ending any
    rotation; none given keeps the current one and a rotation under way. Clearing the
    webhook clears its secrets too."""
    now = utcnow()
    current = await _settings_row(session, user_id=user_id)
    generated: str | None = None
    values: dict[str, Any] = {
        "webhook_url": update.webhook_url,
        "webhook_secret": None,
        "webhook_secret_previous": None,
        "webhook_secret_previous_expires_at": None,
        "updated_at": now,
    }
    if update.webhook_url is not None:
        if update.webhook_secret is not None:
            values["webhook_secret"] = update.webhook_secret
        elif current is not None and current["webhook_secret"] is not None:
            values["webhook_secret"] = current["webhook_secret"]
            if _previous_until(current, now) is not None:
                values["webhook_secret_previous"] = current["webhook_secret_previous"]
                values["webhook_secret_previous_expires_at"] = current[
                    "webhook_secret_previous_expires_at"
                ]
        else:
            values["webhook_secret"] = generated = generate_secret()
    await session.execute(
        insert(_SETTINGS)
        .values(user_id=user_id, **values)
        .on_conflict_do_update(index_elements=[_SETTINGS.c.user_id], set_=values)
    )
    return SettingsPublic(
        webhook_url=update.webhook_url,
        webhook_secret_set=values["webhook_secret"] is not None,
        webhook_secret=generated,
        previous_secret_expires_at=values["webhook_secret_previous_expires_at"],
        updated_at=now,
    )


async def rotate_webhook_secret(
    session: AsyncSession, *, user_id: str, keep_previous_for: timedelta
) -> SettingsPublic:
    """A new secret, shown in this answer only; the current one goes on signing
    deliveries alongside it for `keep_previous_for`. At most two secrets are valid at
    once: one rotated out earlier and still valid stops now. 409 without a webhook."""
    now = utcnow()
    current = await _settings_row(session, user_id=user_id)
    if current is None or current["webhook_secret"] is None:
        raise ApiError(409, _WEBHOOK_LOC, "no webhook is set: set webhook_url first", "no_webhook")
    secret = generate_secret()
    expires = now + keep_previous_for
    await session.execute(
        sa.update(_SETTINGS)
        .where(_SETTINGS.c.user_id == user_id)
        .values(
            webhook_secret=secret,
            webhook_secret_previous=current["webhook_secret"],
            webhook_secret_previous_expires_at=expires,
            updated_at=now,
        )
    )
    return SettingsPublic(
        webhook_url=current["webhook_url"],
        webhook_secret_set=True,
        webhook_secret=secret,
        previous_secret_expires_at=expires,
        updated_at=now,
    )
