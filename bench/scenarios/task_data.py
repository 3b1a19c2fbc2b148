"""The task API benchmark's data: who it acts as and the tasks it seeds."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

USER = "bench-user"
SECRET = "bench-secret-that-is-long-enough-for-hs256"
WORDS = (
    "report invoice garden kitchen meeting budget review plan travel doctor groceries "
    "laundry taxes renew passport email client design deploy backup dentist birthday "
    "gift insurance car service paint fence call mother book flight hotel"
).split()
PRIORITIES = ["low", "medium", "high", "urgent"]
TAGS = ["work", "home", "errand", "money", "health", "family", "later", "focus"]
REMINDER_MINUTES = [10, 30, 60, 1440]


def seed(url: str, *, tasks: int, noise_users: int) -> None:
    """`tasks` tasks for USER and as many again spread over `noise_users` other users."""
    rng = random.Random(42)
    now = datetime.now(UTC)
    task_rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[Any, ...]] = []
    reminder_rows: list[tuple[Any, ...]] = []
    owners = [(USER, tasks)] + [
        (f"noise-{index}", max(1, tasks // noise_users)) for index in range(1, noise_users + 1)
    ]
    for owner, count in owners:
        for _ in range(count):
            task_id = uuid.uuid4()
            created = now - timedelta(minutes=rng.randint(0, 525_600))
            due = now + timedelta(hours=rng.randint(-2_000, 4_000)) if rng.random() < 0.7 else None
            done = rng.random() < 0.3
            task_rows.append(
                (
                    task_id,
                    owner,
                    " ".join(rng.choices(WORDS, k=rng.randint(2, 5))).capitalize(),
                    " ".join(rng.choices(WORDS, k=rng.randint(0, 25))),
                    rng.choice(PRIORITIES),
                    due,
                    done,
                    created if done else None,
                    created,
                    created,
                )
            )
            for tag in rng.sample(TAGS, rng.randint(0, 3)):
                tag_rows.append((task_id, tag, owner))
            if due is not None and rng.random() < 0.3:
                minutes = rng.choice(REMINDER_MINUTES)
                fires = due - timedelta(minutes=minutes)
                fired = fires if fires <= now else None
                remind_at = None if done and fired is None else fires
                reminder_rows.append((uuid.uuid4(), task_id, owner, minutes, remind_at, fired))
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY tasks (id, user_id, title, description, priority, due_at, completed, "
            "completed_at, created_at, updated_at) FROM STDIN"
        ) as copy:
            for row in task_rows:
                copy.write_row(row)
        with cursor.copy("COPY tags (task_id, name, user_id) FROM STDIN") as copy:
            for row in tag_rows:
                copy.write_row(row)
        with cursor.copy(
            "COPY reminders (id, task_id, user_id, before_minutes, remind_at, fired_at) FROM STDIN"
        ) as copy:
            for row in reminder_rows:
                copy.write_row(row)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def open_task_ids(url: str) -> list[str]:
    """USER's open tasks, shuffled (the pool the complete scenario draws from)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT id FROM tasks WHERE user_id = %s AND NOT completed", (USER,)
        ).fetchall()
    ids = [str(row[0]) for row in rows]
    random.Random(7).shuffle(ids)
    return ids
