"""State, secrets, and the faults the stand-in injects."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._state import Concurrency, StateOptions

from apps.local.standin import MeshThread, Sidecar
from tests.apps.local.probe_app import ProbeApp, wait_until

SUBSCRIPTION = [{"pubsubname": "pubsub", "topic": "t", "route": "/t", "deadLetterTopic": "t-dlq"}]


def _publish(client: DaprClient, event_id: str, key: str = "k") -> None:
    client.publish_event(
        "pubsub",
        "t",
        json.dumps({"n": event_id}),
        data_content_type="application/json",
        publish_metadata={"cloudevent.id": event_id, "partitionKey": key},
    )


def test_state_round_trip_with_etags_and_transactions(
    attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    sdk_env(attach(ProbeApp(), app_id="backend"))
    with DaprClient() as client:
        client.save_state("statestore", "greeting", "hello")
        got = client.get_state("statestore", "greeting")
        assert got.data == b"hello"
        client.save_state("statestore", "greeting", "hi", etag=got.etag)
        with pytest.raises(DaprGrpcError) as stale:
            client.save_state("statestore", "greeting", "late", etag=got.etag)
        with pytest.raises(DaprGrpcError):
            client.save_state(
                "statestore",
                "greeting",
                "first?",
                options=StateOptions(concurrency=Concurrency.first_write),
            )
        assert client.get_state("statestore", "greeting").data == b"hi"
        client.delete_state("statestore", "greeting")
        assert client.get_state("statestore", "greeting").data == b""
        assert client.get_state("statestore", "unknown").data == b""
        with pytest.raises(Exception, match="not found"):
            client.get_state("nostore", "x")
    assert stale.value.code() == grpc.StatusCode.ABORTED  # type: ignore[no-untyped-call]


def test_state_keys_are_prefixed_by_app_id(
    attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    backend = attach(ProbeApp(), app_id="backend")
    other = attach(ProbeApp(), app_id="notification")
    sdk_env(backend)
    with DaprClient() as client:
        client.save_state("statestore", "k", "backend's")
    sdk_env(other)
    with DaprClient() as client:
        assert client.get_state("statestore", "k").data == b""


def test_secrets(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    standin.mesh.config.secrets["webhook"] = {"key": "s3cret"}
    sdk_env(attach(ProbeApp()))
    with DaprClient() as client:
        assert client.get_secret("secretstore", "webhook").secret == {"key": "s3cret"}
        assert client.get_bulk_secret("secretstore").secrets == {"webhook": {"key": "s3cret"}}
        with pytest.raises(Exception, match="ERR_SECRET_GET"):
            client.get_secret("secretstore", "missing")


def test_transient_publish_failures_surface_to_the_publisher(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    probe = ProbeApp(subscriptions=SUBSCRIPTION)
    sdk_env(attach(probe))
    standin.mesh.faults.publish_failures = 2
    with DaprClient() as client:
        for _ in range(2):
            with pytest.raises(DaprGrpcError) as failed:
                _publish(client, "e1")
            assert failed.value.code() == grpc.StatusCode.INTERNAL  # type: ignore[no-untyped-call]
        _publish(client, "e1")
    wait_until(lambda: len(probe.calls("/t")) == 1)


def test_duplicates_arrive_at_some_instance_later(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    standin.mesh.faults.duplicate_rate = 1.0
    standin.mesh.faults.duplicate_delay = (0.0, 0.05)
    first, second = ProbeApp(subscriptions=SUBSCRIPTION), ProbeApp(subscriptions=SUBSCRIPTION)
    sdk_env(attach(first))
    attach(second)
    with DaprClient() as client:
        for n in range(10):
            _publish(client, f"e{n}", key=f"k{n}")
    wait_until(lambda: len(first.calls("/t")) + len(second.calls("/t")) == 20)
    ids = [e["id"] for e in first.events("/t") + second.events("/t")]
    assert sorted(ids) == sorted([f"e{n}" for n in range(10)] * 2)
    wait_until(lambda: sum(1 for e in standin.mesh.journal if e.duplicate) == 10)


def test_delivery_delay_holds_events_back(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    standin.mesh.faults.delivery_delay = 0.3
    probe = ProbeApp(subscriptions=SUBSCRIPTION)
    sdk_env(attach(probe))
    started = time.monotonic()
    with DaprClient() as client:
        _publish(client, "slow")
    wait_until(lambda: probe.calls("/t"))
    assert probe.calls("/t")[0].at - started >= 0.3


def test_absent_sidecar_refuses_connections_and_its_partitions_move(
    standin: MeshThread,
    attach: Callable[..., Sidecar],
    sdk_env: Callable[[Sidecar], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = ProbeApp(subscriptions=SUBSCRIPTION), ProbeApp(subscriptions=SUBSCRIPTION)
    down = attach(first)
    up = attach(second)
    standin.call(standin.mesh.take_down, down)
    sdk_env(down)
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "0.5")
    with pytest.raises(Exception):  # noqa: B017 - the SDK's health wait or a gRPC UNAVAILABLE
        with DaprClient() as client:
            _publish(client, "lost?")

    sdk_env(up)
    with DaprClient() as client:
        for n in range(8):
            _publish(client, f"e{n}", key=f"k{n}")
    wait_until(lambda: len(second.calls("/t")) == 8, what="the live instance takes every partition")
    assert first.calls("/t") == []

    standin.call(standin.mesh.bring_up, down)
    standin.call(down.attached.wait)
    sdk_env(down)
    with DaprClient() as client:
        for n in range(8, 16):
            _publish(client, f"e{n}", key=f"k{n}")
    wait_until(lambda: len(first.calls("/t")) + len(second.calls("/t")) == 16)
    assert first.calls("/t"), "after coming back the instance owns partitions again"


def test_timed_absence_ends_by_itself(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    probe = ProbeApp(subscriptions=SUBSCRIPTION)
    sidecar = attach(probe)
    standin.call(standin.mesh.take_down, sidecar, 0.3)
    assert not sidecar.alive
    wait_until(lambda: sidecar.alive, what="the sidecar's return")
    standin.call(sidecar.attached.wait)
    sdk_env(sidecar)
    with DaprClient() as client:
        _publish(client, "back")
    wait_until(lambda: probe.calls("/t"))


def test_bulk_publish(attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]) -> None:
    from dapr.clients import BulkPublishEntry

    probe = ProbeApp(subscriptions=SUBSCRIPTION)
    sdk_env(attach(probe))
    entries: list[Any] = [
        BulkPublishEntry(
            entry_id=str(n),
            event=json.dumps({"n": n}),
            content_type="application/json",
            metadata={"partitionKey": "same"},
        )
        for n in range(5)
    ]
    with DaprClient() as client:
        response = client.publish_events("pubsub", "t", entries)
    assert response.failed_entries == []
    wait_until(lambda: len(probe.calls("/t")) == 5)
    assert [e["data"]["n"] for e in probe.events("/t")] == [0, 1, 2, 3, 4]
