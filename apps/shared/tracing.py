"""Distributed tracing with OpenTelemetry: one trace per user action, across every hop.

Tracing is on when spans have somewhere to go: `OTEL_EXPORTER_OTLP_ENDPOINT` (the
standard OTLP variable; the OTLP/HTTP exporter reads it and its siblings itself) or
`TODO_TRACES_FILE` (`todo-local`: spans appended as JSON lines). With neither, no
provider is installed and nothing is instrumented, so a service without a collector
behaves, and costs, exactly as before.

What carries the trace:

* HTTP: the FastAPI instrumentation continues an incoming W3C `traceparent`; the httpx
  instrumentation sends it on every outgoing call (webhooks, JWKS);
* Dapr service invocation: `DaprAccess.invoke` opens a client span and sends its
  `traceparent`/`tracestate` as headers; daprd passes them to the target app;
* pub/sub: the outbox row stores the context of the request that wrote it
  (`outbox_values`); the relay publishes under a span continuing it and sets the
  CloudEvent's `traceparent`/`tracestate` through the `cloudevent.` publish metadata
  (Dapr lets publish metadata override these attributes:
  https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-cloudevents/
  and dapr/dapr pkg/runtime/pubsub/cloudevents.go, `mapstructure:"cloudevent.traceparent"`);
  daprd delivers the CloudEvent with its `traceparent` as an HTTP header, so the
  subscriber's request span continues the publisher's trace.

Sampling is parent-based with a ratio for new traces (`OTEL_TRACES_SAMPLER_ARG`, the
standard variable of `parentbased_traceidratio`, the one sampler this module installs), so a
trace is kept or dropped whole. Spans leave through a BatchSpanProcessor (exported off
the request path, in a background thread).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from apps.shared.settings import SettingsGroup

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_PROPAGATOR = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("apps")
_configured_lock = threading.Lock()
_configured: str | None = None  # the service this process traces as, once configured


class TracingSettings(SettingsGroup):
    """Where spans go and how many new traces are kept (standard `OTEL_*` names)."""

    model_config = SettingsConfigDict(env_prefix="")

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector base URL; tracing is off without it"
    )
    otel_traces_sampler_arg: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of new traces kept (parent-based)"
    )
    todo_traces_file: str | None = Field(
        default=None, description="todo-local: append finished spans to this JSON-lines file"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.otel_exporter_otlp_endpoint or self.todo_traces_file)


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON line (what `todo-local trace` reads).

    Several processes append to the same file: each batch is written with one `write`
    on a file opened for appending, so lines of different processes do not interleave.
    A file grown past `max_bytes` is moved to `<name>.1` (replacing the one before), so
    a long-running todo-local keeps at most about twice that (its reminder scan alone
    starts a trace every second).
    """

    def __init__(self, path: str | Path, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(
            json.dumps(span_record(span), separators=(",", ":")) + "\n" for span in spans
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                if self.path.stat().st_size > self.max_bytes:
                    # Two processes may both rotate: the second moves a short file over
                    # the first's; a few spans lost, locally, is acceptable.
                    os.replace(self.path, rotated(self.path))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, lines.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def rotated(path: Path) -> Path:
    """Where `JsonLinesSpanExporter` moves a full file."""
    return path.with_name(path.name + ".1")


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as a JSON-compatible record (ids in W3C hex)."""
    context = span.context
    parent = span.parent
    start, end = span.start_time or 0, span.end_time or 0
    return {
        "trace_id": f"{context.trace_id:032x}" if context else None,
        "span_id": f"{context.span_id:016x}" if context else None,
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "service": span.resource.attributes.get("service.name"),
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": start,
        "duration_ms": round((end - start) / 1e6, 3),
        "status": span.status.status_code.name,
        "attributes": {key: _plain(value) for key, value in (span.attributes or {}).items()},
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class RootSampler(Sampler):
    """For spans that start a trace: `ratio` of them, except client spans.

    A client span without a parent is a background loop's database statement (the
    outbox relay polls every second in every replica) or a call made outside any
    request: hundreds of one-span traces a minute that tell nothing. Everything a
    user's action causes starts at a server span (or the relay's producer span) and
    is sampled by the ratio; its descendants follow it (`ParentBased`).
    """

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RootSampler{{{self._ratio.get_description()}, no root client spans}}"


def configure_tracing(service: str, settings: TracingSettings) -> bool:
    """Install this process's tracer provider (once) if spans have somewhere to go.

    Returns whether tracing is on. The global provider can be set only once per process:
    later calls (another app object in the same process) keep the first one.
    """
    global _configured
    if not settings.enabled:
        return False
    with _configured_lock:
        if _configured is not None:
            return True
        provider = TracerProvider(
            resource=Resource.create({"service.name": service}),
            sampler=ParentBased(RootSampler(settings.otel_traces_sampler_arg)),
        )
        if settings.otel_exporter_otlp_endpoint:
            # Imported here: the exporter pulls in protobuf/requests, unused otherwise.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        if settings.todo_traces_file:
            provider.add_span_processor(
                BatchSpanProcessor(JsonLinesSpanExporter(settings.todo_traces_file))
            )
        trace.set_tracer_provider(provider)
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
        _configured = service
    return True


def shutdown_tracing() -> None:
    """Flush what the batch processors still hold (at the end of the lifespan)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(timeout_millis=2000)


def instrument_app(app: FastAPI, service: str, settings: TracingSettings) -> None:
    """Server spans for the app's requests, continuing an incoming `traceparent`."""
    if not configure_tracing(service, settings):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # No spans for the ASGI send/receive events (two or three per request): they say
    # nothing the request span does not, and each costs an export.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="/healthz,/readyz,/metrics", exclude_spans=["receive", "send"]
    )
    app.state.tracing = True


def instrument_engine(engine: AsyncEngine) -> None:
    """Client spans for the engine's statements (only when tracing is on)."""
    if _configured is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # skip_dep_check: the instrumentation declares "sqlalchemy < 2.1" and would otherwise
    # refuse 2.1 (uv.lock pins 2.1.9) and instrument nothing; it hooks the engine's
    # before/after_cursor_execute events, which 2.1 keeps (tests/e2e/test_tracing.py
    # checks that statement spans appear).
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, skip_dep_check=True)


def tracer() -> trace.Tracer:
    return _tracer


_NO_SPAN = contextlib.nullcontext()


def traced_statement(statement: str) -> contextlib.AbstractContextManager[Any]:
    """A client span around a statement sent without SQLAlchemy (which the SQLAlchemy
    instrumentation cannot see), named and described like that instrumentation's; a
    shared no-op when tracing is off."""
    if _configured is None:
        return _NO_SPAN
    return _tracer.start_as_current_span(
        statement.split(None, 1)[0],
        kind=SpanKind.CLIENT,
        attributes={"db.system": "postgresql", "db.statement": statement},
    )


def current_trace_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span; empty outside any trace."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def span_trace_headers(span: trace.Span) -> dict[str, str]:
    """`traceparent` (and `tracestate`) naming `span`, without making it current."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def context_from(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context:
    """A context whose parent is the span named by a stored or received `traceparent`."""
    carrier = {TRACEPARENT: traceparent} if traceparent else {}
    if traceparent and tracestate:
        carrier[TRACESTATE] = tracestate
    return _PROPAGATOR.extract(carrier)


def headers_with_trace(headers: Mapping[str, str] | None) -> dict[str, str]:
    """`headers` plus the current span's trace headers (the caller's own win)."""
    return {**current_trace_headers(), **(headers or {})}
