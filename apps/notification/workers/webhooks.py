"""Webhook delivery: signed POSTs, retried with backoff, then marked failed.

Each notification's webhook delivery is a row (`pending` → `delivered` | `failed`). A
worker in every replica claims due rows with a lease — in one short transaction it
pushes `next_attempt_at` a lease ahead and counts the attempt (`FOR UPDATE SKIP LOCKED`,
so replicas never claim the same row) — then calls out with no transaction open, and
records the result. A replica that dies mid-call leaves a row whose lease simply runs
out, and another replica retries it: delivery is at least once, and receivers
deduplicate on `webhook-id` (the delivery id).

Each call (`outbound`) connects to the address the target check resolved and passed,
follows no redirect, and is bounded: one deadline (`webhook_timeout_seconds`) covers
resolving, connecting, sending and the answer's head, and at most 64 KiB of the answer
is read.

The calls of a round are independent of each other: whatever goes wrong calling one
target (an error of any kind, bar cancellation) is that row's failed attempt, recorded
with its reason alongside the others. An exception escaping one call would otherwise
fail the round and leave every row claimed in it unrecorded, to be sent again once the
leases ran out (duplicates for everyone, and the bad row never counted towards failed).

Signature: the Standard Webhooks format (`apps.notification.signing`): `webhook-id`,
`webhook-timestamp` and `webhook-signature` headers, the signature covering the id, the
timestamp and the body, so a receiver can verify the sender and refuse replays. While a
rotated-out secret is still valid, each delivery is signed with both (`v1,<new>
v1,<old>`); the claim reads the old one only until it expires.

Stopping (the app's shutdown, `apps.shared.shutdown`): the worker claims nothing more
and starts no new call; calls in flight finish and are recorded, and the leases of
claimed rows not yet called are given back at once (`next_attempt_at = now()`, the
attempt uncounted), so another replica delivers them without waiting the lease out. If
calls outlast the drain budget they are cancelled and their leases given back too (the
attempt stays counted: the receiver may have got it). No row stays leased after `stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine

from apps.notification import signing
from apps.notification.settings import NotificationServiceSettings
from apps.notification.targets import TargetRefused, resolve_url
from apps.notification.workers import outbound
from apps.shared.events.envelope import rfc3339
from apps.shared.logs import get_logger
from apps.shared.metrics import NOTIFICATIONS_DELIVERED
from apps.shared.tracing import context_from, tracer

# The logger keeps the name it had before the worker moved here: its lines do not change.
_log = get_logger("apps.notification.webhooks")

# A round claims CLAIM_WAVES times as many rows as it calls at once, and each call ends
# by its overall deadline (`webhook_timeout_seconds`), so a live worker records every
# claimed row within CLAIM_WAVES deadlines; the lease adds a margin for the database
# round trips. A dead worker's rows are retried once it runs out: shorter is sooner.
CLAIM_WAVES = 4
LEASE_MARGIN_SECONDS = 10.0


def lease_seconds(settings: NotificationServiceSettings) -> float:
    """How long a claimed row stays out of other workers' reach."""
    return CLAIM_WAVES * settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS


_MAX_ERROR_CHARS = 2000


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
    RETURNING d.id, d.target, d.attempts, d.traceparent, d.tracestate, s.webhook_secret,
              CASE WHEN s.webhook_secret_previous_expires_at > now()
                   THEN s.webhook_secret_previous END AS webhook_secret_previous,
              n.id AS notification_id,
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

# Give claimed rows back: due now; `uncount` rows were never called.
_RELEASE = sa.text(
    """
    UPDATE notification_deliveries
    SET next_attempt_at = now(),
        attempts = CASE WHEN id = ANY(:uncount) THEN GREATEST(attempts - 1, 0)
                        ELSE attempts END,
        updated_at = now()
    WHERE id = ANY(:ids) AND status = 'pending'
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


def _redact(error: str, *secrets: str | None) -> str:
    """`error` without any of `secrets` (secrets, `v1,<signature>`s): errors are stored,
    shown to the user and logged, and no exception message may carry a key out."""
    for secret in filter(None, secrets):
        # The whole value, and the base64 of a `whsec_...` or of a `v1,...`.
        prefixless = secret.removeprefix(signing.SECRET_PREFIX)
        for form in (secret, prefixless, secret.rpartition(",")[2]):
            if form:  # replacing "" would insert everywhere
                error = error.replace(form, "[redacted]")
    return error


def _printable(error: str) -> str:
    """An error as it can be stored and logged: PostgreSQL text refuses NUL (one such
    message would fail the transaction that records the whole round), and a message
    echoing what a receiver or a URL held stays short."""
    cleaned = "".join(c if c.isprintable() else "?" for c in error)
    return cleaned[:_MAX_ERROR_CHARS]


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
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        settings: NotificationServiceSettings,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._tls = tls  # CAs to trust instead of the system's (tests)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._stopping = False
        # Claimed and not yet recorded (delivery id → whether its call has started).
        self._held: dict[uuid.UUID, bool] = {}

    def start(self) -> None:
        self._http = outbound.new_client(
            timeout=self._settings.webhook_timeout_seconds, tls=self._tls
        )
        self._task = asyncio.create_task(self._run(), name="webhook-worker")

    async def stop(self, *, drain_seconds: float = 0.0) -> None:
        """Finish the calls in flight (cancelled after `drain_seconds`), give back the
        leases of everything else claimed, then close the HTTP client."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            if drain_seconds > 0:
                done, _ = await asyncio.wait({self._task}, timeout=drain_seconds)
                if not done:
                    _log.warning("webhook calls outlasted the drain; cancelling them")
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._held:
            await self._release(dict(self._held))
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def nudge(self) -> None:
        self._wake.set()

    async def _release(self, held: dict[uuid.UUID, bool]) -> None:
        """Give back the leases of `held` (called or not) so they are due at once."""
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    _RELEASE,
                    {
                        "ids": list(held),
                        "uncount": [delivery for delivery, called in held.items() if not called],
                    },
                )
        except Exception as exc:  # the leases then run out by themselves
            _log.error("webhook leases not released", rows=len(held), error=repr(exc))
            return
        for delivery in held:
            self._held.pop(delivery, None)
        _log.info("webhook leases released", rows=len(held))

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
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
                        _CLAIM,
                        {
                            "limit": settings.webhook_concurrency * CLAIM_WAVES,
                            "lease": lease_seconds(settings),
                        },
                    )
                ).mappings()
            ]
        if not claimed:
            return 0
        self._held.update((item.delivery_id, False) for item in claimed)
        gate = asyncio.Semaphore(settings.webhook_concurrency)

        async def attempt(item: _Claimed) -> tuple[_Claimed, str | None] | None:
            async with gate:
                if self._stopping:
                    return None  # not called: its lease is given back below
                self._held[item.delivery_id] = True
                try:
                    return item, await self._call(item)
                except Exception as exc:  # not CancelledError: stopping still stops
                    # `_call` turns the call's own errors into reasons; this catches the
                    # rest (building the payload, signing, a bug). Whatever one row does is
                    # its failed attempt: escaping, it would fail the whole round and
                    # leave every row claimed with it unrecorded, to be sent again when
                    # their leases run out.
                    error = f"call failed: {type(exc).__name__}: {exc}"
                    row = item.row
                    return item, _redact(
                        error, row["webhook_secret"], row["webhook_secret_previous"]
                    )

        outcomes = await asyncio.gather(*(attempt(item) for item in claimed))
        results = [outcome for outcome in outcomes if outcome is not None]
        async with self._engine.begin() as connection:
            for item, error in results:
                await self._record(connection, item, error)
        for item, _ in results:
            self._held.pop(item.delivery_id, None)
        if self._held and self._stopping:
            await self._release({d: c for d, c in self._held.items() if not c})
        return len(claimed)

    async def _call(self, item: _Claimed) -> str | None:
        """POST the signed payload; None on success, else why it failed.

        Under a span continuing the trace of the event that recorded the delivery (its
        stored context), so the reminder's trace runs on to the webhook call.
        """
        row = item.row
        with tracer().start_as_current_span(
            "webhook deliver",
            context=context_from(row["traceparent"], row["tracestate"]),
            kind=SpanKind.INTERNAL,
            attributes={"todo.delivery_id": str(item.delivery_id), "todo.attempt": row["attempts"]},
        ) as span:
            error = await self._call_out(item)
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, error[:200]))
            return error

    async def _call_out(self, item: _Claimed) -> str | None:
        row = item.row
        secret, target = row["webhook_secret"], row["target"]
        if not secret or not target:
            return "webhook is no longer configured"
        # The current secret first; during a rotation, the one it replaced as well.
        secrets = [secret] + ([previous] if (previous := row["webhook_secret_previous"]) else [])
        body = item.payload()
        signed = signing.headers(
            secrets, msg_id=str(item.delivery_id), timestamp=int(time.time()), body=body
        )
        headers = {
            "content-type": "application/json",
            "user-agent": "todo-notification/1.0",
            **signed,
        }
        assert self._http is not None
        limit = self._settings.webhook_timeout_seconds
        # One deadline for resolving, connecting, sending and the answer's head.
        deadline = asyncio.get_running_loop().time() + limit
        try:
            async with asyncio.timeout_at(deadline):
                resolved = await resolve_url(
                    target, allow_private=self._settings.webhook_allow_private_targets
                )
            status = await outbound.post(
                self._http, resolved, body=body, headers=headers, deadline=deadline
            )
        except TargetRefused as exc:
            return f"target refused: {exc}"
        except TimeoutError:
            return f"no answer within {limit:g} s"
        except Exception as exc:  # httpx's errors, and any other: this row's attempt failed
            if isinstance(exc, httpx.HTTPError):
                error = f"request failed: {exc!r}"
            else:
                error = f"call failed: {type(exc).__name__}: {exc}"
            return _redact(error, *secrets, *signed[signing.SIGNATURE_HEADER].split())
        if 200 <= status < 300:
            return None
        return f"answered {status}"

    async def _record(self, connection: Any, item: _Claimed, error: str | None) -> None:
        if error is None:
            await connection.execute(_DELIVERED, {"id": item.delivery_id})
            NOTIFICATIONS_DELIVERED.labels("webhook", "delivered").inc()
            return
        settings = self._settings
        error = _printable(error)
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
                    "error": error,
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
