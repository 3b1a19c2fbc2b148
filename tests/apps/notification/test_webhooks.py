"""Webhook delivery: signed (Standard Webhooks), retried with backoff, then failed; at
most one claim at a time."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook, WebhookVerificationError

from apps.local.ports import free_port
from apps.notification.main import create_app
from apps.notification.settings import NotificationServiceSettings
from apps.notification.signing import generate_secret
from tests.apps.local.probe_app import ProbeApp, Received, wait_until
from tests.apps.notification.conftest import (
    bearer,
    bulk_delivery,
    cloud_event,
    deliver,
    reminder_envelope,
)


def _subscribe(client: TestClient, url: str) -> str:
    answer = client.put(
        "/api/v1/notification-settings", json={"webhook_url": url}, headers=bearer("alice")
    )
    secret: str = answer.json()["webhook_secret"]
    return secret


def _webhook(client: TestClient) -> dict[str, Any]:
    (item,) = client.get("/api/v1/notifications", headers=bearer("alice")).json()["items"]
    deliveries: dict[str, dict[str, Any]] = {d["channel"]: d for d in item["deliveries"]}
    return deliveries["webhook"]


def test_webhook_is_signed_and_marked_delivered(
    client: TestClient, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    secret = _subscribe(client, url)
    envelope = reminder_envelope()

    deliver(client, cloud_event(envelope))

    wait_until(lambda: _webhook(client)["status"] == "delivered", what="delivered")
    (call,) = probe.calls("/hook")
    assert secret.startswith("whsec_")
    # What a receiver does: the Standard Webhooks verifier, given the secret as shown.
    Webhook(secret).verify(call.body, call.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(call.body, call.headers)
    assert not any(name.startswith("x-todo") for name in call.headers)
    body = call.json()
    assert body["type"] == "reminder.due"
    assert body["notification"]["task_id"] == envelope["data"]["task_id"]
    assert call.headers["webhook-id"] == body["delivery_id"]
    assert _webhook(client)["attempts"] == 1


def test_failing_webhook_is_retried_then_marked_failed(
    client: TestClient, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    probe.answer = lambda received: (503, None)
    _subscribe(client, url)

    deliver(client, cloud_event(reminder_envelope()))

    wait_until(lambda: _webhook(client)["status"] == "failed", what="failed", timeout=15)
    failed = _webhook(client)
    assert failed["attempts"] == 3  # webhook_max_attempts in the test settings
    assert "503" in failed["last_error"]
    assert len(probe.calls("/hook")) == 3


def test_a_webhook_that_recovers_is_delivered(
    client: TestClient, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    answers = iter([(500, None), (200, {"ok": True})])

    def flaky(received: Received) -> tuple[int, Any]:
        return next(answers, (200, {"ok": True}))

    probe.answer = flaky
    _subscribe(client, url)
    deliver(client, cloud_event(reminder_envelope()))
    wait_until(lambda: _webhook(client)["status"] == "delivered", what="delivered")
    assert _webhook(client)["attempts"] == 2


def test_unreachable_webhook_ends_failed(client: TestClient) -> None:
    _subscribe(client, f"http://127.0.0.1:{free_port()}/hook")  # nobody listens there
    deliver(client, cloud_event(reminder_envelope()))
    wait_until(lambda: _webhook(client)["status"] == "failed", what="failed", timeout=15)
    assert "request failed" in _webhook(client)["last_error"]


def test_two_replicas_deliver_each_webhook_once(
    notification_settings: NotificationServiceSettings, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    with (
        TestClient(create_app(notification_settings)) as first,
        TestClient(create_app(notification_settings)) as second,
    ):
        _subscribe(first, url)
        for n in range(40):
            deliver(first if n % 2 else second, cloud_event(reminder_envelope()))
        wait_until(lambda: len(probe.calls("/hook")) >= 40, what="40 webhooks", timeout=20)
        time.sleep(0.3)  # a duplicate claim would show up by now
    ids = [call.headers["webhook-id"] for call in probe.calls("/hook")]
    assert len(ids) == len(set(ids)) == 40


def test_a_bulk_delivery_queues_the_webhook_of_each_new_notification(
    client: TestClient, receiver: tuple[ProbeApp, str]
) -> None:
    """Written in one transaction for the whole batch, each notification still gets its
    in-app and webhook deliveries, and the worker sends the webhook."""
    probe, url = receiver
    _subscribe(client, url)
    mine, theirs = reminder_envelope(), reminder_envelope(user_id="bob")
    body = bulk_delivery(cloud_event(mine), cloud_event(theirs))

    answer = deliver(client, body)

    assert [s["status"] for s in answer.json()["statuses"]] == ["SUCCESS", "SUCCESS"]
    wait_until(lambda: _webhook(client)["status"] == "delivered", what="delivered")
    (call,) = probe.calls("/hook")
    assert call.json()["notification"]["task_id"] == mine["data"]["task_id"]
    (theirs_listed,) = client.get("/api/v1/notifications", headers=bearer("bob")).json()["items"]
    assert [d["channel"] for d in theirs_listed["deliveries"]] == ["in_app"]
