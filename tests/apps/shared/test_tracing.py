"""Tracing pieces on their own: no global provider is installed here (the process-wide
one can be set only once, and other tests must see tracing off), so spans come from a
local provider; the context they make current is what the code under test reads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import SpanKind

from apps.contracts.events import REMINDER_DUE
from apps.local.standin.cloudevents import build_envelope
from apps.local.traces import read_spans, render
from apps.shared import tracing
from apps.shared.dapr import publish_metadata
from apps.shared.events.outbox import outbox_values
from apps.shared.logs import add_trace_ids
from apps.shared.metrics import trace_exemplar
from apps.shared.service import NO_OPENTELEMETRY, install_common
from apps.shared.tracing import (
    JsonLinesSpanExporter,
    RootSampler,
    TracingSettings,
    context_from,
    current_trace_headers,
    span_record,
)
from tests.apps.shared.test_events import REMINDER

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "probe"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def test_tracing_is_off_without_somewhere_to_send_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "TODO_TRACES_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert not TracingSettings().enabled
    monkeypatch.setenv("TODO_TRACES_FILE", "/tmp/x.jsonl")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    settings = TracingSettings()
    assert settings.enabled and settings.otel_traces_sampler_arg == 0.25


def test_root_client_spans_are_dropped_and_children_follow_their_parent() -> None:
    sampler = ParentBased(RootSampler(1.0))
    trace_id = int(TRACE_ID, 16)
    assert sampler.should_sample(None, trace_id, "SELECT", SpanKind.CLIENT).decision is (
        Decision.DROP
    )
    assert sampler.should_sample(None, trace_id, "GET /", SpanKind.SERVER).decision is (
        Decision.RECORD_AND_SAMPLE
    )
    child = sampler.should_sample(context_from(TRACEPARENT), trace_id, "SELECT", SpanKind.CLIENT)
    assert child.decision is Decision.RECORD_AND_SAMPLE
    never = ParentBased(RootSampler(0.0))
    assert never.should_sample(None, trace_id, "GET /", SpanKind.SERVER).decision is Decision.DROP


def test_an_outbox_row_keeps_the_trace_it_was_written_in(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, _ = spans
    outside = outbox_values(event_type=REMINDER_DUE, data=REMINDER, partition_key="k")
    assert outside["traceparent"] is None and outside["tracestate"] is None
    assert current_trace_headers() == {}

    with tracer.start_as_current_span("request", context=context_from(TRACEPARENT)) as span:
        inside = outbox_values(event_type=REMINDER_DUE, data=REMINDER, partition_key="k")
    span_id = span.get_span_context().span_id
    assert inside["traceparent"] == f"00-{TRACE_ID}-{span_id:016x}-01"


def test_publish_metadata_sets_the_cloud_events_trace_attributes() -> None:
    metadata = publish_metadata(
        event_id="e",
        event_type="t",
        partition_key="k",
        trace_headers={"traceparent": TRACEPARENT, "tracestate": "a=b"},
    )
    assert metadata["cloudevent.traceparent"] == TRACEPARENT
    assert metadata["cloudevent.tracestate"] == "a=b"
    assert "cloudevent.traceparent" not in publish_metadata(
        event_id="e", event_type="t", partition_key=None
    )


def test_log_lines_and_exemplars_carry_the_current_trace(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, _ = spans
    assert add_trace_ids(None, "info", {}) == {}
    assert trace_exemplar() is None
    with tracer.start_as_current_span("work", context=context_from(TRACEPARENT)) as span:
        line = add_trace_ids(None, "info", {"event": "x"})
        exemplar = trace_exemplar()
    assert line["trace_id"] == TRACE_ID
    assert line["span_id"] == f"{span.get_span_context().span_id:016x}"
    assert exemplar == {"trace_id": TRACE_ID}


def test_spans_are_appended_as_json_lines_and_printed_as_a_tree(
    spans: tuple[trace.Tracer, InMemorySpanExporter], tmp_path: Path
) -> None:
    tracer, exporter = spans
    with tracer.start_as_current_span("POST /complete", context=context_from(TRACEPARENT)):
        with tracer.start_as_current_span("task-events publish", kind=SpanKind.PRODUCER):
            pass
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT):
            pass
    with tracer.start_as_current_span("another trace"):
        pass
    path = tmp_path / "traces.jsonl"
    sink = JsonLinesSpanExporter(path)
    finished = exporter.get_finished_spans()
    sink.export(finished[:2])
    sink.export(finished[2:])

    assert span_record(finished[0])["trace_id"] == TRACE_ID
    mine = read_spans(path, TRACE_ID)
    assert len(mine) == 3
    assert [line.split(" (")[0] for line in render(mine)] == [
        "probe: POST /complete",
        "  probe: task-events publish",
        "  probe: SELECT",
    ]
    path.write_text(path.read_text() + '{"cut short\n')
    assert len(read_spans(path)) == 4

    small = JsonLinesSpanExporter(path, max_bytes=1)  # full: the next batch rotates
    small.export(finished[:1])
    assert path.with_name("traces.jsonl.1").exists()
    assert len(path.read_text().splitlines()) == 1
    assert len(read_spans(path, TRACE_ID)) == 4


@pytest.mark.parametrize(
    ("metadata", "call_trace", "expected"),
    [
        ({}, {"traceparent": TRACEPARENT, "tracestate": "a=b"}, (TRACEPARENT, "a=b")),
        ({"cloudevent.traceparent": "00-override"}, {"traceparent": TRACEPARENT}, None),
        ({}, {}, None),
    ],
)
def test_the_stand_in_puts_the_publish_calls_trace_on_the_cloud_event(
    metadata: dict[str, str], call_trace: dict[str, str], expected: tuple[str, str] | None
) -> None:
    envelope = build_envelope(
        data=b"{}",
        content_type="application/json",
        topic="t",
        pubsub_name="pubsub",
        source="backend",
        metadata=metadata,
        call_trace=call_trace,
    )
    assert envelope["traceid"] == envelope["traceparent"]
    if expected is not None:
        assert (envelope["traceparent"], envelope["tracestate"]) == expected
    elif metadata:
        assert envelope["traceparent"] == "00-override"
    else:
        assert envelope["traceparent"].startswith("00-") and envelope["tracestate"] == ""


def test_metrics_are_served_as_open_metrics_to_a_scraper_asking_for_it() -> None:
    app = FastAPI(telemetry=NO_OPENTELEMETRY)
    install_common(app, service="probe")
    with TestClient(app) as client:
        text = client.get("/metrics")
        open_metrics = client.get(
            "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert text.headers["content-type"].startswith("text/plain")
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")


def test_a_traced_app_continues_the_callers_trace(tmp_path: Path) -> None:
    """In a process of its own: it installs the process-wide provider."""
    path = tmp_path / "traces.jsonl"
    script = textwrap.dedent(
        f"""
        from fastapi import FastAPI
        from fastapi.testclient import TestClient
        from apps.shared.service import NO_OPENTELEMETRY, install_common
        from apps.shared.tracing import shutdown_tracing

        app = FastAPI(telemetry=NO_OPENTELEMETRY)
        install_common(app, service="probe")

        @app.get("/hello")
        def hello() -> dict[str, str]:
            return {{}}

        with TestClient(app) as client:
            client.get("/hello", headers={{"traceparent": "{TRACEPARENT}"}})
            client.get("/healthz")
            metrics = client.get(
                "/metrics", headers={{"accept": "application/openmetrics-text; version=1.0.0"}}
            ).text
        shutdown_tracing()
        assert '# {{trace_id="{TRACE_ID}"}}' in metrics, metrics
        """
    )
    subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        env={"TODO_TRACES_FILE": str(path), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["service"], r["name"], r["trace_id"]) for r in records] == [
        ("probe", "GET /hello", TRACE_ID)
    ]
    assert records[0]["parent_id"] == "b7ad6b7169203331"


def test_statements_sent_through_the_driver_get_client_spans_only_when_tracing_is_on(
    spans: tuple[trace.Tracer, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    tracer, exporter = spans
    with tracing.traced_statement("SELECT 1"):
        pass
    assert exporter.get_finished_spans() == ()
    monkeypatch.setattr(tracing, "_configured", "backend")
    monkeypatch.setattr(tracing, "_tracer", tracer)
    with tracer.start_as_current_span("request", context=context_from(TRACEPARENT)):
        with tracing.traced_statement("WITH done AS (UPDATE tasks SET completed = true) SELECT 1"):
            pass
    statement, request = exporter.get_finished_spans()
    assert (statement.name, statement.kind) == ("WITH", trace.SpanKind.CLIENT)
    assert statement.parent is not None
    assert statement.parent.span_id == request.context.span_id
    assert statement.attributes is not None and statement.attributes["db.system"] == "postgresql"
