"""Notification service fixtures: the real app on a fresh database, tokens, CloudEvents."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from apps.contracts.events import REMINDER_DUE
from apps.notification.main import create_app
from apps.notification.settings import NotificationServiceSettings
from apps.shared.events.envelope import new_envelope
from tests.apps.local.probe_app import ProbeApp, ServerThread

JWT_SECRET = "notification-test-secret-long-enough-for-hs256"
APP_TOKEN = "notification-app-token"
PLATFORM = {"dapr-api-token": APP_TOKEN}


def bearer(sub: str) -> dict[str, str]:
    now = int(time.time())
    token = jwt.encode({"sub": sub, "iat": now, "exp": now + 3600}, JWT_SECRET, "HS256")
    return {"Authorization": f"Bearer {token}"}


def reminder_envelope(user_id: str = "alice", **data: Any) -> dict[str, Any]:
    return new_envelope(
        REMINDER_DUE,
        {
            "reminder_id": str(uuid.uuid4()),
            "task_id": str(uuid.uuid4()),
            "user_id": user_id,
            "title": "Call mum",
            "due_at": "2030-05-01T18:00:00Z",
            "remind_at": "2030-05-01T17:50:00Z",
            **data,
        },
    )


def cloud_event(envelope: dict[str, Any], **overrides: Any) -> bytes:
    """The CloudEvent daprd delivers for an envelope the relay published."""
    event = {
        "id": envelope["event_id"],
        "type": envelope["event_type"],
        "source": "backend",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "topic": "reminders",
        "pubsubname": "pubsub",
        "data": envelope,
        **overrides,
    }
    return json.dumps(event).encode()


def bulk_delivery(*events: bytes) -> bytes:
    """A bulk delivery as daprd posts it (dapr/dapr pkg/runtime/pubsub/bulksubscribe_events.go)."""
    return json.dumps(
        {
            "id": "bulk-1",
            "type": "com.dapr.event.sent.bulk",
            "topic": "reminders",
            "pubsubname": "pubsub",
            "metadata": {},
            "entries": [
                {
                    "entryId": str(n),
                    "event": json.loads(event),
                    "metadata": {},
                    "contentType": "application/cloudevents+json",
                }
                for n, event in enumerate(events)
            ],
        }
    ).encode()


def deliver(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> Any:
    response = client.post(
        "/events/reminder-due",
        content=body,
        headers={
            "content-type": "application/cloudevents+json",
            **(PLATFORM if headers is None else headers),
        },
    )
    return response


@pytest.fixture
def notification_settings(database_url: str) -> NotificationServiceSettings:
    return NotificationServiceSettings(
        database_url=database_url,
        auth_jwt_secret=JWT_SECRET,
        app_api_token=APP_TOKEN,
        app_env="test",
        log_level="WARNING",
        db_pool_size=4,
        webhook_allow_private_targets=True,
        webhook_backoff_base_seconds=0.05,
        webhook_backoff_max_seconds=0.2,
        webhook_poll_seconds=0.1,
        webhook_max_attempts=3,
        webhook_timeout_seconds=2.0,
        # No sidecar in these tests; tests/apps/shared/test_readiness.py runs with one.
        dapr_sidecar_required=False,
    )


@pytest.fixture
def client(notification_settings: NotificationServiceSettings) -> Iterator[TestClient]:
    with TestClient(
        create_app(notification_settings), raise_server_exceptions=False
    ) as test_client:
        yield test_client


@pytest.fixture
def receiver() -> Iterator[tuple[ProbeApp, str]]:
    """A webhook receiver on loopback recording each call, and its URL."""
    probe = ProbeApp()
    server = ServerThread(probe.app).start()
    try:
        yield probe, f"http://127.0.0.1:{server.port}/hook"
    finally:
        server.stop()
