"""Receiving events from Dapr: read and validate, run the handler, answer like Dapr expects.

Every delivery ends in one of Dapr's statuses (HTTP 200 with a JSON `status`):

* `SUCCESS` — handled now, or already handled before (a duplicate; the handler tells);
* `RETRY` — transient trouble (database or sidecar unreachable) and unexpected errors:
  Dapr retries under its resiliency policy and, when the retries run out, moves the
  event to the subscription's dead-letter topic, so nothing retries forever;
* `DROP` — the event can never succeed (not a CloudEvent, fails its JSON Schema, or the
  handler raised `PoisonEvent`): Dapr (≥ 1.13) sends a dropped event to the dead-letter
  topic, so nothing is dropped silently.

404 is never used: Dapr would drop the event without dead-lettering it.

A bulk delivery (the subscription's `bulkSubscribe`) gets the same status for each of its
entries, `{"statuses": [{"entryId", "status"}]}` (`consume_bulk`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy.exc
from fastapi import Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from apps.shared.dapr import SidecarUnavailable
from apps.shared.events.validation import schema_errors
from apps.shared.logs import get_logger
from apps.shared.metrics import EVENT_PROCESSING_DURATION, EVENTS_CONSUMED, trace_exemplar
from apps.shared.tracing import TRACEPARENT, TRACESTATE, context_from, tracer

_log = get_logger("apps.events")

UNKNOWN_TYPE = "unknown"


class PoisonEvent(Exception):
    """This event can never be processed: it belongs in the dead-letter topic."""


class TransientError(Exception):
    """Trouble that may pass (a dependency is down): the event should be retried."""


# Failures that say nothing about the event itself, only that something is unreachable.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    SidecarUnavailable,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class Outcome(StrEnum):
    """The `outcome` label of `events_consumed_total`."""

    SUCCESS = "success"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    DEADLETTER = "deadletter"


_STATUS = {
    Outcome.SUCCESS: "SUCCESS",
    Outcome.DUPLICATE: "SUCCESS",
    Outcome.RETRY: "RETRY",
    Outcome.DEADLETTER: "DROP",
}


@dataclass(frozen=True)
class ReceivedEvent:
    """A delivered event: the envelope of §4, checked against its schema."""

    event_id: uuid.UUID
    event_type: str
    topic: str
    envelope: Mapping[str, Any]
    cloud_event: Mapping[str, Any]

    @property
    def data(self) -> Mapping[str, Any]:
        data: Mapping[str, Any] = self.envelope["data"]
        return data


# The handler returns False when the event had been processed before (a duplicate).
Handler = Callable[[ReceivedEvent], Awaitable[bool]]


def read_event(body: bytes, *, accepted_types: Collection[str]) -> ReceivedEvent:
    """Parse a CloudEvent delivery; anything that can never be processed is `PoisonEvent`."""
    try:
        cloud_event = json.loads(body)
    except ValueError as exc:
        raise PoisonEvent(f"body is not JSON: {exc}") from None
    return read_cloud_event(cloud_event, accepted_types=accepted_types)


def read_cloud_event(cloud_event: object, *, accepted_types: Collection[str]) -> ReceivedEvent:
    """Check a parsed CloudEvent; anything that can never be processed is `PoisonEvent`."""
    if not isinstance(cloud_event, dict):
        raise PoisonEvent("body is not a CloudEvent object")
    envelope = cloud_event.get("data")
    if isinstance(envelope, str):  # a JSON payload carried as text
        try:
            envelope = json.loads(envelope)
        except ValueError:
            raise PoisonEvent("CloudEvent data is not JSON") from None
    if not isinstance(envelope, dict):
        raise PoisonEvent("CloudEvent data is not an event envelope")
    errors = schema_errors(envelope)
    if errors:
        raise PoisonEvent("envelope fails its schema: " + "; ".join(errors[:5]))
    event_type = str(envelope["event_type"])
    if event_type not in accepted_types:
        raise PoisonEvent(f"{event_type} is not handled here")
    if cloud_event.get("id") not in (None, envelope["event_id"]):
        raise PoisonEvent("CloudEvent id differs from the envelope's event_id")
    if cloud_event.get("type") not in (None, event_type):
        raise PoisonEvent("CloudEvent type differs from the envelope's event_type")
    return ReceivedEvent(
        event_id=uuid.UUID(str(envelope["event_id"])),
        event_type=event_type,
        topic=str(cloud_event.get("topic") or ""),
        envelope=envelope,
        cloud_event=cloud_event,
    )


def _label_type(cloud_event_type: object, accepted_types: Collection[str]) -> str:
    # Only known types become label values: label cardinality stays bounded.
    return (
        cloud_event_type
        if isinstance(cloud_event_type, str) and (cloud_event_type in accepted_types)
        else UNKNOWN_TYPE
    )


async def consume(
    request: Request,
    *,
    service: str,
    topic: str,
    accepted_types: Collection[str],
    handler: Handler,
    batch_handler: BatchHandler | None = None,
    key: Callable[[ReceivedEvent], object] | None = None,
) -> JSONResponse:
    """Handle one Dapr delivery and answer with the status Dapr should act on.

    A bulk delivery (the subscription's `bulkSubscribe`) is answered entry by entry:
    see `consume_bulk`; `batch_handler` and `key` only matter there.
    """
    started = time.perf_counter()
    body = await request.body()
    bulk = _bulk_entries(body)
    if bulk is not None:
        statuses = await consume_bulk(
            bulk,
            service=service,
            topic=topic,
            accepted_types=accepted_types,
            handler=handler,
            batch_handler=batch_handler,
            key=key,
            started=started,
        )
        return JSONResponse({"statuses": statuses})
    event_type = UNKNOWN_TYPE
    event_id: object = None
    try:
        try:
            event = read_event(body, accepted_types=accepted_types)
        except PoisonEvent:
            peek = _peek(body)
            event_type = _label_type(peek.get("type"), accepted_types)
            event_id = peek.get("id")
            raise
        event_type, event_id = event.event_type, event.event_id
        with tracer().start_as_current_span(
            f"{topic} process",
            context=_delivery_context(event.cloud_event),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dapr",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.message.id": str(event_id),
                "cloudevents.event_type": event_type,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                handled = await handler(event)
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
        outcome = Outcome.SUCCESS if handled else Outcome.DUPLICATE
    except PoisonEvent as exc:
        _log.error("event dead-lettered", event_id=str(event_id), topic=topic, reason=str(exc))
        outcome = Outcome.DEADLETTER
    except TRANSIENT_ERRORS as exc:
        _log.warning("event will be retried", event_id=str(event_id), error=repr(exc))
        outcome = Outcome.RETRY
    except Exception as exc:  # unknown: retried, then dead-lettered by Dapr's policy
        _log.error("event handler failed", event_id=str(event_id), exc_info=exc)
        outcome = Outcome.RETRY
    EVENTS_CONSUMED.labels(service, topic, event_type, outcome.value).inc()
    EVENT_PROCESSING_DURATION.labels(service, topic, event_type).observe(
        time.perf_counter() - started, exemplar=trace_exemplar()
    )
    return JSONResponse({"status": _STATUS[outcome]})


def _bulk_entries(body: bytes) -> list[Any] | None:
    """The entries of a bulk delivery, or None when `body` is a single CloudEvent.

    daprd posts a bulk delivery as `application/json`, an envelope of type
    `com.dapr.event.sent.bulk` whose `entries` hold `{entryId, event, metadata,
    contentType}` (dapr/dapr pkg/runtime/pubsub/bulksubscribe_events.go); a CloudEvent
    has no `entries` member. Cheap to ask: a single event's body starts with `{"` and
    holds no `"entries"` key, so it is only parsed here when it might be a bulk one.
    """
    if b'"entries"' not in body:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or "specversion" in payload:
        return None
    entries = payload.get("entries")
    return entries if isinstance(entries, list) else None


@dataclass(frozen=True)
class BulkItem:
    """One valid entry of a bulk delivery, with the span its handling belongs under."""

    entry_id: str
    event: ReceivedEvent
    span: Span


# The result of one entry: True (handled now), False (a duplicate), or what it raised.
EntryResult = bool | BaseException
# Handles a whole bulk delivery's valid entries at once (one transaction, say); one
# result per item, in order. Each item's work should run under its span
# (`trace.use_span(item.span)`), so what it calls joins the event's trace.
BatchHandler = Callable[[Sequence[BulkItem]], Awaitable[Sequence[EntryResult]]]


async def consume_bulk(
    entries: Sequence[Any],
    *,
    service: str,
    topic: str,
    accepted_types: Collection[str],
    handler: Handler,
    batch_handler: BatchHandler | None = None,
    key: Callable[[ReceivedEvent], object] | None = None,
    started: float | None = None,
) -> list[dict[str, str]]:
    """The `statuses` of a bulk delivery: `{"entryId", "status"}` for every entry.

    daprd reads them per entry (dapr/dapr pkg/runtime/subscription/postman/http/http.go
    `DeliverBulk`): SUCCESS is done; DROP goes to the dead-letter topic on its own;
    RETRY — and an entry left without a status, or with an empty one — is retried
    alone, then dead-lettered. So every entry gets its status here, the same one it
    would get delivered alone: a poison entry among good ones is dropped (only it
    reaches the dead-letter topic), and a duplicate is a SUCCESS without a second effect.

    Valid entries go to `batch_handler` when there is one; otherwise each to `handler`,
    one after another — or, given `key`, entries of different keys concurrently (those
    of one key still in delivery order).
    """
    started = time.perf_counter() if started is None else started
    statuses: dict[str, Outcome] = {}
    ids: list[str] = []
    items: list[BulkItem] = []
    for position, entry in enumerate(entries):
        entry_id = str(entry.get("entryId")) if isinstance(entry, dict) else str(position)
        ids.append(entry_id)
        raw = entry.get("event") if isinstance(entry, dict) else None
        try:
            if isinstance(raw, str | bytes):  # a CloudEvent carried as text
                try:
                    raw = json.loads(raw)
                except ValueError:
                    raise PoisonEvent("entry event is not JSON") from None
            event = read_cloud_event(raw, accepted_types=accepted_types)
        except PoisonEvent as exc:
            peek = raw if isinstance(raw, dict) else {}
            _log.error(
                "event dead-lettered", event_id=str(peek.get("id")), topic=topic, reason=str(exc)
            )
            _count(
                service,
                topic,
                _label_type(peek.get("type"), accepted_types),
                Outcome.DEADLETTER,
                started,
            )
            statuses[entry_id] = Outcome.DEADLETTER
            continue
        items.append(BulkItem(entry_id, event, _entry_span(topic, event)))

    if items:
        if batch_handler is not None:
            results = list(await batch_handler(items))
        else:
            results = await _each(items, handler, key)
        for item, result in zip(items, results, strict=True):
            outcome = _outcome_of(result, item.event)
            if isinstance(result, BaseException):
                item.span.set_status(Status(StatusCode.ERROR, type(result).__name__))
            item.span.end()
            _count(service, topic, item.event.event_type, outcome, started)
            statuses[item.entry_id] = outcome
    return [{"entryId": entry_id, "status": _STATUS[statuses[entry_id]]} for entry_id in ids]


async def _each(
    items: Sequence[BulkItem], handler: Handler, key: Callable[[ReceivedEvent], object] | None
) -> list[EntryResult]:
    results: dict[int, EntryResult] = {}

    async def run(group: Sequence[int]) -> None:
        for index in group:
            with trace.use_span(items[index].span, end_on_exit=False):
                try:
                    results[index] = await handler(items[index].event)
                except Exception as exc:
                    results[index] = exc

    if key is None:
        await run(range(len(items)))
    else:
        groups: dict[object, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(key(item.event), []).append(index)
        await asyncio.gather(*(run(group) for group in groups.values()))
    return [results[index] for index in range(len(items))]


def _entry_span(topic: str, event: ReceivedEvent) -> Span:
    """The handling span of one bulk entry: under the CloudEvent's own trace context
    (a bulk request carries no one trace of its entries)."""
    traceparent = event.cloud_event.get(TRACEPARENT)
    tracestate = event.cloud_event.get(TRACESTATE)
    return tracer().start_span(
        f"{topic} process",
        context=context_from(
            traceparent if isinstance(traceparent, str) else None,
            tracestate if isinstance(tracestate, str) else None,
        ),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "dapr",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.message.id": str(event.event_id),
            "cloudevents.event_type": event.event_type,
            "messaging.batch.message_count": 1,
        },
    )


def _outcome_of(result: EntryResult, event: ReceivedEvent) -> Outcome:
    """The outcome of one entry, classified as a single delivery's would be."""
    if result is True:
        return Outcome.SUCCESS
    if result is False:
        return Outcome.DUPLICATE
    if isinstance(result, PoisonEvent):
        _log.error("event dead-lettered", event_id=str(event.event_id), reason=str(result))
        return Outcome.DEADLETTER
    if isinstance(result, TRANSIENT_ERRORS):
        _log.warning("event will be retried", event_id=str(event.event_id), error=repr(result))
        return Outcome.RETRY
    _log.error("event handler failed", event_id=str(event.event_id), exc_info=result)
    return Outcome.RETRY


def _count(service: str, topic: str, event_type: str, outcome: Outcome, started: float) -> None:
    EVENTS_CONSUMED.labels(service, topic, event_type, outcome.value).inc()
    EVENT_PROCESSING_DURATION.labels(service, topic, event_type).observe(
        time.perf_counter() - started, exemplar=trace_exemplar()
    )


def _delivery_context(cloud_event: Mapping[str, Any]) -> Any:
    """Where the handling span hangs: under the delivery's request span, which daprd's
    `traceparent` header already continues (the FastAPI instrumentation read it); without
    one (tracing off here, or a delivery without the header), under the CloudEvent's own
    `traceparent` extension attribute, which daprd sets on publish."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    traceparent = cloud_event.get(TRACEPARENT)
    tracestate = cloud_event.get(TRACESTATE)
    return context_from(
        traceparent if isinstance(traceparent, str) else None,
        tracestate if isinstance(tracestate, str) else None,
    )


def _peek(body: bytes) -> dict[str, Any]:
    """The CloudEvent's top level, if it is one (for logs and labels only)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def acknowledge(request: Request) -> JSONResponse:
    """A route for events this app receives but has no use for (they must not 404);
    a bulk delivery gets SUCCESS for each of its entries."""
    entries = _bulk_entries(await request.body())
    if entries is not None:
        return JSONResponse(
            {
                "statuses": [
                    {
                        "entryId": str(e.get("entryId")) if isinstance(e, dict) else str(i),
                        "status": "SUCCESS",
                    }
                    for i, e in enumerate(entries)
                ]
            }
        )
    return JSONResponse({"status": "SUCCESS"})
