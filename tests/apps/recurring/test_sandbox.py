"""Rules are evaluated in a worker process that a runaway rule cannot hold forever."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from apps.recurring.recurrence import RecurrenceError, next_occurrence, preview
from apps.recurring.sandbox import RuleSandbox, RuleTimeout


@pytest.fixture
def sandbox() -> Iterator[RuleSandbox]:
    box = RuleSandbox(budget_seconds=1.0)
    try:
        yield box
    finally:
        box.close()


def test_results_and_errors_cross_the_process_boundary(sandbox: RuleSandbox) -> None:
    async def scenario() -> None:
        due = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        result = await sandbox.run(
            next_occurrence,
            rule_text="FREQ=WEEKLY;COUNT=2",
            anchor="due",
            due_at=due,
            completed_at=due,
            timezone="UTC",
        )
        assert result is not None and result.due_at == datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
        with pytest.raises(RecurrenceError) as raised:
            await sandbox.run(preview, rule_text="FREQ=NEVER", dtstart=due, timezone="UTC", count=1)
        assert raised.value.field == "rrule"

    asyncio.run(scenario())


def test_a_rule_that_never_matches_is_stopped_and_the_sandbox_recovers(
    sandbox: RuleSandbox,
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)

    async def scenario() -> float:
        began = time.monotonic()
        with pytest.raises(RuleTimeout):
            await sandbox.run(
                preview,
                rule_text="FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30",
                dtstart=start,
                timezone="UTC",
                count=1,
            )
        stopped_after = time.monotonic() - began
        again = await sandbox.run(
            preview, rule_text="FREQ=DAILY", dtstart=start, timezone="UTC", count=2
        )
        assert len(again) == 2
        return stopped_after

    assert asyncio.run(scenario()) < 5.0  # dateutil alone would walk for half a minute


def test_a_batch_answers_each_rule_and_only_the_runaway_one_times_out(
    sandbox: RuleSandbox,
) -> None:
    """`run_each` sends the batch in one message; a rule error is that rule's result, and
    a rule that never matches makes only itself time out (the rest are answered)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def call(rule: str) -> dict[str, object]:
        return {"rule_text": rule, "dtstart": start, "timezone": "UTC", "count": 2}

    async def scenario() -> None:
        quick = await sandbox.run_each(preview, [call("FREQ=DAILY"), call("FREQ=NEVER")])
        assert quick[0] == [start, datetime(2026, 1, 2, tzinfo=UTC)]
        assert isinstance(quick[1], RecurrenceError) and quick[1].field == "rrule"

        mixed = await sandbox.run_each(
            preview,
            [call("FREQ=WEEKLY"), call("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30"), call("FREQ=DAILY")],
        )
        assert isinstance(mixed[1], RuleTimeout)
        assert mixed[0] == [start, datetime(2026, 1, 8, tzinfo=UTC)]
        assert mixed[2] == [start, datetime(2026, 1, 2, tzinfo=UTC)]

    asyncio.run(scenario())
