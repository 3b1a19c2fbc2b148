"""The notification service's user API: notifications, and where webhooks go."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from apps.contracts.services import NOTIFICATION_SETTINGS_PREFIX, NOTIFICATIONS_PREFIX
from apps.notification import store
from apps.notification.deps import CurrentUser, SessionDep, SettingsDep
from apps.notification.schemas import (
    NotificationList,
    NotificationPublic,
    NotificationQuery,
    SettingsPublic,
    SettingsUpdate,
)
from apps.notification.targets import TargetRefused, check_url
from apps.shared.errors import error_responses, invalid

router = APIRouter(
    prefix=NOTIFICATIONS_PREFIX, tags=["notifications"], responses=error_responses(401, 422)
)
# 400: a body that is not decodable text; 422: anything that fails validation.
settings_router = APIRouter(
    prefix=NOTIFICATION_SETTINGS_PREFIX,
    tags=["notifications"],
    responses=error_responses(400, 401, 422),
)


@router.get("", response_model=NotificationList)
async def list_notifications(
    query: Annotated[NotificationQuery, Query()], session: SessionDep, user: CurrentUser
) -> NotificationList:
    return await store.list_notifications(session, user_id=user, query=query)


@router.post(
    "/{notification_id}/read",
    response_model=NotificationPublic,
    responses=error_responses(404),
)
async def mark_read(
    notification_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> NotificationPublic:
    notification = await store.mark_read(session, user_id=user, notification_id=notification_id)
    await session.commit()
    return notification


@settings_router.get("", response_model=SettingsPublic)
async def read_settings(session: SessionDep, user: CurrentUser) -> SettingsPublic:
    return await store.get_settings(session, user_id=user)


@settings_router.put(
    "",
    response_model=SettingsPublic,
    description=(
        "Set where webhooks go. Deliveries are signed in the Standard Webhooks format "
        "(webhook-id, webhook-timestamp, webhook-signature headers). Without a secret, "
        "one is generated and shown in this answer only."
    ),
)
async def put_settings(
    body: SettingsUpdate, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> SettingsPublic:
    if body.webhook_url is not None:
        try:
            check_url(body.webhook_url, allow_private=settings.webhook_allow_private_targets)
        except TargetRefused as exc:
            raise invalid(["body", "webhook_url"], str(exc)) from None
    updated = await store.put_settings(session, user_id=user, update=body)
    await session.commit()
    return updated


@settings_router.post(
    "/webhook-secret/rotate",
    response_model=SettingsPublic,
    responses=error_responses(409),
    description=(
        "Replace the webhook signing secret without a gap: the new secret is in this "
        "answer only; the one it replaces still signs every delivery, as a second "
        "webhook-signature, until previous_secret_expires_at (WEBHOOK_SECRET_ROTATION_HOURS, "
        "24 h by default), so a receiver holding either verifies. Rotating again drops the "
        "older one at once. 409 when no webhook is set."
    ),
)
async def rotate_webhook_secret(
    session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> SettingsPublic:
    keep = timedelta(hours=settings.webhook_secret_rotation_hours)
    rotated = await store.rotate_webhook_secret(session, user_id=user, keep_previous_for=keep)
    await session.commit()
    return rotated
