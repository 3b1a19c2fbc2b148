"""Completing a recurring task yields exactly one next occurrence — also with duplicates,
reordering and two recurring-service instances — and the series ends at COUNT/UNTIL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from apps.local.standin.delivery import Outcome
from apps.local.system import LocalSystem
from tests.e2e.conftest import Api, eventually, settle

WEEKLY = {"rrule": "FREQ=WEEKLY", "anchor": "due"}


def _weekly(api: Api, title: str = "Take out the bins", **extra: object) -> dict[str, Any]:
    return api.create(
        title=title,
        due_at="2030-01-07T07:00:00+01:00",
        timezone="Europe/Berlin",
        recurrence=WEEKLY,
        **extra,
    )


def _next_occurrence_delays(system: LocalSystem) -> float:
    """next_occurrence_delay_seconds's count over every backend replica (what the
    pipeline-freshness SLI sums)."""
    count = 0.0
    for instance in system.of("backend"):
        text = httpx.get(f"{instance.url}/metrics").text
        for family in text_string_to_metric_families(text):
            count += sum(
                sample.value
                for sample in family.samples
                if sample.name == "next_occurrence_delay_seconds_count"
            )
    return count


def test_completing_a_weekly_task_yields_the_next_one(user: Callable[[], Api]) -> None:
    api = user()
    task = _weekly(api, tags=["home"], reminders=[{"before_minutes": 15}])

    api.complete(str(task["id"]))

    (successor,) = eventually(lambda: api.successors(str(task["id"])), what="next occurrence")
    assert successor["due_at"] == "2030-01-14T06:00:00Z"  # 07:00 in Berlin, a week on
    assert successor["series_id"] == task["id"]
    assert successor["tags"] == ["home"] and not successor["completed"]
    assert [r["before_minutes"] for r in successor["reminders"]] == [15]
    settle(1.0)
    assert len(api.successors(str(task["id"]))) == 1


def test_exactly_one_successor_under_duplicates_and_reordering(
    system: LocalSystem, user: Callable[[], Api]
) -> None:
    faults = system.standin.mesh.faults
    faults.duplicate_rate = 1.0
    faults.duplicate_delay = (0.0, 0.5)
    faults.reorder_jitter = 0.05
    api = user()
    tasks = [_weekly(api, title=f"chore {n}") for n in range(12)]
    delays_before = _next_occurrence_delays(system)

    for task in tasks:
        api.complete(str(task["id"]))

    def all_have_successors() -> bool:
        return len(api.tasks()) == 24

    eventually(all_have_successors, timeout=30, what="12 successors")
    settle(1.5)  # late duplicates arrive within duplicate_delay
    everything = api.tasks()
    assert len(everything) == 24
    by_series: dict[str, list[dict[str, object]]] = {}
    for item in everything:
        by_series.setdefault(str(item["series_id"]), []).append(item)
    assert all(len(items) == 2 for items in by_series.values())
    duplicates = [
        e
        for e in system.standin.mesh.journal
        if e.duplicate and e.path == "/events/task-completed" and e.outcome is Outcome.SUCCESS
    ]
    assert duplicates, "the duplicates really were delivered"
    # The pipeline-freshness SLI counts each successor once, duplicates or not.
    assert _next_occurrence_delays(system) == delays_before + 12


def test_two_recurring_instances_share_the_work(
    system: LocalSystem, user: Callable[[], Api]
) -> None:
    api = user()
    tasks = [_weekly(api, title=f"shared {n}") for n in range(16)]
    for task in tasks:
        api.complete(str(task["id"]))
    eventually(lambda: len(api.tasks()) == 32, timeout=30, what="16 successors")
    ids = {str(t["id"]) for t in tasks}
    handled_by = {
        e.instance_id
        for e in system.standin.mesh.journal
        if e.path == "/events/task-completed" and e.outcome is Outcome.SUCCESS
    }
    assert handled_by == {"recurring-0", "recurring-1"}
    assert len({t["id"] for t in api.tasks()} - ids) == 16


def test_the_series_ends_at_count(user: Callable[[], Api]) -> None:
    api = user()
    current = api.create(
        title="Three times only",
        due_at="2030-02-01T09:00:00Z",
        recurrence={"rrule": "FREQ=DAILY;COUNT=3", "anchor": "due"},
    )
    seen = [current]
    for _ in range(2):
        api.complete(str(current["id"]))
        current = eventually(lambda: _open_task(api), what="the next occurrence")
        seen.append(current)
    api.complete(str(current["id"]))
    settle(2.0)
    everything = api.tasks()
    assert len(everything) == 3 and all(t["completed"] for t in everything)
    assert [t["recurrence"]["rrule"] for t in seen] == [
        "FREQ=DAILY;COUNT=3",
        "FREQ=DAILY;COUNT=2",
        "FREQ=DAILY;COUNT=1",
    ]
    dues = sorted(datetime.fromisoformat(t["due_at"]) for t in everything)
    assert [d.day for d in dues] == [1, 2, 3]


def _open_task(api: Api) -> dict[str, Any] | None:
    return next((t for t in api.tasks() if not t["completed"]), None)


def test_the_series_ends_at_until(user: Callable[[], Api]) -> None:
    api = user()
    first = api.create(
        title="Until Tuesday",
        due_at="2030-04-01T09:00:00Z",  # a Monday
        recurrence={"rrule": "FREQ=DAILY;UNTIL=20300402T090000Z", "anchor": "due"},
    )
    api.complete(str(first["id"]))
    second = eventually(lambda: _open_task(api), what="Tuesday's occurrence")
    assert second["due_at"] == "2030-04-02T09:00:00Z"
    api.complete(str(second["id"]))
    settle(2.0)
    assert len(api.tasks()) == 2
