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
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy.exc
from fastapi import Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

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
) -> JSONResponse:
    """Handle one Dapr delivery and answer with the status Dapr should act on."""
    started = time.perf_counter()
    body = await request.body()
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
    """A route for events this app receives but has no use for (they must not 404)."""
    return JSONResponse({"status": "SUCCESS"})
