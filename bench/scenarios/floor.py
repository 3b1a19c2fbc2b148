"""The floors the task API is measured against: the same SQL behind a minimal server.

The task API's four benchmarked requests (a list page, a search page, create, complete)
answered with no framework: the SQL the API sends, compiled from its own statements
(`apps.backend.store`), through the same driver (psycopg 3, a pool of as many
connections), serialised with pydantic-core's `to_json` (the Rust serialiser FastAPI
and the API use too). Served two ways, each by the same uvicorn setup as the API:

* `bare_app`: a plain ASGI callable, the floor of any Python server on this SQL;
* `fastapi_app`: the same handlers as routes of a bare FastAPI app (no middleware, no
  dependencies: each takes the `Request`), what the framework alone adds to that floor.

What is left of the API's cost above `fastapi_app` is the service's own code: its
middleware (request id, metrics, body limit, request log), dependencies (auth, session),
validation of the query and body, SQLAlchemy, the event's schema check.

Nothing is validated beyond what the bench sends (it is a floor, not a service): the
token is checked once per distinct header (as the API caches verified tokens), the
query string is read for the values the SQL takes, the body of a create is trusted.

    uvicorn bench.scenarios.floor:bare_app     (or :fastapi_app)

configured like the API by DATABASE_URL, AUTH_JWT_SECRET and DB_POOL_SIZE. Its pool is
connected by `POST /floor/pool` and closed by `DELETE /floor/pool` (around each phase).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import jwt
import pydantic_core
from fastapi import FastAPI, Request, Response
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from apps.backend.schemas import TaskQuery
from apps.backend.store.queries import task_by_id_select, task_list_params, task_list_statement
from apps.backend.store.writes import COMPLETE_TASK, CREATE_TASK
from apps.contracts import events
from apps.shared.events.envelope import new_envelope
from bench.scenarios.sql_baseline import compiled

Answer = tuple[int, bytes]
PREFIX = "/api/v1/tasks"


class Floor:
    """The handlers, over one connection pool; framework-neutral (bytes in, bytes out)."""

    def __init__(self, url: str, secret: str, pool_size: int) -> None:
        self.url, self.pool_size = url, pool_size
        self.pool: AsyncConnectionPool[Any] | None = None
        self.secret = secret
        self.users: dict[str, str] = {}  # verified Authorization header -> subject
        self.list_sql: dict[tuple[str, ...], str] = {}  # query shape -> SQL text
        self.by_id, _ = compiled(
            task_by_id_select(for_update=True), {"task_id": uuid.uuid4(), "user_id": ""}
        )
        dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]
        self.create_sql = str(CREATE_TASK.compile(dialect=dialect))
        self.complete_sql = str(COMPLETE_TASK.compile(dialect=dialect))

    def user(self, authorization: str | None) -> str | None:
        if authorization is None:
            return None
        subject = self.users.get(authorization)
        if subject is None:
            try:
                claims = jwt.decode(authorization.removeprefix("Bearer "), self.secret, ["HS256"])
            except jwt.InvalidTokenError:
                return None
            subject = self.users[authorization] = str(claims["sub"])
        return subject

    async def open_pool(self) -> None:
        """Connect the pool (POST /floor/pool): before a phase, like the baseline's
        connections, so that the database's connection limit holds the API's pool, one
        floor's and the baseline's, never all at once."""
        if self.pool is None:
            # The same session settings as the API's engine (apps/shared/db.py), and
            # like the API, one statement is its own transaction (autocommit) except
            # in complete, which reads the task locked and changes it in one.
            self.pool = AsyncConnectionPool(
                self.url,
                min_size=self.pool_size,
                max_size=self.pool_size,
                kwargs={"options": "-c timezone=UTC", "autocommit": True},
                open=False,
            )
            await self.pool.open(wait=True)

    async def close_pool(self) -> None:
        """Close the pool (DELETE /floor/pool), after a phase."""
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        if self.pool is None:
            raise RuntimeError("the floor's pool is closed: POST /floor/pool first")
        return self.pool.connection()

    async def list_page(self, user: str, query_string: str) -> Answer:
        pairs = parse_qsl(query_string)
        shape = tuple(sorted({name for name, _ in pairs} | {str(len(pairs))}))
        text = self.list_sql.get(shape)
        params: dict[str, Any]
        if text is None:  # first request of this shape: the API's statement, compiled
            query = TaskQuery.model_validate(_query_fields(pairs))
            text, expected = compiled(
                task_list_statement(query), task_list_params(user_id=user, query=query)
            )
            if set(expected) != set(_list_params(pairs, user)):
                raise ValueError(f"the floor cannot fill {sorted(expected)} from {query_string}")
            self.list_sql[shape] = text
        params = _list_params(pairs, user)
        async with self.connection() as connection:
            cursor = await connection.execute(text, params)
            names = [column.name for column in cursor.description or ()]
            rows = await cursor.fetchall()
        total = 0
        items = []
        for row in rows:
            task = dict(zip(names, row, strict=True))
            total = task.pop("total")
            items.append(_document(task))
        return 200, pydantic_core.to_json({"items": items, "total": total})

    async def create(self, user: str, body: bytes) -> Answer:
        data = pydantic_core.from_json(body)
        task_id, now = uuid.uuid4(), datetime.now(UTC)
        due_at = datetime.fromisoformat(data["due_at"])
        minutes = [reminder["before_minutes"] for reminder in data["reminders"]]
        reminders = [
            {
                "before_minutes": m,
                "at": None,
                "id": uuid.uuid4(),
                "remind_at": due_at - timedelta(minutes=m),
                "fired_at": None,
            }
            for m in minutes
        ]
        task = {
            "title": data["title"],
            "description": data["description"],
            "priority": data["priority"],
            "due_at": due_at,
            "timezone": "UTC",
            "id": task_id,
            "tags": sorted(set(data["tags"])),
            "reminders": reminders,
            "recurrence": None,
            "completed": False,
            "completed_at": None,
            "series_id": None,
            "created_at": now,
            "updated_at": now,
        }
        params = {
            **{f"task_{name}": task[name] for name in _TASK_COLUMNS},
            "task_user_id": user,
            "task_rrule": None,
            "task_recurrence_anchor": None,
            "task_previous_task_id": None,
            "tags": task["tags"],
            **{
                f"reminder_{name}": [reminder[name] for reminder in reminders]
                for name in ("id", "before_minutes", "at", "remind_at", "fired_at")
            },
            **_event_params(events.TASK_CREATED, task, user, now),
        }
        async with self.connection() as connection:
            await connection.execute(self.create_sql, params)
        return 201, pydantic_core.to_json(task)

    async def complete(self, user: str, task_id: str) -> Answer:
        key = uuid.UUID(task_id)
        async with self.connection() as connection, connection.transaction():
            cursor = await connection.execute(self.by_id, {"task_id": key, "user_id": user})
            names = [column.name for column in cursor.description or ()]
            row = await cursor.fetchone()
            if row is None:
                return 404, b'{"detail":[]}'
            task = dict(zip(names, row, strict=True))
            if not task["completed"]:
                now = datetime.now(UTC)
                for reminder in task["reminders"] or ():
                    if reminder["fired_at"] is None:
                        reminder["remind_at"] = None
                task.update(completed=True, completed_at=now, updated_at=now)
                document = _document(task)
                params = {
                    "task_key": key,
                    "completed_at": now,
                    **_event_params(events.TASK_COMPLETED, document, user, now),
                }
                await connection.execute(self.complete_sql, params)
            else:
                document = _document(task)
        return 200, pydantic_core.to_json(document)

    async def answer(
        self, method: str, path: str, query: str, auth: str | None, body: bytes
    ) -> Answer:
        if path == "/readyz":
            return 200, b'{"status":"ok"}'
        if path == "/floor/pool":
            await (self.open_pool() if method == "POST" else self.close_pool())
            return 200, b"{}"
        user = self.user(auth)
        if user is None:
            return 401, b'{"detail":[]}'
        if path == PREFIX:
            if method == "GET":
                return await self.list_page(user, query)
            if method == "POST":
                return await self.create(user, body)
        elif method == "POST" and path.startswith(PREFIX + "/") and path.endswith("/complete"):
            return await self.complete(user, path[len(PREFIX) + 1 : -len("/complete")])
        return 404, b'{"detail":[]}'


_TASK_COLUMNS = (
    "title",
    "description",
    "priority",
    "due_at",
    "timezone",
    "id",
    "completed",
    "series_id",
    "created_at",
    "updated_at",
)


def _query_fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in ("priority", "tag"):
            fields.setdefault(name, []).append(value)
        else:
            fields[name] = value
    return fields


def _list_params(pairs: list[tuple[str, str]], user: str) -> dict[str, Any]:
    """The SQL's values for the bench's lists and searches (status, priority, q, paging)."""
    params: dict[str, Any] = {"user_id": user, "limit": 50, "offset": 0}
    for name, value in pairs:
        if name in ("limit", "offset"):
            params[name] = int(value)
        elif name == "priority":
            params.setdefault("priority", []).append(value)
        elif name == "q":
            params["q"] = value
    if "q" in params:
        params["param_1"] = params["param_2"] = "english"
    for index, value in enumerate(params.pop("priority", [])):
        params[f"priority_{index + 1}"] = value
    return params


def _document(task: dict[str, Any]) -> dict[str, Any]:
    """A task row as the API shows it."""
    rrule, anchor = task.pop("rrule"), task.pop("recurrence_anchor")
    task["recurrence"] = None if rrule is None else {"rrule": rrule, "anchor": anchor}
    task["reminders"] = task["reminders"] or []
    return task


def _event_params(
    event_type: str, task: dict[str, Any], user: str, now: datetime
) -> dict[str, Any]:
    data = pydantic_core.to_jsonable_python({**task, "user_id": user})
    envelope = new_envelope(event_type, data)
    return {
        "event_event_id": uuid.UUID(envelope["event_id"]),
        "event_event_type": event_type,
        "event_topic": events.TOPIC_OF[event_type],
        "event_partition_key": str(task["id"]),
        "event_payload": Jsonb(envelope),
        "event_created_at": now,
        "event_attempts": 0,
        "event_next_attempt_at": now,
        "event_traceparent": None,
        "event_tracestate": None,
    }


def _floor_from_environment() -> Floor:
    return Floor(
        os.environ["DATABASE_URL"],
        os.environ["AUTH_JWT_SECRET"],
        int(os.environ.get("DB_POOL_SIZE", "10")),
    )


_HEADERS = [(b"content-type", b"application/json")]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _bare(floor: Floor) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await floor.close_pool()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        auth = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
        body = b""
        if scope["method"] == "POST":  # the floor's one request with a body: a create
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
        status, content = await floor.answer(
            scope["method"], scope["path"], scope["query_string"].decode("latin-1"), auth, body
        )
        headers = [*_HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return app


def _fastapi(floor: Floor) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await floor.close_pool()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    async def answer(request: Request) -> Response:
        body = await request.body() if request.method == "POST" else b""
        status, content = await floor.answer(
            request.method,
            request.url.path,
            request.scope["query_string"].decode("latin-1"),
            request.headers.get("authorization"),
            body,
        )
        return Response(content, status, media_type="application/json")

    app.add_api_route("/readyz", answer, methods=["GET"])
    app.add_api_route("/floor/pool", answer, methods=["POST", "DELETE"])
    app.add_api_route(PREFIX, answer, methods=["GET", "POST"])
    app.add_api_route(PREFIX + "/{task_id}/complete", answer, methods=["POST"])
    return app


class _Lazy:
    """The ASGI app built on first call, so importing this module reads no environment."""

    def __init__(self, build: Callable[[Floor], Any]) -> None:
        self.build = build
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            self.app = self.build(_floor_from_environment())
        await self.app(scope, receive, send)


bare_app = _Lazy(_bare)
fastapi_app = _Lazy(_fastapi)
