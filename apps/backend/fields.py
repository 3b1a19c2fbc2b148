"""Field types of the task API: each one carries its own rule and the reason it gives."""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Annotated
from zoneinfo import available_timezones

from dateutil import rrule as dateutil_rrule
from pydantic import AfterValidator, AwareDatetime, StringConstraints

# Years a stored moment may have (in UTC). PostgreSQL could store more, but years
# outside Python's 1..9999 could not be read back, and nothing plans that far.
MIN_YEAR, MAX_YEAR = 1900, 9998
MAX_TAGS = 20
MAX_REMINDERS = 10
MAX_REMINDER_MINUTES = 366 * 24 * 60
# Rules firing more often than hourly would flood the task list with occurrences.
_ALLOWED_FREQUENCIES = {"YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"}
_RRULE_PREFIX = re.compile(r"^RRULE:", re.IGNORECASE)
# Any aware start works for checking syntax; dateutil then insists UNTIL is in UTC,
# which is what the recurring service (aware, in the task's zone) needs too.
_REFERENCE_START = datetime(2026, 1, 1, tzinfo=UTC)


class Priority(enum.StrEnum):
    # Declaration order is the sort order of the PostgreSQL enum.
    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"


class RecurrenceAnchor(enum.StrEnum):
    due = "due"
    completion = "completion"


def storable_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def storable_moment(value: datetime) -> datetime:
    try:
        year = value.astimezone(UTC).year
    except OverflowError:  # year 1 minus a positive offset, year 9999 plus a negative one
        year = 0
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    # Stored as timestamptz and shown back in UTC, so normalise on the way in.
    return value.astimezone(UTC)


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def known_timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError("must be an IANA time zone name such as 'Europe/Berlin'")
    return value


# Every task read or written with a recurrence validates its rule (a completion three
# times over); dateutil's parse is most of that. A rule's verdict depends on its text
# alone, so accepted rules are remembered (bounded: a client sending new rules only
# evicts old ones); a refused rule raises, and lru_cache keeps no exceptions.
@lru_cache(maxsize=4096)
def valid_rrule(value: str) -> str:
    """Normalise an RFC 5545 RRULE value (no `RRULE:` prefix) after dateutil accepts it."""
    rule = _RRULE_PREFIX.sub("", value.strip())
    if "\n" in rule or "\r" in rule or ":" in rule:
        raise ValueError("must be a single RRULE value such as 'FREQ=WEEKLY;BYDAY=MO'")
    parts = dict(part.partition("=")[::2] for part in rule.upper().split(";") if part)
    if parts.get("FREQ") not in _ALLOWED_FREQUENCIES:
        raise ValueError("FREQ must be one of " + ", ".join(sorted(_ALLOWED_FREQUENCIES)))
    interval = parts.get("INTERVAL", "1")
    if not interval.isdigit() or int(interval) < 1:
        raise ValueError("INTERVAL must be a positive integer")
    try:
        dateutil_rrule.rrulestr(rule, dtstart=_REFERENCE_START)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # dateutil reports bad rules through assorted exception types.
        raise ValueError(f"is not a valid RFC 5545 RRULE: {exc}") from None
    return rule


Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(storable_text),
]
Description = Annotated[str, StringConstraints(max_length=4000), AfterValidator(storable_text)]
TagName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=32),
    AfterValidator(storable_text),
]
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(known_timezone)]
Moment = Annotated[AwareDatetime, AfterValidator(storable_moment)]
RRule = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(valid_rrule)]
SearchText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(storable_text),
]


def unique_tags(tags: list[str]) -> list[str]:
    """Tags are a set: duplicates (after lower-casing) collapse, order is alphabetical."""
    return sorted(set(tags))
