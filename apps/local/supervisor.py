"""Restarting what dies, the way the kubelet restarts a pod's containers.

`todo-local` runs processes (the services, PostgreSQL) and in-process parts (the stand-in
sidecars); each is a `Unit` here. A thread looks at every unit a few times a second; a
unit found dead is started again after a backoff that doubles with each consecutive
crash (`Backoff`: like CrashLoopBackOff's 10 s, 20 s, … capped at 5 min and forgotten
after 10 min of running, only scaled down to a laptop's seconds). Every death and
restart is logged and counted; `Supervisor.status()` is what `todo-local status` prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

log = structlog.get_logger("todo_local.supervisor")


class Unit(Protocol):
    """Something the supervisor keeps running."""

    @property
    def name(self) -> str: ...

    def running(self) -> bool:
        """False once it died (and was not stopped on purpose)."""
        ...

    def exit_reason(self) -> str:
        """How it ended (exit code, signal), for the log."""
        ...

    def restart(self) -> None:
        """Start it again (returns once started; readiness is the unit's own business)."""
        ...

    def pid(self) -> int | None: ...


@dataclass(frozen=True)
class Backoff:
    """Delay before restart number n of a crash loop: `initial * 2**(n-1)`, at most
    `cap`; a unit that ran `reset_after` seconds starts over at `initial`."""

    initial: float = 0.25
    cap: float = 16.0
    reset_after: float = 32.0

    def delay(self, consecutive: int) -> float:
        return min(self.initial * 2.0 ** max(consecutive - 1, 0), self.cap)


@dataclass(frozen=True)
class RestartEvent:
    """One death and the restart that followed it."""

    unit: str
    died_at: float  # when the supervisor saw it dead (wall clock)
    reason: str
    delay: float
    restarted_at: float | None = None
    error: str | None = None


@dataclass
class _State:
    unit: Unit
    restarts: int = 0
    consecutive: int = 0
    started_at: float = field(default_factory=time.monotonic)
    due_at: float | None = None  # a restart is scheduled for then
    pending: RestartEvent | None = None
    last_reason: str | None = None


class Supervisor:
    """Watches units on a thread of its own; `start()`, `stop()`."""

    def __init__(
        self,
        backoff: Backoff | None = None,
        *,
        interval: float = 0.1,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.interval = interval
        self.on_event = on_event
        self.events: list[RestartEvent] = []
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, unit: Unit) -> None:
        with self._lock:
            self._states[unit.name] = _State(unit)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="todo-local-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def restarts(self, name: str) -> int:
        with self._lock:
            return self._states[name].restarts

    def total_restarts(self) -> int:
        with self._lock:
            return sum(state.restarts for state in self._states.values())

    def status(self) -> list[dict[str, object]]:
        """One row per unit: name, state, pid, restarts, last exit, uptime."""
        now = time.monotonic()
        with self._lock:
            return [
                {
                    "name": name,
                    "state": ("backoff" if state.due_at is not None else "running"),
                    "pid": state.unit.pid(),
                    "restarts": state.restarts,
                    "last_exit": state.last_reason,
                    "uptime_seconds": round(now - state.started_at, 1)
                    if state.due_at is None
                    else None,
                }
                for name, state in self._states.items()
            ]

    def _say(self, message: str) -> None:
        if self.on_event is not None:
            self.on_event(message)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def check(self) -> None:
        """One look at every unit (the thread calls this; tests may too)."""
        with self._lock:
            states = list(self._states.values())
        for state in states:
            if self._stop.is_set():
                return
            self._check(state)

    def _check(self, state: _State) -> None:
        unit, now = state.unit, time.monotonic()
        if state.due_at is None:
            if unit.running():
                if state.consecutive and now - state.started_at >= self.backoff.reset_after:
                    state.consecutive = 0
                return
            state.consecutive += 1
            delay = self.backoff.delay(state.consecutive)
            reason = unit.exit_reason()
            state.last_reason = reason
            state.due_at = now + delay
            state.pending = RestartEvent(unit.name, time.time(), reason, delay)
            log.warning("unit died", unit=unit.name, reason=reason, restart_in=delay)
            self._say(f"{unit.name} died ({reason}); restarting in {delay:.2f}s")
            return
        if now < state.due_at:
            return
        pending = state.pending
        assert pending is not None
        try:
            unit.restart()
        except Exception as exc:
            state.consecutive += 1
            delay = self.backoff.delay(state.consecutive)
            state.due_at = time.monotonic() + delay
            log.error("restart failed", unit=unit.name, error=repr(exc), retry_in=delay)
            self._say(f"{unit.name} failed to restart ({exc!r}); next try in {delay:.2f}s")
            return
        with self._lock:
            state.restarts += 1
            state.due_at = None
            state.started_at = time.monotonic()
            state.pending = None
            self.events.append(
                RestartEvent(
                    pending.unit, pending.died_at, pending.reason, pending.delay, time.time()
                )
            )
        log.warning("unit restarted", unit=unit.name, restarts=state.restarts)
        self._say(f"{unit.name} restarted (restart #{state.restarts}, pid {unit.pid()})")
