"""Standard Webhooks signatures: the spec's test vector, the secret format, secrets from
before the format, and no secret or signature in errors or logs."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook, WebhookVerificationError

from apps.notification.settings import NotificationServiceSettings
from apps.notification.signing import (
    SIGNATURE_HEADER,
    generate_secret,
    parse_secret,
    signature,
)
from tests.apps.local.probe_app import ProbeApp
from tests.apps.notification.conftest import bearer
from tests.apps.notification.worker_harness import run_worker, seed_webhook


def _secret(size: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(size))).decode()


def test_the_spec_test_vector() -> None:
    # The vector of the reference library's test_sign_function, in
    # standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py.
    assert (
        signature(
            ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_one_signature_per_secret_in_order() -> None:
    first, second = generate_secret(), generate_secret()
    both = signature([first, second], msg_id="d", timestamp=1, body=b"{}")
    assert both.split(" ") == [
        signature([first], msg_id="d", timestamp=1, body=b"{}"),
        signature([second], msg_id="d", timestamp=1, body=b"{}"),
    ]


def test_generated_secrets() -> None:
    secrets = {generate_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(parse_secret(secret)) == 32 for secret in secrets)


@pytest.mark.parametrize(
    "secret",
    [
        _secret(24),
        _secret(64),
        _secret(32).rstrip("="),  # unpadded, as the reference verifier accepts
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
)
def test_accepted_secrets(secret: str) -> None:
    assert 24 <= len(parse_secret(secret)) <= 64


@pytest.mark.parametrize(
    "secret",
    [
        "a-plain-secret-of-enough-length",
        _secret(23),
        _secret(65),
        "whsec_",
        "whsec_not base64 at all!",
        "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(),  # '-', '_' get dropped
        "WHSEC_" + _secret(32)[6:],
    ],
)
def test_refused_secrets(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_ followed by the base64 of 24 to 64"):
        parse_secret(secret)


def test_the_settings_api_takes_only_whsec_secrets(client: TestClient) -> None:
    alice = bearer("alice")
    url = "https://hooks.example.com/x"
    for bad in ("a-plain-secret-of-enough-length", _secret(16), _secret(65)):
        refused = client.put(
            "/api/v1/notification-settings",
            json={"webhook_url": url, "webhook_secret": bad},
            headers=alice,
        )
        assert refused.status_code == 422
        (detail,) = refused.json()["detail"]
        assert detail["loc"] == ["body", "webhook_secret"]
        assert bad not in refused.text
    mine = _secret(40)
    accepted = client.put(
        "/api/v1/notification-settings",
        json={"webhook_url": url, "webhook_secret": mine},
        headers=alice,
    )
    assert accepted.status_code == 200
    assert accepted.json()["webhook_secret"] is None  # shown only when generated
    assert mine not in client.get("/api/v1/notification-settings", headers=alice).text


def test_a_whsec_secret_verifies_as_receivers_are_told(
    notification_settings: NotificationServiceSettings, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    secret = generate_secret()
    database_url = notification_settings.database_url.get_secret_value()
    delivery = seed_webhook(database_url, user_id="alice", url=url, secret=secret)

    run_worker(notification_settings, lambda rows: rows[delivery].status == "delivered")

    (call,) = probe.calls("/hook")
    assert Webhook(secret).verify(call.body, call.headers)["delivery_id"] == str(delivery)
    assert call.headers["webhook-id"] == str(delivery)
    assert call.headers[SIGNATURE_HEADER].startswith("v1,")
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(call.body, call.headers)
    tampered = {**call.headers, "webhook-id": "another-delivery"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(call.body, tampered)


def test_a_secret_from_before_the_format_keeps_working(
    notification_settings: NotificationServiceSettings, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    legacy = "Zx9-legacy_token_urlsafe_secret-from-2025"
    database_url = notification_settings.database_url.get_secret_value()
    delivery = seed_webhook(database_url, user_id="alice", url=url, secret=legacy)

    run_worker(notification_settings, lambda rows: rows[delivery].status == "delivered")

    (call,) = probe.calls("/hook")
    # Its key is its UTF-8 bytes: the verifier given the secret as bytes.
    Webhook(legacy.encode()).verify(call.body, call.headers)


@pytest.mark.parametrize("error", [httpx.ConnectError, RuntimeError])
def test_errors_and_logs_carry_no_secret_or_signature(
    notification_settings: NotificationServiceSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: type[Exception],
) -> None:
    secret = generate_secret()
    seen: dict[str, str] = {}

    async def leaky(client: Any, resolved: Any, *, headers: Any, **kwargs: Any) -> int:
        seen.update(headers)
        raise error(f"refused; sent {headers[SIGNATURE_HEADER]} with {secret}")

    monkeypatch.setattr("apps.notification.workers.outbound.post", leaky)
    database_url = notification_settings.database_url.get_secret_value()
    delivery = seed_webhook(
        database_url, user_id="alice", url="http://127.0.0.1:9/hook", secret=secret
    )

    rows = run_worker(notification_settings, lambda rows: bool(rows[delivery].last_error))

    stored = rows[delivery].last_error or ""
    assert "[redacted]" in stored and error.__name__ in stored
    logged = capsys.readouterr()
    signature_value = seen[SIGNATURE_HEADER]
    for sensitive in (secret, secret[6:], signature_value, signature_value[3:]):
        assert sensitive not in stored
        assert sensitive not in logged.out + logged.err
