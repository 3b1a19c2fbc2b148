"""Scenario 1: completions of recurring tasks, completion → next occurrence committed.

"Readable" is when the next occurrence's row is committed: a watcher follows the
outbox's `task.created.v1` rows. Throughput closed-loop, latency open-loop at the target
rate and at 70% of the measured throughput, the database's own rate as the baseline,
CPU per completion by process and the time spent in each stage.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from apps.contracts.events import TASK_CREATED
from apps.local.system import make_token
from bench.harness.database import database_postmaster
from bench.harness.local_system import SystemCpu
from bench.harness.stats import percentile
from bench.scenarios.recurring_load import (
    USERS,
    Run,
    baseline,
    complete_closed_loop,
    complete_open_loop,
    seed_recurring,
)

# Two index scans, planned for each poll's values (never prepared: a generic plan for
# `id > $1` reads the whole outbox). Polled every 20 ms, a scan of the whole outbox cost
# the database more than the pipeline's own work.
WATCH = """
SELECT id, event_type, payload->'data'->>'series_id', payload->'data'->>'id'
FROM outbox WHERE id > %s
UNION ALL
SELECT id, event_type, payload->'data'->>'series_id', payload->'data'->>'id'
FROM outbox WHERE id = ANY(%s)
ORDER BY id
"""


class SuccessorWatcher:
    """Follows the outbox: the time each series' next occurrence was committed.

    Outbox ids are taken at insert and transactions commit in any order, so a cursor on
    the highest id seen would skip rows that commit late; ids below the cursor that were
    not seen yet are asked for again until they appear (or, rolled back, time out).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[str, float] = {}
        self._last_id = 0
        self._holes: dict[int, float] = {}
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            row = await (await conn.execute("SELECT coalesce(max(id), 0) FROM outbox")).fetchone()
            self._last_id = int(row[0]) if row else 0
            while not self._stop.is_set():
                rows = await (
                    await conn.execute(WATCH, (self._last_id, list(self._holes)), prepare=False)
                ).fetchall()
                now = time.perf_counter()
                for outbox_id, event_type, series_id, task_id in rows:
                    self._holes.pop(outbox_id, None)
                    if outbox_id > self._last_id:
                        for missing in range(self._last_id + 1, outbox_id):
                            self._holes[missing] = now
                        self._last_id = outbox_id
                    # A generated occurrence (a seeded task is its own series).
                    if event_type == TASK_CREATED and series_id != task_id:
                        self.seen.setdefault(series_id, now)
                self._holes = {i: t for i, t in self._holes.items() if now - t < 30.0}
                await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()


async def wait_for(watcher: SuccessorWatcher, ids: Sequence[str], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not all(task_id in watcher.seen for task_id in ids):
        if time.perf_counter() > deadline:
            missing = sum(1 for task_id in ids if task_id not in watcher.seen)
            raise RuntimeError(f"{missing} next occurrences never appeared")
        await asyncio.sleep(0.05)


def latencies(run: Run, watcher: SuccessorWatcher) -> list[float]:
    return sorted(watcher.seen[t] - started for t, started in run.started.items())


STAGES = """
SELECT EXTRACT(EPOCH FROM o.published_at - t.completed_at),
       EXTRACT(EPOCH FROM s.created_at - o.published_at)
FROM tasks t
JOIN outbox o ON o.partition_key = t.id::text AND o.event_type = 'task.completed.v1'
JOIN tasks s ON s.previous_task_id = t.id
WHERE t.id = ANY(%s) AND o.published_at IS NOT NULL
"""


def stage_breakdown(url: str, ids: Sequence[str]) -> str:
    """Where the time goes, from the rows' own timestamps (one clock, the machine's)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(STAGES, ([uuid.UUID(i) for i in ids],)).fetchall()
    relay = sorted(float(r[0]) for r in rows)
    onward = sorted(float(r[1]) for r in rows)
    return (
        f"  completed → published by the relay: p50 {fmt_ms(relay, 0.5).strip()} ms, "
        f"p95 {fmt_ms(relay, 0.95).strip()} ms\n"
        f"  published → next occurrence committed (broker, recurring, invocation, backend): "
        f"p50 {fmt_ms(onward, 0.5).strip()} ms, p95 {fmt_ms(onward, 0.95).strip()} ms"
    )


def fmt_ms(values: Sequence[float], fraction: float) -> str:
    return f"{percentile(values, fraction) * 1000:8.1f}"


async def completions(args: argparse.Namespace, url: str, state: dict[str, Any]) -> None:
    port = int(state["backend"].rsplit(":", 1)[1])
    tokens = [make_token(f"user-{n}", state["jwt_secret"]) for n in range(USERS)]
    n, m = args.completions, args.open_completions
    ids = seed_recurring(url, args.warmup + 2 * n + 2 * m)
    token_of = {task_id: tokens[index % USERS] for index, task_id in enumerate(ids)}
    cuts = [args.warmup, args.warmup + n, args.warmup + n + m, args.warmup + n + 2 * m]
    warm, closed, at_target, calm = (
        ids[: cuts[0]],
        ids[cuts[0] : cuts[1]],
        ids[cuts[1] : cuts[2]],
        ids[cuts[2] : cuts[3]],
    )
    base = ids[cuts[3] :]
    meter = SystemCpu(database_postmaster(url), state["pids"])

    watcher = SuccessorWatcher(url)
    watching = asyncio.create_task(watcher.run())
    try:
        await complete_closed_loop(port, token_of, warm, args.concurrency)
        await wait_for(watcher, warm, timeout=300)

        cpu_before, began = meter.read(), time.perf_counter()
        closed_run = await complete_closed_loop(port, token_of, closed, args.concurrency)
        await wait_for(watcher, closed, timeout=3600)
        ended = max(watcher.seen[t] for t in closed)
        cpu_after = meter.read()
        throughput = len(closed) / (ended - began)
        api_rate = len(closed) / (max(closed_run.started.values()) - began)

        target_run = await complete_open_loop(port, token_of, at_target, args.rate)
        await wait_for(watcher, at_target, timeout=3600)
        calm_rate = max(1.0, round(0.7 * throughput))
        calm_run = await complete_open_loop(port, token_of, calm, calm_rate)
        await wait_for(watcher, calm, timeout=3600)
    finally:
        watcher.stop()
        await watching
    base_rate = await baseline(url, base, args.concurrency)

    print()
    print("1. completions of recurring tasks (completion → next occurrence committed)")
    header = f"{'phase':<40} {'per s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}"
    print(header)
    print("-" * len(header))
    rows = [
        (f"closed loop, {n} at concurrency {args.concurrency}", throughput, closed_run),
        (f"open loop, {m} offered at {args.rate:g}/s", None, target_run),
        (f"open loop, {m} offered at {calm_rate:g}/s (70%)", None, calm_run),
    ]
    for label, rate, run in rows:
        lat = latencies(run, watcher)
        shown = f"{rate:7.0f}" if rate is not None else f"{'':>7}"
        print(
            f"{label:<40} {shown} {fmt_ms(lat, 0.5)} {fmt_ms(lat, 0.95)} {fmt_ms(lat, 0.99)} "
            f"{run.errors:>6}"
        )
    print(f"{'baseline: the same rows via psycopg':<40} {base_rate:7.0f}")
    print(
        f"end to end {throughput:.0f} completions/s = {throughput / base_rate:.0%} of the raw "
        f"database rate; {2 * throughput:.0f} pipeline events/s (completed + created); "
        f"the API alone accepted {api_rate:.0f} completions/s"
    )
    print()
    print("where the time goes — CPU per completion (closed loop), by process:")
    spent = {k: (cpu_after[k] - cpu_before[k]) * 1000 / len(closed) for k in cpu_after}
    for name, milliseconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {name:<24} {milliseconds:6.1f} ms")
    total = sum(spent.values())
    print(
        f"  {'total':<24} {total:6.1f} ms → at most {2000 / total:.0f} completions/s "
        f"on 2 idle cores"
    )
    print("where the time goes — stages (closed loop):")
    print(stage_breakdown(url, closed))
    print(f"stages (open loop at {calm_rate:g}/s):")
    print(stage_breakdown(url, calm))
