"""The task API's request and response models (one family per entity).

Requests forbid unknown fields, so a misspelt field is an error instead of being
silently ignored. Update models mark absent fields by leaving them out of
`model_fields_set`; `null` is accepted only where it means "clear this".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlmodel import SQLModel
from sqlmodel._compat import SQLModelConfig  # the type SQLModel declares model_config as
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from apps.backend.fields import (
    MAX_REMINDER_MINUTES,
    MAX_REMINDERS,
    MAX_TAGS,
    Description,
    Moment,
    Priority,
    RecurrenceAnchor,
    RRule,
    SearchText,
    TagName,
    TimeZoneName,
    Title,
    unique_tags,
)

_FORBID = SQLModelConfig(extra="forbid")

# Default of update fields that have no "clear" meaning; typed Any so the field's own
# type can stay non-optional (defaults are not validated, sent values are).
NOT_SENT: Any = None

TagSet = Annotated[list[TagName], Field(max_length=MAX_TAGS), AfterValidator(unique_tags)]


class ReminderBase(SQLModel):
    before_minutes: int | None = Field(default=None, ge=0, le=MAX_REMINDER_MINUTES)
    at: Moment | None = None


class ReminderCreate(ReminderBase):
    """`{"before_minutes": n}` (before the task's due time) or `{"at": datetime}`."""

    model_config = _FORBID

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> ReminderCreate:
        if (self.before_minutes is None) == (self.at is None):
            raise ValueError("set exactly one of before_minutes or at")
        return self


class ReminderPublic(ReminderBase):
    id: uuid.UUID
    remind_at: datetime | None = Field(description="when it fires; null once disarmed")
    fired_at: datetime | None


class Recurrence(SQLModel):
    model_config = _FORBID

    rrule: RRule = Field(description="RFC 5545 RRULE value, e.g. FREQ=WEEKLY;BYDAY=MO")
    anchor: RecurrenceAnchor = Field(
        default=RecurrenceAnchor.due,
        description="count the next occurrence from the due time or from completion",
    )


def _reminders_need_due_at(reminders: list[ReminderCreate], due_at: datetime | None) -> None:
    if due_at is None and any(reminder.before_minutes is not None for reminder in reminders):
        raise ValueError("before_minutes reminders need the task to have a due_at")


class TaskBase(SQLModel):
    """Fields a client sets and reads back; the table model `models.Task` extends it."""

    title: Title = Field(description="1–200 characters")
    description: Description = ""
    priority: Priority = Priority.medium
    due_at: Moment | None = Field(default=None, description="RFC 3339 with an offset")
    timezone: TimeZoneName = Field(default="UTC", description="IANA time zone name")


class TaskCreate(TaskBase):
    model_config = _FORBID

    tags: TagSet = Field(default_factory=list)
    reminders: list[ReminderCreate] = Field(default_factory=list, max_length=MAX_REMINDERS)
    recurrence: Recurrence | None = None

    @field_validator("reminders")
    @classmethod
    def _before_needs_due(
        cls, reminders: list[ReminderCreate], info: ValidationInfo
    ) -> list[ReminderCreate]:
        if "due_at" in info.data:  # absent when due_at itself failed validation
            _reminders_need_due_at(reminders, info.data["due_at"])
        return reminders

    @field_validator("recurrence")
    @classmethod
    def _recurrence_needs_due(
        cls, recurrence: Recurrence | None, info: ValidationInfo
    ) -> Recurrence | None:
        if recurrence is not None and info.data.get("due_at", False) is None:
            raise ValueError("recurrence needs the task to have a due_at")
        return recurrence


class TaskUpdate(SQLModel):
    """Partial update: only the fields sent change; tags and reminders are replaced whole."""

    model_config = _FORBID

    # Fields that cannot be cleared are typed without None: `null` is then rejected
    # naming the field, and `None` below only marks "not sent" (see model_fields_set).
    title: Title = NOT_SENT
    description: Description = NOT_SENT
    priority: Priority = NOT_SENT
    due_at: Moment | None = Field(default=None, description="null clears the due time")
    timezone: TimeZoneName = NOT_SENT
    tags: TagSet = NOT_SENT
    reminders: Annotated[list[ReminderCreate], Field(max_length=MAX_REMINDERS)] = NOT_SENT
    recurrence: Recurrence | None = Field(default=None, description="null ends the recurrence")


class TaskPublic(TaskBase):
    id: uuid.UUID
    tags: list[str]
    reminders: list[ReminderPublic]
    recurrence: Recurrence | None
    completed: bool
    completed_at: datetime | None
    series_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class TaskList(SQLModel):
    items: list[TaskPublic]
    total: int = Field(description="matching tasks, ignoring limit and offset")


# The same shapes as plain data, for list pages built straight from database rows.
# Building and validating a TaskPublic per row (its field validators run in Python)
# and then validating and serialising the page again cost about 1 ms of a 50-task
# page; serialising these dictionaries costs 0.2 ms. The fields and their order are
# TaskPublic's (a test holds them together), so the bytes are the same.


class ReminderData(TypedDict):
    before_minutes: int | None
    at: datetime | None
    id: uuid.UUID
    remind_at: datetime | None
    fired_at: datetime | None


class RecurrenceData(TypedDict):
    rrule: str
    anchor: str  # stored as the anchor's value


class TaskData(TypedDict):
    title: str
    description: str
    priority: Priority
    due_at: datetime | None
    timezone: str
    id: uuid.UUID
    tags: list[str]
    reminders: list[ReminderData]
    recurrence: RecurrenceData | None
    completed: bool
    completed_at: datetime | None
    series_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class TaskListData(TypedDict):
    items: list[TaskData]
    total: int


# Parses reminders as PostgreSQL's json_agg gives them (times as strings).
REMINDER_DATA = TypeAdapter(list[ReminderData])
TASK_LIST_DATA = TypeAdapter(TaskListData)


class TagCount(SQLModel):
    name: str
    count: int = Field(description="tasks carrying the tag")


class TagList(SQLModel):
    items: list[TagCount]


SortField = Literal["due_at", "priority", "created_at", "updated_at", "title"]


class TaskQuery(SQLModel):
    """Query parameters of GET /api/v1/tasks (unknown parameters are rejected)."""

    model_config = _FORBID

    q: SearchText | None = Field(default=None, description="full-text search")
    status: Literal["open", "completed", "all"] = "all"
    priority: list[Priority] = Field(default_factory=list, max_length=4)
    tag: list[TagName] = Field(
        default_factory=list, max_length=MAX_TAGS, description="all must match"
    )
    due_from: Moment | None = None
    due_to: Moment | None = None
    overdue: bool | None = None
    sort: SortField | None = Field(
        default=None, description="default: relevance with q, else created_at"
    )
    order: Literal["asc", "desc"] | None = Field(
        default=None, description="default: asc for due_at and title, desc otherwise"
    )
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


# What only the platform sends and reads (routes/internal.py).


class NextOccurrenceRequest(SQLModel):
    """What the recurring service sends for one completion."""

    model_config = _FORBID

    user_id: str = Field(min_length=1, max_length=255, description="owner of the task")
    due_at: Moment = Field(description="when the next occurrence is due")
    rrule: RRule = Field(description="the rule the next occurrence carries (COUNT counted down)")
    completion_event_id: uuid.UUID = Field(description="the task.completed.v1 event handled")


class NextOccurrenceItem(NextOccurrenceRequest):
    """One completion of a batch: which task, and the trace its handling belongs to."""

    task_id: uuid.UUID = Field(description="the completed task")
    traceparent: str | None = Field(default=None, max_length=64)
    tracestate: str | None = Field(default=None, max_length=512)


class NextOccurrencesRequest(SQLModel):
    """What the recurring service sends for a bulk delivery's completions."""

    model_config = _FORBID

    items: list[NextOccurrenceItem] = Field(min_length=1, max_length=500)


class NextOccurrenceResult(BaseModel):
    """One item's outcome: the status the single route would answer, and the error's
    type when it is one (e.g. `completion_already_handled`)."""

    status: int
    error: str | None = None


class NextOccurrencesAnswer(BaseModel):
    results: list[NextOccurrenceResult]


class ScanSummary(BaseModel):
    """What one reminder scan did."""

    emitted: int
    batches: int
