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

from bench.harness.database import database_postmaster
from bench.harness.local_system import SystemCpu
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


async def reminders(args: argparse.Namespace, url: str, state: dict[str, Any]) -> None:
    meter = SystemCpu(database_postmaster(url), state["pids"])
    start = datetime.now(UTC) + timedelta(seconds=15)
    seed_reminders(url, args.reminders, start=start, window=60.0)
    cpu_before = meter.read()
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
        cpu_after = meter.read()
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
        stages = await (
            await connection.execute(
                """
                SELECT EXTRACT(EPOCH FROM r.fired_at - r.remind_at),
                       EXTRACT(EPOCH FROM o.published_at - r.fired_at),
                       EXTRACT(EPOCH FROM n.created_at - o.published_at)
                FROM notifications n
                JOIN reminders r ON r.id = n.reminder_id
                JOIN outbox o ON o.event_id = n.event_id
                WHERE o.published_at IS NOT NULL
                """
            )
        ).fetchall()
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
    print("CPU per reminder (seeding to the last notification), by process:")
    spent = {k: (cpu_after[k] - cpu_before[k]) * 1000 / args.reminders for k in cpu_after}
    for name, milliseconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {name:<24} {milliseconds:6.2f} ms")
    print(f"  {'total':<24} {sum(spent.values()):6.2f} ms")
    print("where the time goes — p50 / p99 of each stage:")
    for index, name in enumerate(
        (
            "due → claimed by the scan",
            "claimed → published by the relay",
            "published → notification committed",
        )
    ):
        times = sorted(float(row[index]) for row in stages)
        print(f"  {name:<38} {percentile(times, 0.5):6.3f}s {percentile(times, 0.99):6.3f}s")
