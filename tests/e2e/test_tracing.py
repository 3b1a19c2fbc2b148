"""One trace per user action, across every hop: the services append their spans to one
file (todo-local's `TODO_TRACES_FILE`), and a recurring completion's spans all carry the
trace id of the request that started it — through the outbox, the stand-in's pub/sub,
the recurring consumer, the service invocation back into the backend and the
successor's own event; and a reminder's, from the scan to the webhook call."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from apps.contracts.events import REMINDER_DUE, TASK_COMPLETED, TASK_CREATED
from apps.local.system import LocalSystem
from apps.local.traces import read_spans, render, tracing_env
from tests.apps.local.probe_app import ProbeApp, ServerThread
from tests.e2e.conftest import E2E_ENV, Api, e2e_mesh_config, eventually


@pytest.fixture(scope="module")
def traces_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="module")
def system(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory, traces_home: Path
) -> Iterator[LocalSystem]:
    """One replica each (the chain is the same with more; spans are what is checked)."""
    local = LocalSystem(
        database_url=module_database_url,
        log_dir=tmp_path_factory.mktemp("e2e-logs"),
        mesh_config=e2e_mesh_config(),
        cron_every_seconds=0.5,
        extra_env={**E2E_ENV, **tracing_env(traces_home)},
    )
    with local:
        yield local


def _spans(home: Path, trace_id: str) -> list[dict[str, Any]]:
    return read_spans(home / "traces.jsonl", trace_id)


def _wait_for(
    home: Path, trace_id: str, wanted: list[tuple[str, str, str | None]]
) -> list[dict[str, Any]]:
    """The trace's spans once it has a span for each (service, name, event type or None
    for any)."""

    def there() -> list[dict[str, Any]] | None:
        spans = _spans(home, trace_id)
        found = set()
        for s in spans:
            found.add((s["service"], s["name"], s["attributes"].get("cloudevents.event_type")))
            found.add((s["service"], s["name"], None))  # for a wanted span of any type
        return spans if found.issuperset(wanted) else None

    spans: list[dict[str, Any]] = eventually(there, timeout=20, what=f"the spans {wanted}")
    return spans


def _one(spans: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [s for s in spans if all(_field(s, k) == v for k, v in match.items())]
    assert found, f"no span with {match} in:\n" + "\n".join(render(spans))
    return found[0]


def _field(span: dict[str, Any], key: str) -> Any:
    return span["attributes"].get(key) if "." in key else span.get(key)


def test_a_recurring_completion_is_one_trace(
    system: LocalSystem, user: Callable[[], Api], traces_home: Path
) -> None:
    api = user()
    task = api.create(
        title="Water the plants",
        due_at="2030-01-07T07:00:00+01:00",
        timezone="Europe/Berlin",
        recurrence={"rrule": "FREQ=WEEKLY", "anchor": "due"},
    )
    trace_id = secrets.token_hex(16)
    answer = api.backend.post(
        f"/api/v1/tasks/{task['id']}/complete",
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert answer.status_code == 200, answer.text
    (successor,) = eventually(lambda: api.successors(str(task["id"])), what="next occurrence")

    # Each service exports its spans in its own batches: wait for the last of every hop.
    spans = _wait_for(
        traces_home,
        trace_id,
        [
            ("backend", "POST /api/v1/tasks/{task_id}/complete", None),
            ("backend", "task-events publish", TASK_COMPLETED),
            ("recurring", "task-events process", TASK_COMPLETED),
            ("backend", "POST /internal/v1/tasks/{task_id}/next-occurrence", None),
            ("backend", "task-events publish", TASK_CREATED),
        ],
    )
    by_id = {s["span_id"]: s for s in spans}

    complete = _one(
        spans, service="backend", kind="SERVER", name="POST /api/v1/tasks/{task_id}/complete"
    )
    completed_publish = _one(
        spans,
        service="backend",
        name="task-events publish",
        **{"cloudevents.event_type": "task.completed.v1"},
    )
    consumed = _one(
        spans,
        service="recurring",
        name="task-events process",
        **{"cloudevents.event_type": "task.completed.v1"},
    )
    invoke = _one(spans, service="recurring", kind="CLIENT")
    assert invoke["attributes"]["rpc.service"] == "backend"
    next_insert = _one(
        spans, service="backend", kind="SERVER", **{"http.route": invoke_route(spans)}
    )
    created_publish = _one(
        spans,
        service="backend",
        name="task-events publish",
        **{"cloudevents.event_type": "task.created.v1"},
    )

    # Each hop hangs under the one before it.
    assert complete["span_id"] in _chain_ids(completed_publish, by_id)
    assert completed_publish["span_id"] in _chain_ids(consumed, by_id)
    assert consumed["span_id"] in _chain_ids(invoke, by_id)
    assert invoke["span_id"] in _chain_ids(next_insert, by_id)
    assert next_insert["span_id"] in _chain_ids(created_publish, by_id)
    assert successor["series_id"] == task["id"]
    # Database statements are traced too.
    assert any(s["kind"] == "CLIENT" and s["service"] == "backend" for s in spans)


def invoke_route(spans: list[dict[str, Any]]) -> str:
    routes = {
        s["attributes"].get("http.route")
        for s in spans
        if s["service"] == "backend" and s["kind"] == "SERVER"
    }
    (internal,) = [r for r in routes if r and "next-occurrence" in r]
    return str(internal)


def _chain_ids(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> set[str]:
    """The ids of `span`'s ancestors."""
    ids = set()
    while span.get("parent_id") in by_id:
        span = by_id[span["parent_id"]]
        ids.add(span["span_id"])
    return ids


@pytest.fixture
def receiver() -> Iterator[tuple[ProbeApp, str]]:
    probe = ProbeApp()
    server = ServerThread(probe.app).start()
    try:
        yield probe, f"http://127.0.0.1:{server.port}/hooks/todo"
    finally:
        server.stop()


def test_a_reminder_is_one_trace_from_the_scan_to_the_webhook_call(
    user: Callable[[], Api], receiver: tuple[ProbeApp, str], traces_home: Path
) -> None:
    probe, url = receiver
    api = user()
    answer = api.notifications.put("/api/v1/notification-settings", json={"webhook_url": url})
    assert answer.status_code == 200, answer.text
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    api.create(
        title="Stand-up",
        due_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        reminders=[{"at": soon}],
    )

    (call,) = eventually(lambda: probe.calls("/hooks/todo"), what="the webhook call")
    # No trace context leaves for a third party's server (apps/notification/workers/
    # outbound.py); the delivery's span names it by the id the receiver got.
    assert "traceparent" not in call.headers and "tracestate" not in call.headers
    delivery_id = call.headers["webhook-id"]

    def delivery_trace() -> str | None:
        for line in (traces_home / "traces.jsonl").read_text().splitlines():
            span = json.loads(line)
            if span["attributes"].get("todo.delivery_id") == delivery_id:
                return str(span["trace_id"])
        return None

    trace_id = eventually(delivery_trace, timeout=20, what="the delivery's span")

    spans = _wait_for(
        traces_home,
        trace_id,
        [
            ("backend", "POST /reminder-scan", None),
            ("backend", "reminders publish", REMINDER_DUE),
            ("notification", "reminders process", REMINDER_DUE),
            ("notification", "webhook deliver", None),
        ],
    )
    by_id = {s["span_id"]: s for s in spans}
    scan = _one(spans, service="backend", kind="SERVER", name="POST /reminder-scan")
    publish = _one(spans, service="backend", name="reminders publish")
    consumed = _one(spans, service="notification", name="reminders process")
    deliver = _one(spans, service="notification", name="webhook deliver")

    assert scan["span_id"] in _chain_ids(publish, by_id)
    assert publish["span_id"] in _chain_ids(consumed, by_id)
    assert consumed["span_id"] in _chain_ids(deliver, by_id)
    assert deliver["attributes"]["todo.attempt"] >= 1 and deliver["status"] != "ERROR"
    # The call itself is the deliver span's: no client span under it (and so no
    # traceparent header) for the receiver to join.
    assert not [x for x in spans if x["parent_id"] == deliver["span_id"] and x["kind"] == "CLIENT"]
