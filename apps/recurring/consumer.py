"""`task.completed.v1` → the next occurrence, created by the backend via service invocation.

Exactly one next occurrence per completion, whatever the duplicates: the backend keys
the successor on the completed task (unique `previous_task_id`) and answers an earlier
request's result again; this service also records each handled event in
`processed_events` (consumer `recurring`) so a redelivered event costs no call at all.
The record is written only after the backend answered, so a crash in between means one
more — harmless — call, never a lost occurrence.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apps.recurring.recurrence import NextOccurrence, RecurrenceError, next_occurrence
from apps.recurring.sandbox import RuleSandbox, RuleTimeout
from apps.shared.dapr import DaprAccess
from apps.shared.dapr_consumer import PoisonEvent, ReceivedEvent, TransientError
from apps.shared.idempotency import record_processed
from apps.shared.logs import get_logger
from apps.shared.models import ProcessedEvent

CONSUMER = "recurring"

_log = get_logger("apps.recurring.consumer")
_PROCESSED = ProcessedEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CompletionHandler:
    """Everything handling one completion needs, built once in the app's lifespan."""

    dapr: DaprAccess
    sandbox: RuleSandbox
    session_factory: async_sessionmaker[AsyncSession]
    backend_app_id: str

    async def __call__(self, event: ReceivedEvent) -> bool:
        task = event.data
        if task.get("recurrence") is None:
            return True  # a one-off task: nothing follows it
        if await self._already_processed(event.event_id):
            return False
        following = await self._next(task)
        if following is not None:
            await self._ask_backend(task, following, event.event_id)
        else:
            _log.info("series ended", task_id=task["id"])
        await self._mark_processed(event.event_id)
        return True

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

    async def _ask_backend(self, task: Any, following: NextOccurrence, event_id: uuid.UUID) -> None:
        answer = await self.dapr.invoke(
            self.backend_app_id,
            f"internal/v1/tasks/{task['id']}/next-occurrence",
            body={
                "user_id": task["user_id"],
                "due_at": following.due_at.isoformat(),
                "rrule": following.rrule,
                "completion_event_id": str(event_id),
            },
        )
        if answer.status in (200, 201):
            return
        if answer.status in (404, 409):
            # Deleted, reopened or no longer recurring since: nothing to create.
            _log.info("no next occurrence", task_id=task["id"], status=answer.status)
            return
        if answer.status in (400, 422):
            raise PoisonEvent(f"backend refused the next occurrence: {answer.body[:500]!r}")
        raise TransientError(f"backend answered {answer.status}")

    async def _already_processed(self, event_id: uuid.UUID) -> bool:
        async with self.session_factory() as session:
            found = await session.execute(
                sa.select(sa.literal(1)).where(
                    _PROCESSED.c.consumer == CONSUMER, _PROCESSED.c.event_id == event_id
                )
            )
            return found.first() is not None

    async def _mark_processed(self, event_id: uuid.UUID) -> None:
        async with self.session_factory() as session, session.begin():
            await record_processed(session, consumer=CONSUMER, event_id=event_id)
