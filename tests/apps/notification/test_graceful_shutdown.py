"""SIGTERM while the webhook worker holds leases: a real uvicorn process running the real
notification app against the test PostgreSQL, calling a slow webhook receiver."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Response

from tests.apps.local.probe_app import ServerThread, wait_until
from tests.apps.notification.conftest import (
    APP_TOKEN,
    JWT_SECRET,
    PLATFORM,
    bearer,
    cloud_event,
    reminder_envelope,
)
from tests.apps.shared.uvicorn_process import UvicornProcess

REMINDERS = 40
CALL_SECONDS = 1.0


class SlowReceiver:
    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook() -> Response:
            with self._lock:
                self.calls += 1
            await asyncio.sleep(CALL_SECONDS)
            return Response(status_code=204)


@pytest.fixture
def receiver() -> Iterator[tuple[SlowReceiver, str]]:
    probe = SlowReceiver()
    server = ServerThread(probe.app).start()
    try:
        yield probe, f"http://127.0.0.1:{server.port}/hook"
    finally:
        server.stop()


def _deliveries(database_url: str) -> list[tuple[str, bool, int]]:
    """(status, leased: next attempt still in the future, attempts) of every webhook row."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT status, next_attempt_at > now(), attempts FROM notification_deliveries "
            "WHERE channel = 'webhook'"
        ).fetchall()
    return [(str(status), bool(leased), int(attempts)) for status, leased, attempts in rows]


def test_sigterm_gives_back_every_webhook_lease(
    database_url: str, receiver: tuple[SlowReceiver, str]
) -> None:
    probe, url = receiver
    server = UvicornProcess(
        "apps.notification.main:app",
        {
            "DATABASE_URL": database_url,
            "AUTH_JWT_SECRET": JWT_SECRET,
            "APP_API_TOKEN": APP_TOKEN,
            "APP_ENV": "test",
            "LOG_LEVEL": "INFO",
            "DAPR_SIDECAR_REQUIRED": "false",
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "WEBHOOK_CONCURRENCY": "2",
            "WEBHOOK_POLL_SECONDS": "0.1",
            "WEBHOOK_TIMEOUT_SECONDS": "5",
            # Shorter than the backlog of calls: some are cut off, most never start.
            "SHUTDOWN_DRAIN_SECONDS": "0.8",
        },
    )
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answer = client.put(
                "/api/v1/notification-settings", json={"webhook_url": url}, headers=bearer("alice")
            )
            assert answer.status_code == 200, answer.text
            for _ in range(REMINDERS):
                answer = client.post(
                    "/events/reminder-due",
                    content=cloud_event(reminder_envelope()),
                    headers={"content-type": "application/cloudevents+json", **PLATFORM},
                )
                assert answer.status_code == 200, answer.text
        wait_until(lambda: probe.calls >= 3, timeout=20, what="webhook calls under way")
        # Leases are out: some rows are claimed for the next minute.
        assert any(leased for status, leased, _ in _deliveries(database_url) if status == "pending")

        server.terminate()
        server.wait_exit(timeout=60)
        log = server.log()
    finally:
        server.close()

    assert "Application shutdown complete" in log, log
    assert "webhook leases released" in log, log
    rows = _deliveries(database_url)
    assert len(rows) == REMINDERS
    # Nothing stays leased past shutdown: every pending row is due again now.
    assert [row for row in rows if row[0] == "pending" and row[1]] == []
    assert {status for status, _, _ in rows} <= {"pending", "delivered"}
    pending = [attempts for status, _, attempts in rows if status == "pending"]
    assert pending, "the drain was meant to leave work for another replica"
    # Rows given back before their call started did not spend an attempt; a call cut off
    # mid-way (at most `WEBHOOK_CONCURRENCY` of them) keeps its attempt counted.
    assert sum(1 for attempts in pending if attempts > 0) <= 2
    assert all(attempts <= 1 for attempts in pending)
    delivered = sum(1 for status, _, _ in rows if status == "delivered")
    assert delivered <= probe.calls <= delivered + 2
