"""What Dapr delivers to the recurring service: `task.completed.v1` → the next occurrence,
created by the backend via service invocation; the topic's other events are acknowledged.

The effect of this event is a new task in the backend's database, so its idempotency
lives there: the backend writes this consumer's processed-event record (`recurring`,
the event id) in the same transaction as the next occurrence and answers a repeated
delivery with the occurrence it already created (200 instead of 201). This service keeps
no state per event; duplicates, reordering and several instances are all safe.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from apps.contracts import events
from apps.contracts.services import NEXT_OCCURRENCE_PATH, AppId
from apps.recurring.recurrence import NextOccurrence, RecurrenceError, next_occurrence
from apps.recurring.sandbox import RuleSandbox, RuleTimeout
from apps.shared.dapr import DaprAccess
from apps.shared.dapr_consumer import (
    PoisonEvent,
    ReceivedEvent,
    TransientError,
    acknowledge,
    consume,
)
from apps.shared.dapr_subscriptions import SubscriptionRegistry
from apps.shared.logs import get_logger

# The logger keeps the name it had before the handler moved here: its lines do not change.
_log = get_logger("apps.recurring.consumer")

subscriptions = SubscriptionRegistry(AppId.RECURRING)


@dataclass(frozen=True)
class CompletionHandler:
    """Everything handling one completion needs, built once in the app's lifespan
    (`app.state.completion_handler`)."""

    dapr: DaprAccess
    sandbox: RuleSandbox
    backend_app_id: str

    async def __call__(self, event: ReceivedEvent) -> bool:
        """True when this delivery created the next occurrence (or there is none to create);
        False when an earlier delivery of the same completion already did."""
        task = event.data
        if task.get("recurrence") is None:
            return True  # a one-off task: nothing follows it
        following = await self._next(task)
        if following is None:
            _log.info("series ended", task_id=task["id"])
            return True
        return await self._ask_backend(task, following, event.event_id)

    async def _next(self, task: Any) -> NextOccurrence | None:
        if task.get("due_at") is None or task.get("completed_at") is None:
            raise PoisonEvent("a completed recurring task needs due_at and completed_at")
        try:
            result: NextOccurrence | None = await self.sandbox.run(
                next_occurrence,
                rule_text=task["recurrence"]["rrule"],
                anchor=task["recurrence"]["anchor"],
                due_at=datetime.fromisoformat(task["due_at"]),
                completed_at=datetime.fromisoformat(task["completed_at"]),
                timezone=task["timezone"],
            )
        except (RecurrenceError, RuleTimeout) as exc:
            raise PoisonEvent(f"cannot compute the next occurrence: {exc}") from None
        return result

    async def _ask_backend(self, task: Any, following: NextOccurrence, event_id: uuid.UUID) -> bool:
        answer = await self.dapr.invoke(
            self.backend_app_id,
            NEXT_OCCURRENCE_PATH.format(task_id=task["id"]).lstrip("/"),
            body={
                "user_id": task["user_id"],
                "due_at": following.due_at.isoformat(),
                "rrule": following.rrule,
                "completion_event_id": str(event_id),
            },
        )
        if answer.status == 201:
            return True
        if answer.status == 200:
            return False  # created by an earlier delivery of this completion
        if answer.status == 409 and b"completion_already_handled" in answer.body:
            return False  # handled by an earlier delivery (its occurrence deleted since)
        if answer.status in (404, 409):
            # Deleted, reopened or no longer recurring since: nothing to create.
            _log.info("no next occurrence", task_id=task["id"], status=answer.status)
            return True
        if answer.status in (400, 422):
            raise PoisonEvent(f"backend refused the next occurrence: {answer.body[:500]!r}")
        raise TransientError(f"backend answered {answer.status}")


@subscriptions.handler(events.RECURRING_TASK_EVENTS, rule=events.TASK_COMPLETED_RULE)
async def task_completed(request: Request) -> JSONResponse:
    return await consume(
        request,
        service=AppId.RECURRING.value,
        topic=events.RECURRING_TASK_EVENTS.topic,
        accepted_types=(events.TASK_COMPLETED,),
        handler=request.app.state.completion_handler,
        # A bulk delivery's completions of different tasks go to the backend at once.
        key=_task_of,
    )


def _task_of(event: ReceivedEvent) -> object:
    return event.data.get("id")


@subscriptions.handler(events.RECURRING_TASK_EVENTS)
async def other_task_event(request: Request) -> JSONResponse:
    """The topic's other events: of no use here, acknowledged (they must not 404)."""
    return await acknowledge(request)
