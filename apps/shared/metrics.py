"""Prometheus metrics with the names the dashboards and alert rules query (architecture §10).

The metric objects live in the process-wide default registry; every sample carries the
`service` label, so the same definitions serve all three services.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request, Response
from opentelemetry import trace
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OUTBOX_PENDING_EVENTS = Gauge(
    "outbox_pending_events", "Outbox rows not yet published.", ["service"]
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "outbox_oldest_pending_age_seconds",
    "Age of the oldest unpublished outbox row (0 when none).",
    ["service"],
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "outbox_publish_failures_total",
    "Failed attempts to publish an outbox row.",
    ["service", "topic"],
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events received from pub/sub, by outcome (success, retry, drop, deadletter, duplicate).",
    ["service", "topic", "type", "outcome"],
)
EVENT_PROCESSING_DURATION = Histogram(
    "event_processing_duration_seconds",
    "Time to handle one received event.",
    ["service", "topic", "type"],
)
REMINDER_LATENESS = Histogram(
    "reminder_lateness_seconds",
    "How long after its fire time a reminder was emitted.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
NEXT_OCCURRENCE_DELAY = Histogram(
    "next_occurrence_delay_seconds",
    "Time from a recurring task's completion to its next occurrence being committed "
    "(the backend, once per successor created): the pipeline-freshness SLI.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
NOTIFICATIONS_DELIVERED = Counter(
    "notifications_delivered_total",
    "Notification deliveries, by channel and outcome.",
    ["channel", "outcome"],
)

# Requests that matched no route share one label value, so scanners probing random
# paths cannot create unbounded label cardinality.
UNMATCHED_ROUTE = "unmatched"


class HttpMetricsMiddleware:
    """Pure ASGI middleware counting and timing requests by route template."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        # The labelled series, looked up once each: `labels()` checks and locks on every
        # call, half of this middleware's cost. Bounded as the series are (route
        # templates, the methods httptools parses, status codes).
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            counted = self._requests.get((method, route, status))
            if counted is None:
                counted = HTTP_REQUESTS.labels(self.service, method, route, str(status))
                self._requests[(method, route, status)] = counted
            counted.inc()
            timed = self._durations.get((method, route))
            if timed is None:
                timed = HTTP_REQUEST_DURATION.labels(self.service, method, route)
                self._durations[(method, route)] = timed
            timed.observe(time.perf_counter() - started, exemplar=trace_exemplar())


def trace_exemplar() -> dict[str, str] | None:
    """The current sampled trace's id, as the exemplar of a latency observation.

    Exemplars exist only in the OpenMetrics exposition; the Prometheus text format drops
    them (prometheus_client writes them only from its `openmetrics` encoder), so
    `/metrics` answers in OpenMetrics to a scraper that asks for it (Prometheus does,
    and keeps exemplars with `--enable-feature=exemplar-storage`), and in the text
    format otherwise.
    """
    context = trace.get_current_span().get_span_context()
    if not (context.is_valid and context.trace_flags.sampled):
        return None
    return {"trace_id": f"{context.trace_id:032x}"}


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def add_metrics_route(app: FastAPI) -> None:
    """Serve the default registry on GET /metrics (left out of the OpenAPI document), in
    OpenMetrics (with exemplars) when the scraper's Accept asks for it, else as text."""

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(REGISTRY), headers={"content-type": content_type})
