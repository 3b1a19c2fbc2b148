"""A reminder yields exactly one notification — with two backend replicas scanning — and
webhooks are signed, retried, then marked failed when the receiver stays down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from apps.local.ports import free_port
from apps.local.system import LocalSystem
from tests.apps.local.probe_app import ProbeApp, ServerThread
from tests.e2e.conftest import Api, eventually, settle


def _soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def _task_with_reminder(api: Api, *, fire_in: float, title: str = "Stand-up") -> dict[str, Any]:
    return api.create(
        title=title,
        due_at=_soon(3600),
        reminders=[{"at": _soon(fire_in)}],
    )


def test_a_reminder_becomes_exactly_one_notification(
    system: LocalSystem, user: Callable[[], Api]
) -> None:
    assert len(system.of("backend")) == 2  # both replicas' cron bindings scan
    api = user()
    task = _task_with_reminder(api, fire_in=2)

    (note,) = eventually(api.notes, what="the notification")
    settle(1.5)  # both replicas scanned several times since
    assert len(api.notes()) == 1
    assert note["task_id"] == task["id"] and note["title"] == "Stand-up"
    assert note["reminder_id"] == task["reminders"][0]["id"]
    assert [(d["channel"], d["status"]) for d in note["deliveries"]] == [("in_app", "delivered")]
    lateness = datetime.fromisoformat(note["created_at"]) - datetime.fromisoformat(
        note["remind_at"]
    )
    assert timedelta(0) <= lateness < timedelta(seconds=10)
    fired = api.backend.get(f"/api/v1/tasks/{task['id']}").json()["reminders"][0]
    assert fired["fired_at"] is not None


def test_many_reminders_fire_once_each(system: LocalSystem, user: Callable[[], Api]) -> None:
    api = user()
    tasks = [
        api.create(
            title=f"task {n}",
            due_at=_soon(3600),
            reminders=[{"at": _soon(2)}, {"at": _soon(2.5)}],
        )
        for n in range(20)
    ]
    eventually(lambda: len(api.notes()) >= 40, timeout=30, what="40 notifications")
    settle(1.5)
    notes = api.notes()
    assert len(notes) == 40
    assert len({n["reminder_id"] for n in notes}) == 40
    assert {n["task_id"] for n in notes} == {t["id"] for t in tasks}
    read = api.notifications.post(f"/api/v1/notifications/{notes[0]['id']}/read")
    assert read.status_code == 200
    unread = api.notifications.get("/api/v1/notifications", params={"unread": "true"}).json()
    assert unread["total"] == 39


@pytest.fixture
def receiver() -> Iterator[tuple[ProbeApp, str]]:
    probe = ProbeApp()
    server = ServerThread(probe.app).start()
    try:
        yield probe, f"http://127.0.0.1:{server.port}/hooks/todo"
    finally:
        server.stop()


def _webhook_to(api: Api, url: str) -> str:
    answer = api.notifications.put("/api/v1/notification-settings", json={"webhook_url": url})
    assert answer.status_code == 200, answer.text
    secret: str = answer.json()["webhook_secret"]
    return secret


def _webhook_delivery(api: Api) -> dict[str, Any] | None:
    notes = api.notes()
    if not notes:
        return None
    return next((d for d in notes[0]["deliveries"] if d["channel"] == "webhook"), None)


def test_webhooks_arrive_signed(user: Callable[[], Api], receiver: tuple[ProbeApp, str]) -> None:
    probe, url = receiver
    api = user()
    secret = _webhook_to(api, url)
    task = _task_with_reminder(api, fire_in=1.5)

    delivered = eventually(
        lambda: (d := _webhook_delivery(api)) and d["status"] == "delivered" and d,
        what="a delivered webhook",
    )
    (call,) = probe.calls("/hooks/todo")
    Webhook(secret).verify(call.body, call.headers)  # what a receiver does
    assert call.headers["webhook-id"] == call.json()["delivery_id"]
    assert call.json()["notification"]["task_id"] == task["id"]
    assert delivered["attempts"] == 1


def test_a_webhook_that_stays_down_is_retried_then_failed(user: Callable[[], Api]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    api = user()
    _webhook_to(api, dead)
    _task_with_reminder(api, fire_in=1.5)

    failed = eventually(
        lambda: (d := _webhook_delivery(api)) and d["status"] == "failed" and d,
        what="a failed webhook",
    )
    assert failed["attempts"] == 3  # WEBHOOK_MAX_ATTEMPTS in the e2e settings
    assert "request failed" in failed["last_error"]
    in_app = next(d for d in api.notes()[0]["deliveries"] if d["channel"] == "in_app")
    assert in_app["status"] == "delivered"  # the user still got it


def test_metrics_show_the_pipeline(system: LocalSystem) -> None:
    text = httpx.get(f"{system.url('notification')}/metrics").text
    assert 'events_consumed_total{outcome="success",service="notification"' in text
    assert "reminder_lateness_seconds_bucket" in text
    assert 'notifications_delivered_total{channel="in_app",outcome="delivered"}' in text
    backend = httpx.get(f"{system.url('backend')}/metrics").text
    assert 'outbox_pending_events{service="backend"}' in backend
