"""Rule evaluation in a child process with a time budget.

Some valid rules never match (`FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30`), and dateutil then
walks every period up to the year 9999 before giving up — half a minute of CPU for one
request. Evaluating rules in a worker process lets the service stop such a walk: past
the budget the worker is killed and replaced, and the caller gets `RuleTimeout`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

T = TypeVar("T")

_CONTEXT = multiprocessing.get_context("spawn")


class RuleTimeout(RuntimeError):
    """The rule did not finish within the budget (it probably never matches)."""


def _serve(connection: multiprocessing.connection.Connection) -> None:
    """The worker: call what it is sent, send back ("ok", result) or ("error", exception)."""
    connection.send(("ready", None))
    while True:
        try:
            function, kwargs = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("ok", function(**kwargs)))
        except Exception as exc:  # the caller re-raises it in its own process
            connection.send(("error", exc))


def call_each(target: Callable[..., Any], calls: list[dict[str, Any]]) -> list[Any]:
    """`target(**kwargs)` for each of `calls`, in the worker: each call's result, or
    the exception it raised (returned, not raised: one bad rule fails only its own)."""
    outcomes: list[Any] = []
    for kwargs in calls:
        try:
            outcomes.append(target(**kwargs))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


# Starting a worker (a fresh interpreter) is not part of any rule's budget.
_STARTUP_SECONDS = 60.0


async def _readable(connection: multiprocessing.connection.Connection, timeout: float) -> None:
    """Wait until `connection` has something to read; TimeoutError after `timeout`."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(connection.fileno(), wake)
    try:
        async with asyncio.timeout(timeout):  # not wait_for: it can lose a cancellation
            await ready
    finally:
        loop.remove_reader(connection.fileno())


class RuleSandbox:
    def __init__(self, budget_seconds: float = 2.0) -> None:
        self.budget_seconds = budget_seconds
        self._lock = asyncio.Lock()
        self._process: BaseProcess | None = None
        self._connection: multiprocessing.connection.Connection | None = None

    async def _worker(self) -> multiprocessing.connection.Connection:
        if self._process is not None and self._process.is_alive() and self._connection:
            return self._connection
        self._discard_worker()
        parent, child = _CONTEXT.Pipe()
        process = _CONTEXT.Process(target=_serve, args=(child,), name="rule-sandbox", daemon=True)
        process.start()
        child.close()
        self._process, self._connection = process, parent
        await _readable(parent, _STARTUP_SECONDS)
        parent.recv()  # the worker's ("ready", None)
        return parent

    def _discard_worker(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(timeout=5)
        self._process = self._connection = None

    async def run(self, function: Callable[..., T], **kwargs: Any) -> T:
        """`function(**kwargs)` in the worker (a module-level function and picklable args)."""
        async with self._lock:
            connection = await self._worker()
            connection.send((function, kwargs))
            try:
                await _readable(connection, self.budget_seconds)
            except TimeoutError:
                self._discard_worker()
                raise RuleTimeout(
                    f"no result within {self.budget_seconds:g}s; the rule probably never matches"
                ) from None
            outcome, value = connection.recv()
        if outcome == "error":
            raise value
        result: T = value
        return result

    async def run_each(
        self, function: Callable[..., T], calls: list[dict[str, Any]]
    ) -> list[T | Exception]:
        """`function(**kwargs)` for each of `calls`: its result, or the exception it
        raised (`RuleTimeout` for one that outlasts the budget).

        All of them go to the worker in one message, under one budget: a pipe round trip
        and a wake-up of each process per call cost more than the rules themselves. If
        they do not finish within the budget together, each is run again on its own, so
        only the slow rule times out."""
        if len(calls) == 1:
            try:
                return [await self.run(function, **calls[0])]
            except Exception as exc:
                return [exc]
        try:
            outcomes: list[T | Exception] = await self.run(call_each, target=function, calls=calls)
        except RuleTimeout:
            outcomes = []
            for kwargs in calls:
                try:
                    outcomes.append(await self.run(function, **kwargs))
                except Exception as exc:
                    outcomes.append(exc)
        return outcomes

    def close(self) -> None:
        self._discard_worker()
