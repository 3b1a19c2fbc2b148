"""Data access of the backend.

Functions are keyword-only, take the caller's session and never commit: the caller (a
route) decides the transaction boundary, so a change and the event it writes to the
outbox always commit or roll back together.

- `reads`: a task, a list page, the user's tags (SELECTs built in `queries`);
- `changes`: create, update, complete, reopen, delete, each with its `task.*.v1` event;
- `next_occurrence`: the successor of a completed recurring task, exactly once;
- `reminders` and `writes`: what those share (fire times; statements and events).
"""

from __future__ import annotations

from apps.backend.store.changes import (
    complete_task,
    create_task,
    delete_task,
    reopen_task,
    update_task,
)
from apps.backend.store.next_occurrence import create_next_occurrence, create_next_occurrences
from apps.backend.store.reads import find_successor, get_task, list_tags, list_tasks

__all__ = [
    "complete_task",
    "create_next_occurrence",
    "create_next_occurrences",
    "create_task",
    "delete_task",
    "find_successor",
    "get_task",
    "list_tags",
    "list_tasks",
    "reopen_task",
    "update_task",
]
