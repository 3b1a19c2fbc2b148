"""One bad row never stalls a round: whatever goes wrong calling one target is that row's
failed attempt, and every other row claimed in the same round is delivered and recorded."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from apps.notification.settings import NotificationServiceSettings
from apps.notification.targets import resolve_url
from tests.apps.local.probe_app import ProbeApp
from tests.apps.notification.worker_harness import run_worker, seed_webhook

# Targets stored before the settings API refused them; each used to escape `_call`
# (httpx.InvalidURL, ValueError from the port check) and fail the whole round.
POISONED = {
    "bad-port-text": "http://127.0.0.1:1a/hook",
    "bad-port-range": "http://localhost:99999/hook",
    "bad-ipv6": "http://[::1/hook",
}


def test_a_poisoned_row_fails_alone_and_the_round_goes_on(
    notification_settings: NotificationServiceSettings, receiver: tuple[ProbeApp, str]
) -> None:
    probe, url = receiver
    database_url = notification_settings.database_url.get_secret_value()
    good = {seed_webhook(database_url, user_id=f"good-{n}", url=url) for n in range(5)}
    bad = {
        seed_webhook(database_url, user_id=user, url=target) for user, target in POISONED.items()
    }

    rows = run_worker(
        notification_settings,
        # Recorded: the good ones delivered, the poisoned ones with their first error.
        lambda rows: (
            all(rows[d].status == "delivered" for d in good)
            and all(rows[d].last_error for d in bad)
        ),
        timeout=10,  # below the 30 s lease an unrecorded round would wait out
    )

    assert {rows[d].attempts for d in good} == {1}
    deliveries = Counter(call.json()["delivery_id"] for call in probe.calls("/hook"))
    assert deliveries == Counter({str(d): 1 for d in good})  # each exactly once
    for delivery in bad:
        row = rows[delivery]
        assert row.status in {"pending", "failed"} and row.attempts >= 1, row
        assert row.last_error and row.last_error.startswith("target refused: "), row


def test_poisoned_rows_end_failed_after_their_attempts(
    notification_settings: NotificationServiceSettings,
) -> None:
    database_url = notification_settings.database_url.get_secret_value()
    bad = {
        seed_webhook(database_url, user_id=user, url=target) for user, target in POISONED.items()
    }

    rows = run_worker(
        notification_settings, lambda rows: all(rows[d].status == "failed" for d in bad)
    )

    assert {rows[d].attempts for d in bad} == {notification_settings.webhook_max_attempts}


def test_an_unexpected_error_in_one_call_is_that_rows_failed_attempt(
    notification_settings: NotificationServiceSettings,
    receiver: tuple[ProbeApp, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe, url = receiver
    database_url = notification_settings.database_url.get_secret_value()

    async def buggy(target: str, **kwargs: Any) -> Any:
        if "/boom" in target:
            raise RuntimeError("a bug in the checks")
        return await resolve_url(target, **kwargs)

    monkeypatch.setattr("apps.notification.workers.webhooks.resolve_url", buggy)
    good = {seed_webhook(database_url, user_id=f"good-{n}", url=url) for n in range(3)}
    boom = seed_webhook(database_url, user_id="boom", url=url.replace("/hook", "/boom"))

    rows = run_worker(
        notification_settings,
        lambda rows: (
            all(rows[d].status == "delivered" for d in good) and bool(rows[boom].last_error)
        ),
        timeout=10,
    )

    assert rows[boom].last_error == "call failed: RuntimeError: a bug in the checks"
    assert len(probe.calls("/hook")) == 3 and not probe.calls("/boom")
