"""Closed-loop load: a fixed number of workers, each repeating one operation, timed.

Errors and slow requests are counted, not raised: a phase always yields a `Sample`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from bench.harness.procstat import CpuMeter
from bench.harness.stats import Sample

REQUEST_TIMEOUT = 60.0  # seconds; a request slower than this counts as an error


async def closed_loop(
    concurrency: int,
    seconds: float,
    open_worker: Callable[[], Awaitable[Any]],
    close_worker: Callable[[Any], Awaitable[None]],
    operation: Callable[[Any], Awaitable[bool | None]],
    meter: CpuMeter,
) -> Sample:
    """`concurrency` workers each repeat `operation` until `seconds` have passed.

    `operation` returns True (success), False (an error response) or None (nothing left
    to do: the worker stops). Workers get their connection before the clock starts, and
    `meter` is read when the clock starts and stops.
    """
    resources = [await open_worker() for _ in range(concurrency)]
    sample = Sample()

    async def worker(resource: Any) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    outcome = await operation(resource)
            except TimeoutError:
                sample.errors += 1
                sample.notes.append(f"a request took over {REQUEST_TIMEOUT:.0f}s")
                return  # the connection is in an unknown state: stop this worker
            except (psycopg.Error, OSError, asyncio.IncompleteReadError) as exc:
                sample.errors += 1
                sample.notes.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            if outcome is None:
                return
            if outcome:
                sample.latencies.append(time.perf_counter() - started)
            else:
                sample.errors += 1

    before = meter.read()
    started = time.perf_counter()
    deadline = started + seconds
    try:
        await asyncio.gather(*(worker(resource) for resource in resources))
        sample.seconds = time.perf_counter() - started
        after = meter.read()
        sample.cpu = {process: after[process] - before[process] for process in after}
    finally:
        for resource in resources:
            await close_worker(resource)
    return sample
