"""The supervisor: dead units are restarted with a doubling, capped backoff that is
forgotten after a unit ran long enough; every restart is counted and reported."""

from __future__ import annotations

import time

from apps.local.supervisor import Backoff, Supervisor


class FakeUnit:
    def __init__(self, name: str = "svc", fail_restarts: int = 0) -> None:
        self.name = name
        self.alive = True
        self.started = 0
        self.fail_restarts = fail_restarts

    def running(self) -> bool:
        return self.alive

    def exit_reason(self) -> str:
        return "killed by SIGKILL"

    def pid(self) -> int | None:
        return 42 if self.alive else None

    def restart(self) -> None:
        if self.fail_restarts:
            self.fail_restarts -= 1
            raise RuntimeError("port busy")
        self.alive = True
        self.started += 1


def test_backoff_doubles_and_is_capped() -> None:
    backoff = Backoff(initial=0.5, cap=4.0, reset_after=8.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_dead_unit_is_restarted_counted_and_reported() -> None:
    lines: list[str] = []
    supervisor = Supervisor(Backoff(initial=0.0, cap=0.0, reset_after=60), on_event=lines.append)
    unit = FakeUnit()
    supervisor.add(unit)
    supervisor.check()
    assert unit.started == 0
    unit.alive = False
    supervisor.check()  # seen dead: restart scheduled (no delay)
    supervisor.check()  # due: restarted
    assert unit.alive and unit.started == 1
    assert supervisor.restarts("svc") == 1
    assert [e.unit for e in supervisor.events] == ["svc"]
    assert supervisor.events[0].reason == "killed by SIGKILL"
    assert "svc died (killed by SIGKILL)" in lines[0] and "restart #1" in lines[1]
    (row,) = supervisor.status()
    assert row["restarts"] == 1 and row["state"] == "running" and row["pid"] == 42


def test_consecutive_crashes_back_off_and_a_long_run_resets_it() -> None:
    supervisor = Supervisor(Backoff(initial=100.0, cap=400.0, reset_after=0.0))
    unit = FakeUnit()
    supervisor.add(unit)
    unit.alive = False
    supervisor.check()
    assert supervisor.status()[0]["state"] == "backoff"
    assert supervisor._states["svc"].pending is not None
    assert supervisor._states["svc"].pending.delay == 100.0
    supervisor.check()
    assert unit.started == 0  # not due for 100 s
    supervisor._states["svc"].due_at = time.monotonic()  # time passes
    supervisor.check()
    assert unit.started == 1
    # reset_after=0: having run at all resets the crash loop, so the next delay is initial
    supervisor.check()
    unit.alive = False
    supervisor.check()
    assert supervisor._states["svc"].pending is not None
    assert supervisor._states["svc"].pending.delay == 100.0


def test_without_a_reset_the_delay_doubles() -> None:
    supervisor = Supervisor(Backoff(initial=1.0, cap=3.0, reset_after=1e9))
    unit = FakeUnit()
    supervisor.add(unit)
    delays = []
    for _ in range(3):
        unit.alive = False
        supervisor.check()
        pending = supervisor._states["svc"].pending
        assert pending is not None
        delays.append(pending.delay)
        supervisor._states["svc"].due_at = time.monotonic()
        supervisor.check()
    assert delays == [1.0, 2.0, 3.0]
    assert supervisor.restarts("svc") == 3


def test_a_failed_restart_is_tried_again() -> None:
    lines: list[str] = []
    supervisor = Supervisor(Backoff(initial=0.0, cap=0.0), on_event=lines.append)
    unit = FakeUnit(fail_restarts=2)
    supervisor.add(unit)
    unit.alive = False
    for _ in range(4):
        supervisor.check()
    assert unit.alive and supervisor.restarts("svc") == 1
    assert sum("failed to restart" in line for line in lines) == 2
