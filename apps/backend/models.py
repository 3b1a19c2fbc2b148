"""Tables of the task API: tasks, their tags and their reminders."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from apps.backend.fields import Priority
from apps.backend.schemas import TaskBase
from apps.shared.timeutil import utcnow

# Weighted so title matches rank above description matches. 'english' stems words
# ("running" finds "run"); the config must be a constant for a generated column.
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('english'::regconfig, title), 'A') || "
    "setweight(to_tsvector('english'::regconfig, description), 'B')"
)


PRIORITY_TYPE = sa.Enum(
    Priority, name="task_priority", values_callable=lambda members: [m.value for m in members]
)


def _timestamp(*, nullable: bool) -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Task(TaskBase, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.CheckConstraint(
            "(rrule IS NULL) = (recurrence_anchor IS NULL)", name="ck_tasks_recurrence_complete"
        ),
        sa.CheckConstraint(
            "rrule IS NULL OR due_at IS NOT NULL", name="ck_tasks_recurrence_needs_due_at"
        ),
        sa.CheckConstraint(
            "recurrence_anchor IN ('due', 'completion')", name="ck_tasks_recurrence_anchor"
        ),
        sa.CheckConstraint("completed = (completed_at IS NOT NULL)", name="ck_tasks_completed_at"),
        sa.Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        sa.Index("ix_tasks_user_updated", "user_id", "updated_at", "id"),
        sa.Index("ix_tasks_user_due", "user_id", "due_at", "id"),
        # due_at DESC NULLS LAST (undated last) is not the ascending index read backwards.
        sa.Index(
            "ix_tasks_user_due_desc",
            "user_id",
            sa.text("due_at DESC NULLS LAST"),
            sa.text("id DESC"),
        ),
        # Status filters (with priority and due ranges): lists sorted by due date read it
        # in order, and their totals are counted from it alone (index-only scans).
        sa.Index("ix_tasks_user_status", "user_id", "completed", "priority", "due_at", "id"),
        sa.Index("ix_tasks_user_priority", "user_id", "priority", "id"),
        sa.Index("ix_tasks_user_title", "user_id", "title", "id"),
        sa.Index("ix_tasks_search", "search_vector", postgresql_using="gin"),
    )

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, sa_column=sa.Column(pg.UUID(as_uuid=True), primary_key=True)
    )
    user_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    title: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    description: str = Field(
        default="", sa_column=sa.Column(sa.String(4000), nullable=False, server_default="")
    )
    priority: Priority = Field(
        default=Priority.medium,
        sa_column=sa.Column(PRIORITY_TYPE, nullable=False, server_default=Priority.medium.value),
    )
    due_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    timezone: str = Field(
        default="UTC", sa_column=sa.Column(sa.String(64), nullable=False, server_default="UTC")
    )
    rrule: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    recurrence_anchor: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(16), nullable=True)
    )
    completed: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    completed_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    series_id: uuid.UUID | None = Field(
        default=None, sa_column=sa.Column(pg.UUID(as_uuid=True), nullable=True)
    )
    # The completed task this one was generated from: unique, so each completion yields
    # at most one next occurrence however often the recurring service asks.
    previous_task_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            pg.UUID(as_uuid=True),
            sa.ForeignKey("tasks.id", ondelete="SET NULL"),
            nullable=True,
            unique=True,
        ),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    search_vector: str | None = Field(
        default=None,
        sa_column=sa.Column(pg.TSVECTOR, sa.Computed(SEARCH_VECTOR_SQL, persisted=True)),
    )


class Tag(SQLModel, table=True):
    """One tag on one task (lowercase); `user_id` is repeated so counts need no join."""

    __tablename__ = "tags"
    __table_args__ = (sa.Index("ix_tags_user_name", "user_id", "name"),)

    task_id: uuid.UUID = Field(
        sa_column=sa.Column(
            pg.UUID(as_uuid=True), sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
        )
    )
    name: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    user_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))


class Reminder(SQLModel, table=True):
    """A reminder on a task: `before_minutes` before its due time, or `at` a fixed time.

    `remind_at` is the computed fire time; NULL means disarmed (the task is completed).
    The reminder scan picks rows with `remind_at <= now()` and `fired_at IS NULL`.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        sa.CheckConstraint(
            "(before_minutes IS NULL) <> (at IS NULL)", name="ck_reminders_one_kind"
        ),
        sa.Index(
            "ix_reminders_due",
            "remind_at",
            postgresql_where=sa.text("fired_at IS NULL AND remind_at IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, sa_column=sa.Column(pg.UUID(as_uuid=True), primary_key=True)
    )
    task_id: uuid.UUID = Field(
        sa_column=sa.Column(
            pg.UUID(as_uuid=True),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    user_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    before_minutes: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, nullable=True))
    at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    remind_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    fired_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
