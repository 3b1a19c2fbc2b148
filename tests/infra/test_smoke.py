"""The deploy smoke test's driver: what it sends, what it waits for, when it fails.

A deployed stack (edge, Dapr, Kafka, three services) cannot run here, so the driver talks
to `FakeDeployment`: an httpx transport that answers the routes of architecture §5/§6 the
way the services do, and that produces the next occurrence and the notification only
after a few polls — as the real pipeline does asynchronously. The real run is the deploy
workflow's smoke step against staging and prod.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from infra.tooling.delivery.smoke import SmokeFailure, SmokeRun, mint_token

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeDeployment:
    """The public API of a deployment, with asynchronous effects after `delay` polls."""

    def __init__(self, *, delay: int = 2, next_due_shift: timedelta = timedelta(days=1)) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.delay = delay
        self.next_due_shift = next_due_shift
        self.polls = 0
        self.requests: list[tuple[str, str]] = []
        self.pending_reminders: list[dict[str, Any]] = []
        self.pending_completions: list[dict[str, Any]] = []
        self.healthy = True

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        self.requests.append((method, path))
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return httpx.Response(401, json={"detail": "missing token"})
        if path == "/api/v1/tags":
            return httpx.Response(200 if self.healthy else 503, json={"items": []})
        if path == "/api/v1/tasks" and method == "POST":
            return self._create(json.loads(request.content))
        if path == "/api/v1/tasks" and method == "GET":
            self._tick()
            status = request.url.params.get("status")
            tags = request.url.params.get_list("tag")
            items = [
                t
                for t in self.tasks.values()
                if set(tags) <= set(t["tags"]) and (status != "open" or not t["completed"])
            ]
            return httpx.Response(200, json={"items": items, "total": len(items)})
        if path.endswith("/complete") and method == "POST":
            task = self.tasks[path.split("/")[-2]]
            task["completed"] = True
            if task["recurrence"]:
                self.pending_completions.append(task)
            return httpx.Response(200, json=task)
        if path.startswith("/api/v1/tasks/") and method == "DELETE":
            return httpx.Response(204 if self.tasks.pop(path.split("/")[-1], None) else 404)
        if path == "/api/v1/notifications":
            self._tick()
            return httpx.Response(200, json={"items": self.notifications})
        return httpx.Response(404, json={"detail": "not found"})

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        if not body.get("title"):
            return httpx.Response(422, json={"detail": [{"loc": ["title"], "msg": "required"}]})
        task = {
            "id": str(uuid.uuid4()),
            "title": body["title"],
            "due_at": body.get("due_at"),
            "recurrence": body.get("recurrence"),
            "completed": False,
            "tags": body.get("tags", []),
            "series_id": str(uuid.uuid4()) if body.get("recurrence") else None,
        }
        self.tasks[task["id"]] = task
        if body.get("reminders"):
            self.pending_reminders.append(task)
        return httpx.Response(201, json=task)

    def _tick(self) -> None:
        """Asynchronous effects land after `delay` polls of any listing."""
        self.polls += 1
        if self.polls < self.delay:
            return
        for task in self.pending_completions:
            due = datetime.fromisoformat(task["due_at"]) + self.next_due_shift
            follow = {**task, "id": str(uuid.uuid4()), "completed": False}
            follow["due_at"] = due.isoformat()
            self.tasks[follow["id"]] = follow
        for task in self.pending_reminders:
            self.notifications.append({"id": str(uuid.uuid4()), "task_id": task["id"]})
        self.pending_completions, self.pending_reminders = [], []


def _run(fake: FakeDeployment, timeout: float = 30.0) -> SmokeRun:
    transport = httpx.MockTransport(fake.handle)
    headers = {"Authorization": "Bearer token"}
    api = httpx.Client(transport=transport, base_url="https://api.example", headers=headers)
    notes = httpx.Client(transport=transport, base_url="https://api.example", headers=headers)
    return SmokeRun(
        api,
        notes,
        run_id="r1",
        timeout=timeout,
        poll_interval=0,
        clock=lambda: NOW,
        sleep=lambda _: None,
    )


def test_the_whole_smoke_run_passes_and_cleans_up() -> None:
    fake = FakeDeployment(delay=3)
    smoke = _run(fake)

    smoke.health()
    occurrence = smoke.recurrence()
    notification = smoke.reminder()

    assert occurrence["due_at"] == (NOW + timedelta(hours=1, days=1)).isoformat()
    assert notification["task_id"] in smoke.created
    assert smoke.cleanup() == []
    assert fake.tasks == {}  # everything the run created is gone, the next occurrence too
    assert ("POST", f"/api/v1/tasks/{smoke.created[0]}/complete") in fake.requests


def test_a_wrong_next_occurrence_fails_with_what_was_seen() -> None:
    smoke = _run(FakeDeployment(next_due_shift=timedelta(days=2)))
    with pytest.raises(SmokeFailure, match="expected 2026-03-02 13:00:00"):
        smoke.recurrence()


def test_a_missing_notification_times_out() -> None:
    smoke = _run(FakeDeployment(delay=10**9), timeout=0.05)
    with pytest.raises(SmokeFailure, match="a notification for the reminder: not seen within"):
        smoke.reminder()


def test_unhealthy_deployment_fails_first() -> None:
    fake = FakeDeployment()
    fake.healthy = False
    with pytest.raises(SmokeFailure, match="GET /api/v1/tags: HTTP 503"):
        _run(fake).health()


def test_an_unexpected_status_names_the_step() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(500, text="boom"))
    client = httpx.Client(transport=transport, base_url="https://api.example")
    smoke = SmokeRun(client, client, clock=lambda: NOW, sleep=lambda _: None)
    with pytest.raises(SmokeFailure, match="create a recurring task: expected HTTP 201, got 500"):
        smoke.recurrence()


def test_minted_token_is_what_the_backend_verifies() -> None:
    secret = "s" * 48
    token = mint_token(secret, "smoke-r1")
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["sub"] == "smoke-r1"
    assert claims["exp"] - claims["iat"] == 20 * 60
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-of-enough-length-000000", algorithms=["HS256"])


def test_the_host_header_reaches_the_edge_through_a_port_forward() -> None:
    """Through `kubectl port-forward` the URL is 127.0.0.1; the HTTPRoute matches the host."""
    from infra.tooling.delivery.smoke import clients

    seen: list[tuple[str, str]] = []

    def edge(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers["host"]))
        return httpx.Response(200, json={"items": []})

    with clients("http://127.0.0.1:18080", "http://127.0.0.1:18080", "t", 5.0, "api.x") as (
        api,
        notes,
    ):
        api._transport = notes._transport = httpx.MockTransport(edge)
        SmokeRun(api, notes, clock=lambda: NOW, sleep=lambda _: None).health()
        notes.get("/api/v1/notifications")
    assert seen == [("127.0.0.1", "api.x"), ("127.0.0.1", "api.x")]


def test_without_a_host_header_the_url_names_the_host() -> None:
    from infra.tooling.delivery.smoke import client_headers

    assert "Host" not in client_headers("t")
    assert client_headers("t", "api.todo.localhost")["Host"] == "api.todo.localhost"
