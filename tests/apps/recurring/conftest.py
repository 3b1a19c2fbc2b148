"""Recurring service fixtures: the real app, a stand-in sidecar, and a probe backend."""

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

from apps.contracts.events import TASK_COMPLETED
from apps.local.standin import MeshThread, SidecarSpec
from apps.recurring.main import create_app
from apps.recurring.settings import RecurringSettings
from apps.shared.events.envelope import new_envelope
from tests.apps.local.conftest import fast_config
from tests.apps.local.probe_app import ProbeApp, ServerThread

JWT_SECRET = "recurring-test-secret-long-enough-for-hs256!"
APP_TOKEN = "recurring-app-token"
PLATFORM = {"dapr-api-token": APP_TOKEN}


def bearer(sub: str) -> dict[str, str]:
    now = int(time.time())
    token = jwt.encode({"sub": sub, "iat": now, "exp": now + 3600}, JWT_SECRET, "HS256")
    return {"Authorization": f"Bearer {token}"}


def completed_task(**overrides: Any) -> dict[str, Any]:
    """A task.completed.v1 `data`: the task as the API shows it, plus its owner."""
    task_id = str(uuid.uuid4())
    return {
        "id": task_id,
        "user_id": "alice",
        "title": "Water the plants",
        "description": "",
        "priority": "medium",
        "due_at": "2030-03-04T08:00:00Z",
        "timezone": "Europe/Berlin",
        "tags": [],
        "reminders": [],
        "recurrence": {"rrule": "FREQ=WEEKLY;COUNT=3", "anchor": "due"},
        "completed": True,
        "completed_at": "2030-03-04T10:00:00Z",
        "series_id": task_id,
        "created_at": "2030-03-01T00:00:00Z",
        "updated_at": "2030-03-04T10:00:00Z",
        **overrides,
    }


def completion_event(task: dict[str, Any]) -> tuple[str, bytes]:
    envelope = new_envelope(TASK_COMPLETED, task)
    event = {
        "id": envelope["event_id"],
        "type": TASK_COMPLETED,
        "specversion": "1.0",
        "source": "backend",
        "datacontenttype": "application/json",
        "topic": "task-events",
        "pubsubname": "pubsub",
        "data": envelope,
    }
    return envelope["event_id"], json.dumps(event).encode()


@pytest.fixture
def recurring_settings(database_url: str) -> RecurringSettings:
    return RecurringSettings(
        database_url=database_url,
        auth_jwt_secret=JWT_SECRET,
        app_api_token=APP_TOKEN,
        app_env="test",
        log_level="WARNING",
        db_pool_size=4,
        rule_budget_seconds=1.0,
    )


@pytest.fixture
def backend() -> Iterator[ProbeApp]:
    """A probe standing where the backend's next-occurrence route is (201 by default)."""
    probe = ProbeApp(answer=lambda received: (201, {"id": str(uuid.uuid4())}))
    server = ServerThread(probe.app).start()
    probe.port = server.port
    try:
        yield probe
    finally:
        server.stop()


@pytest.fixture
def client(
    recurring_settings: RecurringSettings,
    backend: ProbeApp,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TestClient, MeshThread]]:
    """The recurring app, with a stand-in sidecar of its own and one for the backend."""
    standin = MeshThread(fast_config())
    standin.start()
    try:
        standin.add_sidecar(
            SidecarSpec(app_id="backend", app_port=backend.port, app_token="backend-token")
        )
        own = standin.add_sidecar(SidecarSpec(app_id="recurring", app_port=1))
        for name, value in own.env.items():
            monkeypatch.setenv(name, value)
        with TestClient(create_app(recurring_settings), raise_server_exceptions=False) as test:
            yield test, standin
    finally:
        standin.stop()
