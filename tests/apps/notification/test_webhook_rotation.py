"""Rotating the webhook secret: the new one is shown once, the replaced one keeps signing
(a second signature) until it expires, so a receiver holding either verifies."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from standardwebhooks import Webhook, WebhookVerificationError

from apps.notification.main import create_app
from apps.notification.settings import NotificationServiceSettings
from apps.notification.signing import SIGNATURE_HEADER, generate_secret
from tests.apps.local.probe_app import ProbeApp, Received, wait_until
from tests.apps.notification.conftest import bearer, cloud_event, deliver, reminder_envelope
from tests.apps.notification.worker_harness import run_worker, seed_settings, seed_webhook

SETTINGS = "/api/v1/notification-settings"
ROTATE = f"{SETTINGS}/webhook-secret/rotate"
ALICE = bearer("alice")


def _subscribe(client: TestClient, url: str) -> str:
    answer = client.put(SETTINGS, json={"webhook_url": url}, headers=ALICE)
    assert answer.status_code == 200, answer.text
    secret: str = answer.json()["webhook_secret"]
    return secret


def _rotate(client: TestClient) -> dict[str, Any]:
    answer = client.post(ROTATE, headers=ALICE)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _next_call(client: TestClient, probe: ProbeApp) -> Received:
    before = len(probe.calls("/hook"))
    deliver(client, cloud_event(reminder_envelope()))
    wait_until(lambda: len(probe.calls("/hook")) > before, what="a webhook")
    return probe.calls("/hook")[-1]


def _verifies(secret: str, call: Received) -> bool:
    try:
        Webhook(secret).verify(call.body, call.headers)
    except WebhookVerificationError:
        return False
    return True


def test_during_a_rotation_either_secret_verifies(
    client: TestClient, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    old = _subscribe(client, url)

    rotated = _rotate(client)

    new = rotated["webhook_secret"]
    assert new.startswith("whsec_") and new != old
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    expected = datetime.fromisoformat(rotated["updated_at"]) + timedelta(hours=24)
    assert abs(expires - expected) < timedelta(seconds=1)
    shown = client.get(SETTINGS, headers=ALICE).json()
    assert shown["webhook_secret"] is None and new not in str(shown) and old not in str(shown)
    assert shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]

    call = _next_call(client, probe)
    signatures = call.headers[SIGNATURE_HEADER].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert _verifies(new, call) and _verifies(old, call)
    assert not _verifies(generate_secret(), call)


def test_rotating_again_drops_the_oldest_secret(
    client: TestClient, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    first = _subscribe(client, url)
    second = _rotate(client)["webhook_secret"]
    third = _rotate(client)["webhook_secret"]

    call = _next_call(client, probe)

    assert len(call.headers[SIGNATURE_HEADER].split(" ")) == 2
    assert _verifies(third, call) and _verifies(second, call)
    assert not _verifies(first, call)


def test_a_secret_given_replaces_the_current_one_at_once(
    client: TestClient, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    _subscribe(client, url)
    rotated = _rotate(client)["webhook_secret"]
    kept = client.put(SETTINGS, json={"webhook_url": url}, headers=ALICE).json()
    assert kept["previous_secret_expires_at"] is not None  # a plain update keeps it going

    mine = generate_secret()
    replaced = client.put(
        SETTINGS, json={"webhook_url": url, "webhook_secret": mine}, headers=ALICE
    ).json()

    assert replaced["previous_secret_expires_at"] is None
    call = _next_call(client, probe)
    assert len(call.headers[SIGNATURE_HEADER].split(" ")) == 1
    assert _verifies(mine, call) and not _verifies(rotated, call)


def test_an_expired_secret_no_longer_signs(
    notification_settings: NotificationServiceSettings, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    current, expired = generate_secret(), generate_secret()
    delivery = seed_webhook(
        notification_settings.database_url.get_secret_value(),
        user_id="alice",
        url=url,
        secret=current,
        previous=expired,
        previous_for=timedelta(seconds=-1),
    )

    run_worker(notification_settings, lambda rows: rows[delivery].status == "delivered")

    (call,) = probe.calls("/hook")
    assert len(call.headers[SIGNATURE_HEADER].split(" ")) == 1
    assert _verifies(current, call) and not _verifies(expired, call)


def test_rotating_a_secret_from_before_the_format(
    notification_settings: NotificationServiceSettings, receiver: tuple[ProbeApp, str]
) -> None:
    """The receiver still verifying with the old plain secret (as bytes) keeps working
    while it switches to the new whsec_ one."""
    probe, url = receiver
    legacy = "a-plain-secret-set-before-whsec"
    database_url = notification_settings.database_url.get_secret_value()
    seed_settings(database_url, user_id="alice", url=url, secret=legacy)
    with TestClient(create_app(notification_settings)) as client:
        new = _rotate(client)["webhook_secret"]
        call = _next_call(client, probe)
    Webhook(legacy.encode()).verify(call.body, call.headers)
    assert _verifies(new, call)


def test_the_window_is_a_setting(notification_settings: NotificationServiceSettings) -> None:
    short = notification_settings.model_copy(update={"webhook_secret_rotation_hours": 2})
    with TestClient(create_app(short)) as client:
        _subscribe(client, "https://hooks.example.com/x")
        rotated = _rotate(client)
    window = datetime.fromisoformat(rotated["previous_secret_expires_at"]) - datetime.fromisoformat(
        rotated["updated_at"]
    )
    assert window == timedelta(hours=2)


def test_rotating_without_a_webhook_is_a_409(client: TestClient) -> None:
    refused = client.post(ROTATE, headers=ALICE)
    assert refused.status_code == 409
    assert refused.json()["detail"][0]["loc"] == ["webhook_url"]
    _subscribe(client, "https://hooks.example.com/x")
    client.put(SETTINGS, json={"webhook_url": None}, headers=ALICE)
    assert client.post(ROTATE, headers=ALICE).status_code == 409
    assert client.post(ROTATE).status_code == 401
