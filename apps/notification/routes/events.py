"""What Dapr delivers to the notification service: `reminder.due.v1` → a notification,
exactly once per event.

The processed-event record (consumer `notification`) and the notification with its
deliveries are written in one transaction: a redelivered event finds its record and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apps.contracts import events
from apps.contracts.services import AppId
from apps.notification import store
from apps.notification.workers.webhooks import WebhookWorker
from apps.shared.dapr_consumer import (
    TRANSIENT_ERRORS,
    BulkItem,
    EntryResult,
    ReceivedEvent,
    consume,
)
from apps.shared.dapr_subscriptions import SubscriptionRegistry
from apps.shared.idempotency import record_processed
from apps.shared.logs import get_logger
from apps.shared.metrics import NOTIFICATIONS_DELIVERED, REMINDER_LATENESS
from apps.shared.timeutil import utcnow
from apps.shared.tracing import span_trace_headers

CONSUMER = AppId.NOTIFICATION.value
_log = get_logger("apps.notification.consumer")
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
        self._delivered([event], webhook_pending=webhook_pending)
        return True

    async def batch(self, items: Sequence[BulkItem]) -> list[EntryResult]:
        """A bulk delivery in one transaction of a few statements, whatever its size
        (`store.record_notifications`): one commit for all its reminders.

        A duplicate (delivered before, or twice in this batch) finds its record and
        changes nothing. Should the transaction fail for a reason other than an
        unreachable database, each entry is tried again on its own, so that one bad
        entry cannot hold back the others (it alone is retried, then dead-lettered).
        """
        try:
            async with self.session_factory() as session, session.begin():
                fresh, webhook_pending = await store.record_notifications(
                    session,
                    consumer=CONSUMER,
                    events=[
                        (item.event.event_id, item.event.data, span_trace_headers(item.span))
                        for item in items
                    ],
                )
        except TRANSIENT_ERRORS as exc:
            return [exc] * len(items)
        except Exception as exc:
            _log.warning("bulk delivery failed as a whole; entries go one by one", error=repr(exc))
            return [await self._alone(item) for item in items]
        self._delivered(
            [item.event for item, new in zip(items, fresh, strict=True) if new],
            webhook_pending=webhook_pending,
        )
        return list(fresh)

    async def _alone(self, item: BulkItem) -> EntryResult:
        with trace.use_span(item.span, end_on_exit=False):
            try:
                return await self(item.event)
            except Exception as exc:
                return exc

    def _delivered(self, delivered: Sequence[ReceivedEvent], *, webhook_pending: bool) -> None:
        # What a user feels: from the reminder's fire time to its notification existing.
        now = utcnow()
        for event in delivered:
            lateness = now - datetime.fromisoformat(event.data["remind_at"])
            REMINDER_LATENESS.observe(max(0.0, lateness.total_seconds()))
            NOTIFICATIONS_DELIVERED.labels("in_app", "delivered").inc()
        if webhook_pending:
            self.webhooks.nudge()


@subscriptions.handler(events.NOTIFICATION_REMINDERS)
async def reminder_due(request: Request) -> JSONResponse:
    return await consume(
        request,
        service=AppId.NOTIFICATION.value,
        topic=events.NOTIFICATION_REMINDERS.topic,
        accepted_types=(events.REMINDER_DUE,),
        handler=request.app.state.reminder_handler,
        batch_handler=request.app.state.reminder_handler.batch,
    )
