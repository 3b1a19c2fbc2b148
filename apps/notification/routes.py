"""The notification service's routes: the user API, and what Dapr delivers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from apps.contracts import events
from apps.contracts.services import NOTIFICATION_SETTINGS_PREFIX, NOTIFICATIONS_PREFIX, AppId
from apps.notification import store
from apps.notification.schemas import (
    NotificationList,
    NotificationPublic,
    NotificationQuery,
    SettingsPublic,
    SettingsUpdate,
)
from apps.notification.settings import NotificationServiceSettings
from apps.notification.targets import TargetRefused, check_url
from apps.shared.auth import CurrentUser
from apps.shared.dapr_consumer import consume
from apps.shared.dapr_subscriptions import SubscriptionRegistry
from apps.shared.db import SessionDep
from apps.shared.errors import error_responses, invalid

SERVICE = AppId.NOTIFICATION.value
subscriptions = SubscriptionRegistry(AppId.NOTIFICATION)

router = APIRouter(
    prefix=NOTIFICATIONS_PREFIX, tags=["notifications"], responses=error_responses(401, 422)
)
settings_router = APIRouter(
    prefix=NOTIFICATION_SETTINGS_PREFIX,
    tags=["notifications"],
    responses=error_responses(401, 422),
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


@settings_router.put("", response_model=SettingsPublic)
async def put_settings(
    body: SettingsUpdate, request: Request, session: SessionDep, user: CurrentUser
) -> SettingsPublic:
    settings: NotificationServiceSettings = request.app.state.settings
    if body.webhook_url is not None:
        try:
            check_url(body.webhook_url, allow_private=settings.webhook_allow_private_targets)
        except TargetRefused as exc:
            raise invalid(["body", "webhook_url"], str(exc)) from None
    updated = await store.put_settings(session, user_id=user, update=body)
    await session.commit()
    return updated


@subscriptions.handler(events.NOTIFICATION_REMINDERS)
async def reminder_due(request: Request) -> JSONResponse:
    return await consume(
        request,
        service=SERVICE,
        topic=events.NOTIFICATION_REMINDERS.topic,
        accepted_types=(events.REMINDER_DUE,),
        handler=request.app.state.reminder_handler,
    )


def install_routes(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(settings_router)
    subscriptions.install(app)
