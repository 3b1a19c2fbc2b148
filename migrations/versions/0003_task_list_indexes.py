"""task list indexes: status filters, due date descending

Two indexes for the task list (GET /api/v1/tasks):

- `ix_tasks_user_status` (user_id, completed, priority, due_at, id): a list filtered by
  status (and priority, and due range) sorted by due date is read from it in order, and
  its total is counted from it alone by an index-only scan;
- `ix_tasks_user_due_desc` (user_id, due_at DESC NULLS LAST, id DESC): sorting by due
  date descending keeps undated tasks last, which `ix_tasks_user_due` read backwards
  cannot give, so without it every such page sorted all of the user's tasks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_tasks_user_status",
        "tasks",
        ["user_id", "completed", "priority", "due_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_tasks_user_due_desc",
        "tasks",
        ["user_id", sa.text("due_at DESC NULLS LAST"), sa.text("id DESC")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_user_due_desc", table_name="tasks")
    op.drop_index("ix_tasks_user_status", table_name="tasks")
