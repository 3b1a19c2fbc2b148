"""Drive the webhook worker on its own against the test database: rows are written
straight into the tables (as if set before today's checks existed), then one worker
runs until a condition holds. No app and no consumer: each test decides exactly what is
due when the worker's first round claims."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from apps.notification.settings import NotificationServiceSettings
from apps.notification.workers.webhooks import WebhookWorker
from apps.shared.db import create_db_engine

SECRET = "whsec_" + base64.b64encode(b"worker-harness-key-0123456789abcdef").decode()


@dataclass(frozen=True)
class Row:
    user_id: str
    status: str
    attempts: int
    last_error: str | None


def seed_settings(
    database_url: str,
    *,
    user_id: str,
    url: str,
    secret: str = SECRET,
    previous: str | None = None,
    previous_for: timedelta | None = None,
) -> None:
    """A user's settings as if set long ago (no check of today's applies)."""
    settings: dict[str, object] = {"user_id": user_id, "webhook_url": url, "webhook_secret": secret}
    if previous is not None:
        settings["webhook_secret_previous"] = previous
        settings["webhook_secret_previous_expires_at"] = datetime.now().astimezone() + (
            previous_for or timedelta(hours=1)
        )
    columns = ", ".join(settings)
    values = ", ".join(f"%({name})s" for name in settings)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            f"INSERT INTO notification_settings ({columns}, updated_at) "
            f"VALUES ({values}, now()) ON CONFLICT (user_id) DO NOTHING",
            settings,
        )


def seed_webhook(database_url: str, *, user_id: str, url: str, **settings: Any) -> uuid.UUID:
    """`seed_settings`, one notification and its pending webhook delivery (due now);
    returns the delivery id."""
    seed_settings(database_url, user_id=user_id, url=url, **settings)
    delivery_id = uuid.uuid4()
    notification_id = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO notifications (id, user_id, event_id, reminder_id, task_id, title, "
            "due_at, remind_at, created_at) VALUES (%s, %s, %s, %s, %s, 'Call mum', NULL, "
            "now(), now())",
            (notification_id, user_id, uuid.uuid4(), uuid.uuid4(), uuid.uuid4()),
        )
        connection.execute(
            "INSERT INTO notification_deliveries (id, notification_id, channel, status, "
            "target, attempts, next_attempt_at, created_at, updated_at) "
            "VALUES (%s, %s, 'webhook', 'pending', %s, 0, now(), now(), now())",
            (delivery_id, notification_id, url),
        )
    return delivery_id


def webhook_rows(database_url: str) -> dict[uuid.UUID, Row]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT d.id, n.user_id, d.status, d.attempts, d.last_error "
            "FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id "
            "WHERE d.channel = 'webhook'"
        ).fetchall()
    return {row[0]: Row(row[1], row[2], row[3], row[4]) for row in rows}


def run_worker(
    settings: NotificationServiceSettings,
    until: Callable[[dict[uuid.UUID, Row]], bool],
    *,
    timeout: float = 15.0,
    worker_factory: Callable[..., WebhookWorker] = WebhookWorker,
) -> dict[uuid.UUID, Row]:
    """Run one worker until `until(rows)` holds (AssertionError after `timeout`); returns
    the rows as they were then."""
    database_url = settings.database_url.get_secret_value()

    async def scenario() -> dict[uuid.UUID, Row]:
        engine = create_db_engine(database_url, pool_size=2)
        worker = worker_factory(engine=engine, settings=settings)
        worker.start()
        try:
            deadline = time.monotonic() + timeout
            while True:
                rows = await asyncio.to_thread(webhook_rows, database_url)
                if until(rows):
                    return rows
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out; rows: {rows}")
                await asyncio.sleep(0.05)
        finally:
            await worker.stop()
            await engine.dispose()

    return asyncio.run(scenario())
