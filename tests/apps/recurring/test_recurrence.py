"""The recurrence engine: wall-clock time across DST, anchors, COUNT and UNTIL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from apps.recurring.recurrence import (
    Anchor,
    NextOccurrence,
    RecurrenceError,
    next_occurrence,
    preview,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _next(
    rule: str,
    due: datetime,
    *,
    anchor: Anchor = "due",
    completed: datetime | None = None,
    tz: str = "Europe/Berlin",
) -> NextOccurrence | None:
    return next_occurrence(
        rule_text=rule,
        anchor=anchor,
        due_at=due,
        completed_at=completed or due,
        timezone=tz,
    )


class TestWallClock:
    def test_weekly_keeps_nine_oclock_across_spring_forward(self) -> None:
        due = datetime(2026, 3, 23, 9, 0, tzinfo=BERLIN)  # Monday, CET (UTC+1)
        result = _next("FREQ=WEEKLY", due)
        assert result is not None
        assert result.due_at == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # 09:00 CEST
        assert result.due_at.astimezone(BERLIN).hour == 9

    def test_daily_keeps_wall_clock_across_fall_back(self) -> None:
        due = datetime(2026, 10, 31, 18, 30, tzinfo=NEW_YORK)  # EDT
        result = _next("FREQ=DAILY", due, tz="America/New_York")
        assert result is not None
        assert result.due_at.astimezone(NEW_YORK) == datetime(2026, 11, 1, 18, 30, tzinfo=NEW_YORK)
        assert result.due_at - due == timedelta(hours=25)

    def test_a_wall_time_missing_on_the_spring_forward_day_moves_by_the_gap(self) -> None:
        due = datetime(2026, 3, 28, 2, 30, tzinfo=BERLIN)
        result = _next("FREQ=DAILY", due)
        assert result is not None
        assert result.due_at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST

    def test_due_given_in_another_offset_counts_in_the_task_zone(self) -> None:
        # 23:30 UTC on Sunday is already Monday 01:30 in Berlin: BYDAY is read in Berlin.
        due = datetime(2026, 6, 7, 23, 30, tzinfo=UTC)
        result = _next("FREQ=WEEKLY;BYDAY=MO,TH", due)
        assert result is not None
        assert result.due_at.astimezone(BERLIN) == datetime(2026, 6, 11, 1, 30, tzinfo=BERLIN)


class TestAnchors:
    def test_due_anchor_counts_from_the_due_time_even_when_completed_late(self) -> None:
        due = datetime(2026, 1, 5, 9, 0, tzinfo=BERLIN)
        result = _next("FREQ=WEEKLY", due, completed=due + timedelta(days=10))
        assert result is not None
        assert result.due_at.astimezone(BERLIN) == datetime(2026, 1, 12, 9, 0, tzinfo=BERLIN)

    def test_completion_anchor_counts_from_the_completion_day_at_the_due_time(self) -> None:
        due = datetime(2026, 1, 5, 17, 0, tzinfo=BERLIN)
        completed = datetime(2026, 1, 9, 8, 15, tzinfo=BERLIN)
        result = _next("FREQ=DAILY;INTERVAL=3", due, anchor="completion", completed=completed)
        assert result is not None
        assert result.due_at.astimezone(BERLIN) == datetime(2026, 1, 12, 17, 0, tzinfo=BERLIN)

    def test_completion_anchor_with_weekdays_takes_the_next_matching_day(self) -> None:
        due = datetime(2026, 1, 2, 10, 0, tzinfo=BERLIN)  # a Friday
        completed = datetime(2026, 1, 5, 12, 0, tzinfo=BERLIN)  # the Monday after
        result = _next("FREQ=WEEKLY;BYDAY=MO,FR", due, anchor="completion", completed=completed)
        assert result is not None
        assert result.due_at.astimezone(BERLIN) == datetime(2026, 1, 9, 10, 0, tzinfo=BERLIN)


class TestSeriesEnd:
    def test_count_is_carried_down_and_ends_the_series(self) -> None:
        due = datetime(2026, 2, 2, 9, 0, tzinfo=BERLIN)
        first = _next("FREQ=WEEKLY;COUNT=3", due)
        assert first is not None and first.rrule == "FREQ=WEEKLY;COUNT=2"
        second = _next(first.rrule, first.due_at)
        assert second is not None and second.rrule == "FREQ=WEEKLY;COUNT=1"
        assert _next(second.rrule, second.due_at) is None

    def test_until_ends_the_series(self) -> None:
        rule = "FREQ=WEEKLY;UNTIL=20260216T080000Z"
        due = datetime(2026, 2, 2, 9, 0, tzinfo=BERLIN)
        first = _next(rule, due)
        assert first is not None and first.rrule == rule
        second = _next(rule, first.due_at)
        assert second is not None
        assert second.due_at == datetime(2026, 2, 16, 8, 0, tzinfo=UTC)  # UNTIL is inclusive
        assert _next(rule, second.due_at) is None

    def test_monthly_on_the_31st_skips_shorter_months(self) -> None:
        due = datetime(2026, 1, 31, 12, 0, tzinfo=BERLIN)
        result = _next("FREQ=MONTHLY;BYMONTHDAY=31", due)
        assert result is not None
        assert result.due_at.astimezone(BERLIN).date().isoformat() == "2026-03-31"


class TestBadInput:
    @pytest.mark.parametrize("rule", ["FREQ=SOMETIMES", "INTERVAL=2", "", "FREQ=DAILY\nX=1"])
    def test_bad_rules_name_the_rrule(self, rule: str) -> None:
        with pytest.raises(RecurrenceError) as raised:
            _next(rule, datetime(2026, 1, 1, tzinfo=UTC))
        assert raised.value.field == "rrule"

    def test_unknown_zone_names_the_timezone(self) -> None:
        with pytest.raises(RecurrenceError) as raised:
            _next("FREQ=DAILY", datetime(2026, 1, 1, tzinfo=UTC), tz="Mars/Olympus")
        assert raised.value.field == "timezone"


class TestPreview:
    def test_starts_at_dtstart_when_it_matches(self) -> None:
        start = datetime(2026, 3, 23, 9, 0, tzinfo=BERLIN)
        got = preview(rule_text="FREQ=WEEKLY", dtstart=start, timezone="Europe/Berlin", count=3)
        assert [o.isoformat() for o in got] == [
            "2026-03-23T09:00:00+01:00",
            "2026-03-30T09:00:00+02:00",
            "2026-04-06T09:00:00+02:00",
        ]

    def test_count_in_the_rule_limits_the_preview(self) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        got = preview(rule_text="FREQ=DAILY;COUNT=2", dtstart=start, timezone="UTC", count=10)
        assert len(got) == 2


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
RULES = [
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=2",
    "FREQ=WEEKLY",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "FREQ=MONTHLY;BYMONTHDAY=15",
    "FREQ=MONTHLY;BYDAY=1MO",
    "FREQ=YEARLY",
]


@settings(max_examples=60, deadline=None)
@given(
    rule=st.sampled_from(RULES),
    zone_name=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
    count=st.integers(min_value=2, max_value=6),
)
def test_chaining_next_occurrences_walks_the_rules_own_series(
    rule: str, zone_name: str, start: datetime, count: int
) -> None:
    """Completing each occurrence in turn yields dateutil's series, COUNT included."""
    tz = ZoneInfo(zone_name)
    first = start.replace(second=0, microsecond=0, tzinfo=tz)
    # A wall time inside a spring-forward gap is stored as the instant after the gap.
    assume(first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == first.replace(tzinfo=None))
    series = [o for o in rrulestr(f"{rule};COUNT={count}", dtstart=first) if o != first]
    expected = [first, *series][:count]  # RFC 5545: DTSTART is the first occurrence

    walked = [first.astimezone(UTC)]
    current_rule = f"{rule};COUNT={count}"
    while (step := _next(current_rule, walked[-1], tz=zone_name)) is not None:
        walked.append(step.due_at)
        current_rule = step.rrule
        assert len(walked) <= count

    assert walked == [o.astimezone(UTC) for o in expected]
