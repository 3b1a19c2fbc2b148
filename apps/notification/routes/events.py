"""What Dapr delivers to the notification service: `reminder.due.v1` → a notification,
exactly once per event.

The processed-event record (consumer `notification`) and the notification with its
deliveries are written in one transaction: a redelivered event finds its record and
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apps.contracts import events
from apps.contracts.services import AppId
from apps.notification import store
from apps.notification.workers.webhooks import WebhookWorker
from apps.shared.dapr_consumer import ReceivedEvent, consume
from apps.shared.dapr_subscriptions import SubscriptionRegistry
from apps.shared.idempotency import record_processed
from apps.shared.metrics import NOTIFICATIONS_DELIVERED, REMINDER_LATENESS
from apps.shared.timeutil import utcnow

CONSUMER = AppId.NOTIFICATION.value
subscriptions = SubscriptionRegistry(AppId.NOTIFICATION)


@dataclass(frozen=True)
class ReminderHandler:
    """Handles one delivery; built in the app's lifespan (`app.state.reminder_handler`)."""

    session_factory: async_sessionmaker[AsyncSession]
    webhooks: WebhookWorker

    async def __call__(self, event: ReceivedEvent) -> bool:
        async with self.session_factory() as session, session.begin():
            if not await record_processed(session, consumer=CONSUMER, event_id=event.event_id):
                return False
            _, webhook_pending = await store.record_notification(
                session, event_id=event.event_id, data=event.data
            )
        # What a user feels: from the reminder's fire time to its notification existing.
        lateness = utcnow() - datetime.fromisoformat(event.data["remind_at"])
        REMINDER_LATENESS.observe(max(0.0, lateness.total_seconds()))
        NOTIFICATIONS_DELIVERED.labels("in_app", "delivered").inc()
        if webhook_pending:
            self.webhooks.nudge()
        return True


@subscriptions.handler(events.NOTIFICATION_REMINDERS)
async def reminder_due(request: Request) -> JSONResponse:
    return await consume(
        request,
        service=AppId.NOTIFICATION.value,
        topic=events.NOTIFICATION_REMINDERS.topic,
        accepted_types=(events.REMINDER_DUE,),
        handler=request.app.state.reminder_handler,
    )
