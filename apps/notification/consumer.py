"""`reminder.due.v1` → a notification, exactly once per event.

The processed-event record (consumer `notification`) and the notification with its
deliveries are written in one transaction: a redelivered event finds its record and
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apps.contracts.services import AppId
from apps.notification import store
from apps.notification.webhooks import WebhookWorker
from apps.shared.dapr_consumer import ReceivedEvent
from apps.shared.idempotency import record_processed
from apps.shared.metrics import NOTIFICATIONS_DELIVERED, REMINDER_LATENESS
from apps.shared.timeutil import utcnow

CONSUMER = AppId.NOTIFICATION.value


@dataclass(frozen=True)
class ReminderHandler:
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
