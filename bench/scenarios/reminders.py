"""Scenario 2: reminders due within one minute; lateness is (notification recorded −
`remind_at`) — the reminder-scan cron binding fires on each backend replica."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.harness.stats import percentile
from bench.scenarios.recurring_load import USERS


def seed_reminders(url: str, count: int, *, start: datetime, window: float) -> None:
    """`count` tasks with one reminder each, fire times spread evenly over `window` s."""
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        tasks: list[tuple[Any, ...]] = []
        reminders: list[tuple[Any, ...]] = []
        for n in range(count):
            task_id = uuid.uuid4()
            fires = start + timedelta(seconds=window * n / count)
            user = f"reminded-{n % USERS}"
            tasks.append((task_id, user, f"reminder {n}", fires + timedelta(hours=1), fires, fires))
            reminders.append((uuid.uuid4(), task_id, user, fires, fires))
        with cursor.copy(
            "COPY tasks (id, user_id, title, due_at, created_at, updated_at) FROM STDIN"
        ) as copy:
            for row in tasks:
                copy.write_row(row)
        with cursor.copy("COPY reminders (id, task_id, user_id, at, remind_at) FROM STDIN") as copy:
            for row in reminders:
                copy.write_row(row)


async def reminders(args: argparse.Namespace, url: str) -> None:
    start = datetime.now(UTC) + timedelta(seconds=15)
    seed_reminders(url, args.reminders, start=start, window=60.0)
    deadline = time.monotonic() + 15 + 60 + 120
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        while True:
            row = await (await connection.execute("SELECT count(*) FROM notifications")).fetchone()
            if row and row[0] >= args.reminders:
                break
            if time.monotonic() > deadline:
                print(f"only {row[0] if row else 0} of {args.reminders} notifications arrived")
                break
            await asyncio.sleep(0.5)
        rows = await (
            await connection.execute(
                "SELECT EXTRACT(EPOCH FROM created_at - remind_at) FROM notifications"
            )
        ).fetchall()
        duplicates = await (
            await connection.execute(
                "SELECT count(*) - count(DISTINCT reminder_id) FROM notifications"
            )
        ).fetchone()
    lateness = sorted(float(r[0]) for r in rows)
    print()
    print(
        f"2. {args.reminders} reminders due within one minute "
        f"(cron binding every {args.scan_seconds:g}s on each backend replica)"
    )
    print(
        f"notifications {len(lateness)}, duplicates {duplicates[0] if duplicates else '?'}; "
        f"lateness p50 {percentile(lateness, 0.5):.3f}s  p99 {percentile(lateness, 0.99):.3f}s  "
        f"max {lateness[-1]:.3f}s"
    )
