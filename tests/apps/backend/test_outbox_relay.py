"""The outbox relay publishes through the Dapr sidecar (stand-in), in order per key, once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient nudges towards httpx2
    from fastapi.testclient import TestClient

from apps.backend.main import create_app
from apps.backend.settings import BackendSettings, RelaySettings
from apps.backend.workers.outbox_relay import OutboxRelay
from apps.local.standin import MeshThread, Sidecar, SidecarSpec
from apps.shared.dapr import DaprAccess
from apps.shared.db import create_db_engine
from apps.shared.events.outbox import outbox_row
from tests.apps.backend.conftest import APP_TOKEN, JWT_SECRET, bearer
from tests.apps.local.conftest import fast_config
from tests.apps.local.probe_app import ProbeApp, ServerThread

FAST = RelaySettings(
    poll_seconds=0.2, backoff_base_seconds=0.05, backoff_max_seconds=0.3, gauge_seconds=0.1
)


@pytest.fixture
def sidecar(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MeshThread, Sidecar]]:
    """A stand-in sidecar for the backend, and the SDK pointed at it."""
    app = ServerThread(ProbeApp().app).start()
    standin = MeshThread(fast_config())
    standin.start()
    try:
        backend = standin.add_sidecar(SidecarSpec(app_id="backend", app_port=app.port))
        for name, value in backend.env.items():
            monkeypatch.setenv(name, value)
        yield standin, backend
    finally:
        standin.stop()
        app.stop()


def _insert(database_url: str, events: list[tuple[str, str]]) -> list[str]:
    """Write `(event_type, task_id)` outbox rows in one transaction; returns event ids."""
    ids: list[str] = []
    with psycopg.connect(database_url) as connection:
        for event_type, task_id in events:
            row = outbox_row(event_type=event_type, data=_task_data(task_id), partition_key=task_id)
            connection.execute(
                "INSERT INTO outbox (event_id, event_type, topic, partition_key, payload) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    row.event_id,
                    row.event_type,
                    row.topic,
                    row.partition_key,
                    json.dumps(row.payload),
                ),
            )
            ids.append(str(row.event_id))
    return ids


def _task_data(task_id: str) -> dict[str, Any]:
    return {
        "id": task_id,
        "user_id": "alice",
        "title": "t",
        "description": "",
        "priority": "medium",
        "due_at": None,
        "timezone": "UTC",
        "tags": [],
        "reminders": [],
        "recurrence": None,
        "completed": False,
        "completed_at": None,
        "series_id": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }


def _relay_until(
    database_url: str,
    done: Callable[[], bool],
    *,
    replicas: int = 1,
    settings: RelaySettings = FAST,
    timeout: float = 20.0,
    meanwhile: Callable[[list[OutboxRelay]], None] | None = None,
    pooled: bool = False,
) -> None:
    """Run `replicas` relays (each with its own engine) until `done()` or the timeout;
    `meanwhile(relays)` is called on every turn of the wait.

    `pooled`: as behind a transaction-pooling PgBouncer (the engine prepares nothing)."""

    async def scenario() -> None:
        engines = [
            create_db_engine(database_url, pool_size=2, transaction_pooling=pooled)
            for _ in range(replicas)
        ]
        accesses = [DaprAccess(ready_timeout_seconds=0.5) for _ in range(replicas)]
        relays = [
            OutboxRelay(
                engine=engine,
                dapr=access,
                service="backend",
                settings=settings,
            )
            for engine, access in zip(engines, accesses, strict=True)
        ]
        for relay in relays:
            relay.start()
        try:
            deadline = time.monotonic() + timeout
            while not done():
                if meanwhile is not None:
                    meanwhile(relays)
                if time.monotonic() > deadline:
                    raise AssertionError("relay did not get there in time")
                await asyncio.sleep(0.05)
        finally:
            for relay in relays:
                await relay.stop()
            for access in accesses:
                await access.close()
            for engine in engines:
                await engine.dispose()

    asyncio.run(scenario())


def _published(database_url: str) -> list[tuple[str, bool, int]]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT event_id::text, published_at IS NOT NULL, attempts FROM outbox ORDER BY id"
        ).fetchall()
    return [(str(a), bool(b), int(c)) for a, b, c in rows]


def _keys_in_order(standin: MeshThread, topic: str) -> dict[str, list[str]]:
    per_key: dict[str, list[str]] = {}
    for event in standin.mesh.events(topic):
        per_key.setdefault(event["data"]["data"]["id"], []).append(event["id"])
    return per_key


def test_rows_are_published_as_cloudevents_with_their_ids_and_marked(
    database_url: str, sidecar: tuple[MeshThread, Sidecar]
) -> None:
    standin, _ = sidecar
    task = str(uuid.uuid4())
    ids = _insert(
        database_url,
        [("task.created.v1", task), ("task.updated.v1", task), ("task.completed.v1", task)],
    )

    _relay_until(
        database_url,
        lambda: all(published for _, published, _ in _published(database_url)),
    )

    events = standin.mesh.events("task-events")
    assert [e["id"] for e in events] == ids
    assert [e["type"] for e in events] == [
        "task.created.v1",
        "task.updated.v1",
        "task.completed.v1",
    ]
    assert all(e["data"]["event_id"] == e["id"] for e in events)  # CloudEvent id = event_id
    assert {m.key for m in standin.mesh.messages("task-events")} == {task}  # partition key


def test_two_replicas_publish_each_row_once_and_keep_order_per_key(
    database_url: str, sidecar: tuple[MeshThread, Sidecar]
) -> None:
    standin, _ = sidecar
    tasks = [str(uuid.uuid4()) for _ in range(40)]
    expected: dict[str, list[str]] = {}
    for round_number in range(6):
        batch = [(f"task.{'created' if round_number == 0 else 'updated'}.v1", t) for t in tasks]
        for task, event_id in zip(tasks, _insert(database_url, batch), strict=True):
            expected.setdefault(task, []).append(event_id)
    small = FAST.model_copy(update={"batch_size": 7, "max_rows": 20, "concurrency": 4})

    _relay_until(
        database_url,
        lambda: len(standin.mesh.messages("task-events")) >= 240,
        replicas=2,
        settings=small,
    )

    assert len(standin.mesh.messages("task-events")) == 240  # nothing twice
    assert _keys_in_order(standin, "task-events") == expected


def test_sidecar_absent_for_a_while_loses_nothing(
    database_url: str, sidecar: tuple[MeshThread, Sidecar]
) -> None:
    standin, backend = sidecar
    standin.call(standin.mesh.take_down, backend)
    task = str(uuid.uuid4())
    first = _insert(database_url, [("task.created.v1", task)])
    state = {"rounds": 0}

    def bring_back_later(_relays: list[OutboxRelay]) -> None:
        state["rounds"] += 1
        if state["rounds"] == 20:  # ~1 s of relay rounds against an absent sidecar
            assert _published(database_url) == [(first[0], False, 0)]  # no attempts burnt
            more = _insert(database_url, [("task.completed.v1", task)])
            first.extend(more)
            standin.call(standin.mesh.bring_up, backend)

    _relay_until(
        database_url,
        lambda: len(standin.mesh.messages("task-events")) == 2,
        meanwhile=bring_back_later,
    )

    assert [e["id"] for e in standin.mesh.events("task-events")] == first


def test_broker_failures_are_retried_with_backoff_and_counted(
    database_url: str, sidecar: tuple[MeshThread, Sidecar]
) -> None:
    standin, _ = sidecar
    failures = (
        REGISTRY.get_sample_value(
            "outbox_publish_failures_total", {"service": "backend", "topic": "task-events"}
        )
        or 0.0
    )
    standin.mesh.faults.publish_failures = 3
    task = str(uuid.uuid4())
    ids = _insert(database_url, [("task.created.v1", task), ("task.completed.v1", task)])

    _relay_until(database_url, lambda: len(standin.mesh.messages("task-events")) == 2)

    assert [e["id"] for e in standin.mesh.events("task-events")] == ids  # order survived
    with psycopg.connect(database_url) as connection:
        attempts, last_error = connection.execute(
            "SELECT attempts, last_error FROM outbox ORDER BY id LIMIT 1"
        ).fetchone() or (0, None)
    assert attempts == 3 and "ERR_PUBSUB_PUBLISH_MESSAGE" in str(last_error)
    after = REGISTRY.get_sample_value(
        "outbox_publish_failures_total", {"service": "backend", "topic": "task-events"}
    )
    assert after == failures + 3


def test_a_nudge_wakes_the_relay_without_waiting_for_the_poll(
    database_url: str, sidecar: tuple[MeshThread, Sidecar]
) -> None:
    """What a write route does once its change is committed (`wake_relay`)."""
    standin, _ = sidecar
    slow_poll = FAST.model_copy(update={"poll_seconds": 60.0})
    state = {"inserted": False}

    def insert_and_nudge_once_relay_idles(relays: list[OutboxRelay]) -> None:
        if not state["inserted"]:
            time.sleep(0.5)  # let the relay finish its first (empty) round and wait
            _insert(database_url, [("task.created.v1", str(uuid.uuid4()))])
            relays[0].nudge()
            state["inserted"] = True

    began = time.monotonic()
    _relay_until(
        database_url,
        lambda: len(standin.mesh.messages("task-events")) == 1,
        settings=slow_poll,
        timeout=10.0,
        meanwhile=insert_and_nudge_once_relay_idles,
    )
    assert time.monotonic() - began < 10.0  # not the 60 s poll


@pytest.mark.parametrize("pooled", [False, True], ids=["direct", "transaction-pooled"])
def test_a_row_no_relay_was_woken_for_goes_out_on_the_next_poll(
    database_url: str, sidecar: tuple[MeshThread, Sidecar], pooled: bool
) -> None:
    """A row whose replica died right after committing it (nobody nudged a relay) is
    published by the next poll, directly connected or behind a transaction pooler."""
    standin, _ = sidecar
    state = {"inserted": False}

    def insert_once(_relays: list[OutboxRelay]) -> None:
        if not state["inserted"]:
            time.sleep(0.3)
            _insert(database_url, [("task.created.v1", str(uuid.uuid4()))])
            state["inserted"] = True

    _relay_until(
        database_url,
        lambda: len(standin.mesh.messages("task-events")) == 1,
        timeout=10.0,
        meanwhile=insert_once,
        pooled=pooled,
    )
    assert [published for _, published, _ in _published(database_url)] == [True]


def test_gauges_report_the_backlog(database_url: str, sidecar: tuple[MeshThread, Sidecar]) -> None:
    standin, backend = sidecar
    standin.call(standin.mesh.take_down, backend)
    _insert(database_url, [("task.created.v1", str(uuid.uuid4())) for _ in range(5)])

    def gauge(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"service": "backend"}) or 0.0

    _relay_until(
        database_url,
        lambda: (
            gauge("outbox_pending_events") == 5 and gauge("outbox_oldest_pending_age_seconds") > 0
        ),
    )


def test_rows_backed_off_during_an_outage_go_as_soon_as_the_sidecar_is_back(
    database_url: str, sidecar: tuple[MeshThread, Sidecar]
) -> None:
    standin, backend = sidecar
    patient = FAST.model_copy(
        update={"backoff_base_seconds": 30.0, "backoff_max_seconds": 60.0, "poll_seconds": 0.2}
    )
    task = str(uuid.uuid4())
    ids = _insert(database_url, [("task.created.v1", task)])
    state = {"step": 0}

    def outage_then_return(_relays: list[OutboxRelay]) -> None:
        if state["step"] == 0 and _published(database_url)[0][1]:
            # The relay is connected and published the first row: the sidecar goes away.
            standin.call(standin.mesh.take_down, backend)
            ids.extend(_insert(database_url, [("task.updated.v1", task)]))
            state["step"] = 1
        elif state["step"] == 1 and [row[2] for row in _published(database_url)] == [0, 1]:
            # The new row failed once and now waits out a backoff of 30 s or more.
            standin.call(standin.mesh.bring_up, backend)
            state["step"] = 2

    _relay_until(
        database_url,
        lambda: len(standin.mesh.messages("task-events")) == 2,
        settings=patient,
        timeout=15.0,  # far less than the row's own backoff
        meanwhile=outage_then_return,
    )
    assert [e["id"] for e in standin.mesh.events("task-events")] == ids


def test_the_write_routes_wake_their_replicas_relay(
    database_url: str, sidecar: tuple[MeshThread, Sidecar]
) -> None:
    """The backend itself, relay on and polling only once a minute: each change through
    the API (and the recurring service's next-occurrence call) is published within
    moments, because the route woke the relay once its change was committed."""
    standin, _ = sidecar
    settings = BackendSettings(
        database_url=database_url,
        auth_jwt_secret=JWT_SECRET,
        app_api_token=APP_TOKEN,
        log_level="WARNING",
        db_pool_size=2,
        outbox_relay=FAST.model_copy(update={"poll_seconds": 60.0}),
    )
    alice = bearer("al")
    published: list[str] = []

    def then_published(answer: Any, event_type: str) -> Any:
        assert answer.status_code < 300, answer.text
        published.append(event_type)
        deadline = time.monotonic() + 5.0
        while len(standin.mesh.messages("task-events")) < len(published):
            assert time.monotonic() < deadline, f"{event_type} not published: relay not woken"
            time.sleep(0.02)
        return answer.json() if answer.content else None

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        time.sleep(0.3)  # the relay's first round (at start) finds nothing and waits
        weekly = {
            "title": "w",
            "due_at": "2030-01-07T09:00:00Z",
            "recurrence": {"rrule": "FREQ=WEEKLY"},
        }
        task = then_published(client.post("/api/v1/tasks", json=weekly, headers=alice), "created")
        url = f"/api/v1/tasks/{task['id']}"
        then_published(client.post(f"{url}/complete", headers=alice), "completed")
        item = {
            "task_id": task["id"],
            "user_id": "al",
            "due_at": "2030-01-14T09:00:00Z",
            "rrule": "FREQ=WEEKLY",
            "completion_event_id": str(uuid.uuid4()),
        }
        batch = client.post(
            "/internal/v1/tasks/next-occurrences",
            json={"items": [item]},
            headers={"dapr-api-token": APP_TOKEN},
        )
        then_published(batch, "created")
        then_published(client.post(f"{url}/reopen", headers=alice), "reopened")
        then_published(client.patch(url, json={"title": "x"}, headers=alice), "updated")
        then_published(client.delete(url, headers=alice), "deleted")
    types = [event["type"] for event in standin.mesh.events("task-events")]
    assert types == [f"task.{name}.v1" for name in published]
