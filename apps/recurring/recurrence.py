"""The recurrence engine: RFC 5545 rules evaluated by python-dateutil in the task's zone.

Rules are expanded from an aware start in the task's IANA zone, so dateutil steps in
wall-clock time: a 09:00 weekly task stays at 09:00 across daylight-saving changes (a
wall time that does not exist on a spring-forward day lands one gap later, and an
ambiguous one takes its first, daylight-saving, instance).

Series bookkeeping, decided here because the API stores one rule per task: `COUNT=n` on
a task means "this occurrence and n-1 more" (RFC 5545 counts DTSTART as the first
occurrence), so each next occurrence carries `COUNT=n-1` and `COUNT=1` ends the series.
`UNTIL` (in UTC, as the API insists) is kept as is and ends the series when the next
occurrence would fall after it.

`anchor: due` counts from the completed occurrence's due time; `anchor: completion`
counts from the completion day, keeping the task's wall-clock due time. Either way the
next occurrence is the first one strictly after that start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

Anchor = Literal["due", "completion"]

_PREFIX = re.compile(r"^RRULE:", re.IGNORECASE)
_COUNT = re.compile(r"(^|;)COUNT=(\d+)(?=;|$)", re.IGNORECASE)


class RecurrenceError(ValueError):
    """The rule, start or zone cannot be evaluated."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[RecurrenceError], tuple[str, str]]:
        # Raised in the sandbox's worker process and re-raised here: keep both fields.
        return (RecurrenceError, (self.field, self.message))


@dataclass(frozen=True)
class NextOccurrence:
    """The next task of a series: its due time (UTC) and the rule it carries on."""

    due_at: datetime
    rrule: str


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError("timezone", "must be an IANA time zone name") from None


def normalise(rule_text: str) -> str:
    """The bare RRULE value: no `RRULE:` prefix, no surrounding blanks, one line."""
    rule = _PREFIX.sub("", rule_text.strip())
    if not rule or "\n" in rule or "\r" in rule or ":" in rule:
        raise RecurrenceError("rrule", "must be a single RRULE value such as FREQ=WEEKLY")
    return rule


def count_of(rule_text: str) -> int | None:
    match = _COUNT.search(rule_text)
    return int(match.group(2)) if match else None


def without_count(rule_text: str) -> str:
    return _COUNT.sub("", rule_text).strip(";")


def with_count(rule_text: str, count: int) -> str:
    return _COUNT.sub(lambda m: f"{m.group(1)}COUNT={count}", rule_text)


def compile_rule(rule_text: str, start: datetime) -> rrule:
    """dateutil's rule for `rule_text` from the aware `start` (in the zone to step in)."""
    try:
        compiled = rrulestr(normalise(rule_text), dtstart=start)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # dateutil reports bad rules through assorted exception types.
        raise RecurrenceError("rrule", f"is not a valid RFC 5545 RRULE: {exc}") from None
    if not isinstance(compiled, rrule):
        raise RecurrenceError("rrule", "must be a single RRULE")
    return compiled


def next_occurrence(
    *,
    rule_text: str,
    anchor: Anchor,
    due_at: datetime,
    completed_at: datetime,
    timezone: str,
) -> NextOccurrence | None:
    """The occurrence after a completed one, or None when the series has ended."""
    if due_at.tzinfo is None or completed_at.tzinfo is None:
        raise RecurrenceError("due_at", "must carry a UTC offset")
    rule = normalise(rule_text)
    remaining = count_of(rule)
    if remaining is not None and remaining <= 1:
        return None  # this was the last occurrence of the series
    tz = zone(timezone)
    due_local = due_at.astimezone(tz)
    if anchor == "due":
        start = due_local
    else:
        completed_local = completed_at.astimezone(tz)
        start = datetime.combine(completed_local.date(), due_local.timetz())
    # COUNT is this series' remaining length, handled above; UNTIL stays in the rule.
    following = compile_rule(without_count(rule), start).after(start, inc=False)
    if following is None:
        return None
    next_rule = rule if remaining is None else with_count(rule, remaining - 1)
    return NextOccurrence(due_at=following.astimezone(UTC), rrule=next_rule)


def preview(*, rule_text: str, dtstart: datetime, timezone: str, count: int) -> list[datetime]:
    """The first `count` occurrences from `dtstart` (itself included when the rule matches
    it), as aware datetimes in `timezone`."""
    if dtstart.tzinfo is None:
        raise RecurrenceError("dtstart", "must carry a UTC offset")
    start = dtstart.astimezone(zone(timezone))
    occurrences: list[datetime] = []
    for occurrence in compile_rule(rule_text, start):
        occurrences.append(occurrence)
        if len(occurrences) >= count:
            break
    return occurrences
