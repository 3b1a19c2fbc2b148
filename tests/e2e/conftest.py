"""End-to-end fixtures: the three real services (uvicorn processes), stand-in sidecars and
real PostgreSQL. One system per test module keeps the suite's start-up cost bounded;
tests in a module stay apart by using their own users.

The shared system runs two backend replicas and two recurring-service instances, so
every test also exercises the multi-replica paths (scanning, relaying, consuming).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from apps.local.standin import MeshConfig, RetryPolicy
from apps.local.system import LocalSystem, cluster_mesh_config


def e2e_mesh_config() -> MeshConfig:
    """The cluster's settings with shorter intervals, so retries play out in seconds."""
    return cluster_mesh_config(
        pubsub_inbound_retry=RetryPolicy(
            policy="exponential", initial_interval=0.1, max_interval=0.5, max_retries=4
        ),
        component_retry=RetryPolicy(policy="constant", duration=0.5, max_retries=-1),
        service_retry=RetryPolicy(policy="constant", duration=0.2, max_retries=3),
        seed=11,
    )


E2E_ENV = {
    "LOG_LEVEL": "WARNING",
    "OUTBOX_RELAY_POLL_SECONDS": "0.5",
    "OUTBOX_RELAY_BACKOFF_BASE_SECONDS": "0.1",
    "OUTBOX_RELAY_BACKOFF_MAX_SECONDS": "1.0",
    "WEBHOOK_MAX_ATTEMPTS": "3",
    "WEBHOOK_BACKOFF_BASE_SECONDS": "0.1",
    "WEBHOOK_BACKOFF_MAX_SECONDS": "0.3",
    "WEBHOOK_POLL_SECONDS": "0.2",
}


@pytest.fixture(scope="module")
def system(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    local = LocalSystem(
        database_url=module_database_url,
        log_dir=tmp_path_factory.mktemp("e2e-logs"),
        replicas={"backend": 2, "recurring": 2},
        mesh_config=e2e_mesh_config(),
        cron_every_seconds=0.5,
        extra_env=E2E_ENV,
    )
    with local:
        yield local


@pytest.fixture(autouse=True)
def _calm_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Faults a test injects end with the test."""
    yield
    if "system" in request.fixturenames:
        local: LocalSystem = request.getfixturevalue("system")
        local.standin.mesh.faults.reset()


class Api:
    """A user's view of the system through its public HTTP APIs."""

    def __init__(self, system: LocalSystem, user: str) -> None:
        self.user = user
        headers = {"Authorization": f"Bearer {system.token(user)}"}
        self.backend = httpx.Client(base_url=system.url("backend"), headers=headers, timeout=15)
        self.notifications = httpx.Client(
            base_url=system.url("notification"), headers=headers, timeout=15
        )

    def create(self, **task: Any) -> dict[str, Any]:
        answer = self.backend.post("/api/v1/tasks", json=task)
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def complete(self, task_id: str) -> dict[str, Any]:
        answer = self.backend.post(f"/api/v1/tasks/{task_id}/complete")
        assert answer.status_code == 200, answer.text
        completed: dict[str, Any] = answer.json()
        return completed

    def tasks(self, **params: Any) -> list[dict[str, Any]]:
        answer = self.backend.get("/api/v1/tasks", params={"limit": 200, **params})
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def successors(self, task_id: str) -> list[dict[str, Any]]:
        return [t for t in self.tasks() if t.get("series_id") and t["id"] != task_id]

    def notes(self) -> list[dict[str, Any]]:
        answer = self.notifications.get("/api/v1/notifications", params={"limit": 200})
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def close(self) -> None:
        self.backend.close()
        self.notifications.close()


@pytest.fixture
def user(system: LocalSystem) -> Iterator[Callable[[], Api]]:
    """`user()` gives a fresh user (own tasks, own notifications) for this test."""
    made: list[Api] = []

    def new_user() -> Api:
        api = Api(system, f"user-{uuid.uuid4().hex[:10]}")
        made.append(api)
        return api

    yield new_user
    for api in made:
        api.close()


def eventually(check: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def settle(seconds: float) -> None:
    """Give in-flight work time to show up where it must not (duplicates, extra tasks)."""
    time.sleep(seconds)
