"""Webhook delivery: signed POSTs, retried with backoff, then marked failed.

Each notification's webhook delivery is a row (`pending` → `delivered` | `failed`). A
worker in every replica claims due rows with a lease — in one short transaction it
pushes `next_attempt_at` a lease ahead and counts the attempt (`FOR UPDATE SKIP LOCKED`,
so replicas never claim the same row) — then calls out with no transaction open, and
records the result. A replica that dies mid-call leaves a row whose lease simply runs
out, and another replica retries it: delivery is at least once, and receivers
deduplicate on `X-Todo-Delivery`.

Signature: `X-Todo-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
with `X-Todo-Timestamp` (Unix seconds), so a receiver can verify the sender and refuse
replays of old deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from apps.notification.settings import NotificationServiceSettings
from apps.notification.targets import TargetRefused, check_resolved
from apps.shared.events.envelope import rfc3339
from apps.shared.logs import get_logger
from apps.shared.metrics import NOTIFICATIONS_DELIVERED

# The logger keeps the name it had before the worker moved here: its lines do not change.
_log = get_logger("apps.notification.webhooks")

SIGNATURE_HEADER = "X-Todo-Signature"
TIMESTAMP_HEADER = "X-Todo-Timestamp"
DELIVERY_HEADER = "X-Todo-Delivery"
LEASE_SECONDS = 60


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    """What a receiver does (and what the tests do to check the sender)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


_CLAIM = sa.text(
    """
    WITH due AS (
        SELECT id FROM notification_deliveries
        WHERE status = 'pending' AND channel = 'webhook' AND next_attempt_at <= now()
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE notification_deliveries d
    SET attempts = d.attempts + 1,
        next_attempt_at = now() + make_interval(secs => :lease),
        updated_at = now()
    FROM due, notifications n
    LEFT JOIN notification_settings s ON s.user_id = n.user_id
    WHERE d.id = due.id AND n.id = d.notification_id
    RETURNING d.id, d.target, d.attempts, s.webhook_secret, n.id AS notification_id,
              n.user_id, n.task_id, n.reminder_id, n.title, n.due_at, n.remind_at, n.created_at
    """
)

_DELIVERED = sa.text(
    """
    UPDATE notification_deliveries
    SET status = 'delivered', delivered_at = now(), updated_at = now(), last_error = NULL
    WHERE id = :id AND status = 'pending'
    """
)

_FAILED_ATTEMPT = sa.text(
    """
    UPDATE notification_deliveries
    SET status = CASE WHEN attempts >= :max_attempts THEN 'failed' ELSE 'pending' END,
        next_attempt_at = now() + make_interval(secs => :delay),
        last_error = :error,
        updated_at = now()
    WHERE id = :id AND status = 'pending'
    RETURNING status
    """
)


@dataclass(frozen=True)
class _Claimed:
    row: Any

    @property
    def delivery_id(self) -> uuid.UUID:
        value: uuid.UUID = self.row["id"]
        return value

    def payload(self) -> bytes:
        row = self.row
        body = {
            "type": "reminder.due",
            "delivery_id": str(row["id"]),
            "notification": {
                "id": str(row["notification_id"]),
                "user_id": row["user_id"],
                "task_id": str(row["task_id"]),
                "reminder_id": str(row["reminder_id"]),
                "title": row["title"],
                "due_at": rfc3339(row["due_at"]) if row["due_at"] else None,
                "remind_at": rfc3339(row["remind_at"]),
                "created_at": rfc3339(row["created_at"]),
            },
        }
        return json.dumps(body, separators=(",", ":")).encode()


class WebhookWorker:
    def __init__(self, *, engine: AsyncEngine, settings: NotificationServiceSettings) -> None:
        self._engine = engine
        self._settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._http = httpx.AsyncClient(
            timeout=self._settings.webhook_timeout_seconds,
            follow_redirects=False,  # a redirect could lead anywhere, past the target check
            trust_env=False,
        )
        self._task = asyncio.create_task(self._run(), name="webhook-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def nudge(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                handled = await self.run_once()
                failures = 0
                if handled:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down: keep going
                failures += 1
                _log.error("webhook round failed", error=repr(exc))
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                continue
            # asyncio.timeout, not wait_for: see apps/shared/dapr.py (lost cancellations).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.webhook_poll_seconds):
                    await self._wake.wait()
            self._wake.clear()

    async def run_once(self) -> int:
        """Claim due deliveries, call out, record results; returns how many were tried."""
        settings = self._settings
        async with self._engine.begin() as connection:
            claimed = [
                _Claimed(row)
                for row in (
                    await connection.execute(
                        _CLAIM, {"limit": settings.webhook_concurrency * 4, "lease": LEASE_SECONDS}
                    )
                ).mappings()
            ]
        if not claimed:
            return 0
        gate = asyncio.Semaphore(settings.webhook_concurrency)

        async def attempt(item: _Claimed) -> tuple[_Claimed, str | None]:
            async with gate:
                return item, await self._call(item)

        results = await asyncio.gather(*(attempt(item) for item in claimed))
        async with self._engine.begin() as connection:
            for item, error in results:
                await self._record(connection, item, error)
        return len(claimed)

    async def _call(self, item: _Claimed) -> str | None:
        """POST the signed payload; None on success, else why it failed."""
        row = item.row
        secret, target = row["webhook_secret"], row["target"]
        if not secret or not target:
            return "webhook is no longer configured"
        try:
            await check_resolved(target, allow_private=self._settings.webhook_allow_private_targets)
        except TargetRefused as exc:
            return f"target refused: {exc}"
        body = item.payload()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            DELIVERY_HEADER: str(item.delivery_id),
            "user-agent": "todo-notification/1.0",
        }
        assert self._http is not None
        try:
            response = await self._http.post(target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"request failed: {exc!r}"
        if 200 <= response.status_code < 300:
            return None
        return f"answered {response.status_code}"

    async def _record(self, connection: Any, item: _Claimed, error: str | None) -> None:
        if error is None:
            await connection.execute(_DELIVERED, {"id": item.delivery_id})
            NOTIFICATIONS_DELIVERED.labels("webhook", "delivered").inc()
            return
        settings = self._settings
        attempts = int(item.row["attempts"])
        delay = random.uniform(
            settings.webhook_backoff_base_seconds,
            min(
                settings.webhook_backoff_max_seconds,
                settings.webhook_backoff_base_seconds * 2**attempts,
            ),
        )
        status = (
            await connection.execute(
                _FAILED_ATTEMPT,
                {
                    "id": item.delivery_id,
                    "max_attempts": settings.webhook_max_attempts,
                    "delay": delay,
                    "error": error[:2000],
                },
            )
        ).scalar_one_or_none()
        outcome = "failed" if status == "failed" else "retried"
        NOTIFICATIONS_DELIVERED.labels("webhook", outcome).inc()
        _log.warning(
            "webhook delivery failed",
            delivery_id=str(item.delivery_id),
            attempt=attempts,
            outcome=outcome,
            error=error,
        )
