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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from apps.contracts import events
from apps.contracts.services import NEXT_OCCURRENCE_PATH, NEXT_OCCURRENCES_PATH, AppId
from apps.recurring.recurrence import NextOccurrence, RecurrenceError, next_occurrence
from apps.recurring.sandbox import RuleSandbox, RuleTimeout
from apps.shared.dapr import DaprAccess
from apps.shared.dapr_consumer import (
    BulkItem,
    EntryResult,
    PoisonEvent,
    ReceivedEvent,
    TransientError,
    acknowledge,
    consume,
)
from apps.shared.dapr_subscriptions import SubscriptionRegistry
from apps.shared.logs import get_logger
from apps.shared.tracing import TRACEPARENT, TRACESTATE, span_trace_headers, tracer

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
        try:
            result: NextOccurrence | None = await self.sandbox.run(
                next_occurrence, **_rule_call(task)
            )
        except (RecurrenceError, RuleTimeout) as exc:
            raise PoisonEvent(f"cannot compute the next occurrence: {exc}") from None
        return result

    async def _next_each(self, tasks: Sequence[Any]) -> list[NextOccurrence | None | Exception]:
        """`_next` for each task, in one call to the sandbox; an item's failure (a
        PoisonEvent) is its result, the others go on."""
        outcomes: list[NextOccurrence | None | Exception] = [None] * len(tasks)
        calls: list[dict[str, Any]] = []
        called: list[int] = []
        for index, task in enumerate(tasks):
            try:
                calls.append(_rule_call(task))
                called.append(index)
            except Exception as exc:  # an event without what a rule needs: its own failure
                outcomes[index] = exc
        results = await self.sandbox.run_each(next_occurrence, calls) if calls else []
        for index, result in zip(called, results, strict=True):
            if isinstance(result, RecurrenceError | RuleTimeout):
                outcomes[index] = PoisonEvent(f"cannot compute the next occurrence: {result}")
            else:
                outcomes[index] = result
        return outcomes

    async def _ask_backend(self, task: Any, following: NextOccurrence, event_id: uuid.UUID) -> bool:
        answer = await self.dapr.invoke(
            self.backend_app_id,
            NEXT_OCCURRENCE_PATH.format(task_id=task["id"]).lstrip("/"),
            body=_ask(task, following, event_id),
        )
        error = b"completion_already_handled" in answer.body
        return _settled(task, answer.status, "completion_already_handled" if error else None)

    async def batch(self, items: Sequence[BulkItem]) -> list[EntryResult]:
        """A bulk delivery's completions: their next occurrences computed here, then
        created by the backend in one call and one transaction (NEXT_OCCURRENCES_PATH),
        each item carrying its own trace; a result per entry, as `__call__` gives it.

        One completion alone takes the single route. Should the backend refuse the
        batch as a whole (400/422: one item it cannot read), each goes on its own, so
        that only the bad one is dead-lettered."""
        results: list[EntryResult] = [True] * len(items)
        asks: list[tuple[int, Any, NextOccurrence]] = []
        recurring = [i for i, item in enumerate(items) if item.event.data.get("recurrence")]
        nexts = await self._next_each([items[i].event.data for i in recurring])
        for index, following in zip(recurring, nexts, strict=True):
            task = items[index].event.data
            if isinstance(following, Exception):
                results[index] = following
            elif following is None:
                with trace.use_span(items[index].span, end_on_exit=False):
                    _log.info("series ended", task_id=task["id"])
            else:
                asks.append((index, task, following))
        if len(asks) == 1:
            index, task, following = asks[0]
            results[index] = await self._alone(items[index], task, following)
        elif asks:
            for (index, _, _), result in zip(
                asks, await self._ask_backend_many(items, asks), strict=True
            ):
                results[index] = result
        return results

    async def _alone(self, item: BulkItem, task: Any, following: NextOccurrence) -> EntryResult:
        with trace.use_span(item.span, end_on_exit=False):
            try:
                return await self._ask_backend(task, following, item.event.event_id)
            except Exception as exc:
                return exc

    async def _ask_backend_many(
        self, items: Sequence[BulkItem], asks: Sequence[tuple[int, Any, NextOccurrence]]
    ) -> list[EntryResult]:
        spans = []
        body_items = []
        for index, task, following in asks:
            span = tracer().start_span(
                f"invoke {self.backend_app_id} POST",
                context=trace.set_span_in_context(items[index].span),
                kind=SpanKind.CLIENT,
                attributes={"rpc.system": "dapr", "rpc.service": self.backend_app_id},
            )
            spans.append(span)
            headers = span_trace_headers(span)
            body_items.append(
                {
                    **_ask(task, following, items[index].event.event_id),
                    "task_id": task["id"],
                    "traceparent": headers.get(TRACEPARENT),
                    "tracestate": headers.get(TRACESTATE),
                }
            )
        try:
            answer = await self.dapr.invoke(
                self.backend_app_id,
                NEXT_OCCURRENCES_PATH.lstrip("/"),
                body={"items": body_items},
            )
        except Exception as exc:
            answer = None
            failure: BaseException = exc
        for span in spans:
            span.end()
        if answer is None:
            return [failure] * len(asks)
        if answer.status in (400, 422):
            _log.warning("backend refused a batch; asking for each", status=answer.status)
            return [await self._alone(items[index], task, f) for index, task, f in asks]
        if answer.status != 200:
            return [TransientError(f"backend answered {answer.status}")] * len(asks)
        outcomes: list[EntryResult] = []
        for (_, task, _), result in zip(asks, answer.json()["results"], strict=True):
            try:
                outcomes.append(_settled(task, int(result["status"]), result.get("error")))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


def _rule_call(task: Any) -> dict[str, Any]:
    """The arguments of `next_occurrence` for a completed task (a PoisonEvent when the
    event lacks what it needs)."""
    if task.get("due_at") is None or task.get("completed_at") is None:
        raise PoisonEvent("a completed recurring task needs due_at and completed_at")
    return {
        "rule_text": task["recurrence"]["rrule"],
        "anchor": task["recurrence"]["anchor"],
        "due_at": datetime.fromisoformat(task["due_at"]),
        "completed_at": datetime.fromisoformat(task["completed_at"]),
        "timezone": task["timezone"],
    }


def _ask(task: Any, following: NextOccurrence, event_id: uuid.UUID) -> dict[str, Any]:
    return {
        "user_id": task["user_id"],
        "due_at": following.due_at.isoformat(),
        "rrule": following.rrule,
        "completion_event_id": str(event_id),
    }


def _settled(task: Any, status: int, error: str | None) -> bool:
    """What the backend's answer for one completion means: True when this delivery
    created the next occurrence (or there is nothing to create), False when an earlier
    delivery did; raises for a refusal (PoisonEvent) or trouble (TransientError)."""
    if status == 201:
        return True
    if status == 200:
        return False  # created by an earlier delivery of this completion
    if status == 409 and error == "completion_already_handled":
        return False  # handled by an earlier delivery (its occurrence deleted since)
    if status in (404, 409):
        # Deleted, reopened or no longer recurring since: nothing to create.
        _log.info("no next occurrence", task_id=task["id"], status=status)
        return True
    if status in (400, 422):
        raise PoisonEvent(f"backend refused the next occurrence ({status}: {error})")
    raise TransientError(f"backend answered {status}")


@subscriptions.handler(events.RECURRING_TASK_EVENTS, rule=events.TASK_COMPLETED_RULE)
async def task_completed(request: Request) -> JSONResponse:
    return await consume(
        request,
        service=AppId.RECURRING.value,
        topic=events.RECURRING_TASK_EVENTS.topic,
        accepted_types=(events.TASK_COMPLETED,),
        handler=request.app.state.completion_handler,
        batch_handler=request.app.state.completion_handler.batch,
    )


@subscriptions.handler(events.RECURRING_TASK_EVENTS)
async def other_task_event(request: Request) -> JSONResponse:
    """The topic's other events: of no use here, acknowledged (they must not 404)."""
    return await acknowledge(request)
