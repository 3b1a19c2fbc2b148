"""The task API's scenarios (list, search, create, complete), each against its baseline
and its floors (bench/scenarios/floor.py: the same SQL behind a bare ASGI app and behind
a bare FastAPI app).

Each scenario alternates the sides' phases (API, floors, baseline, baseline, floors in
reverse, API) so that drift in the machine's load hits all alike.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from apps.backend.schemas import TaskQuery
from bench.client import Api, http_request, sql_phase
from bench.harness.stats import Sample
from bench.scenarios.sql_baseline import sql_complete, sql_create, sql_list
from bench.scenarios.task_data import WORDS, open_task_ids

LIST_QUERY = {"status": "open", "priority": "high", "sort": "due_at", "limit": "50"}
SEARCH_QUERY = {"q": "budget review", "limit": "20"}


@dataclass
class Scenario:
    name: str
    api: Sample
    base: Sample
    floors: dict[str, Sample] = field(default_factory=dict)  # by floor name, see Plan


@dataclass
class Plan:
    concurrency: int
    seconds: float
    api: Api
    url: str
    # The same requests served by the floors (bench/scenarios/floor.py), by name.
    floors: dict[str, Api] = field(default_factory=dict)


Phase = Callable[[float], Awaitable[Sample]]


async def alternate(
    plan: Plan,
    name: str,
    api_phase: Callable[[Api, float], Awaitable[Sample]],
    sql_phase_: Phase,
) -> Scenario:
    """API, floors, baseline, baseline, floors reversed, API: each side gets half the
    time in two phases, and the order around the middle evens out drift."""
    half = plan.seconds / 2

    def floor_phase(server: Api) -> Phase:
        async def phase(seconds: float) -> Sample:
            async with floor_pool(server):
                return await api_phase(server, seconds)

        return phase

    sides = [
        ("API", lambda s: api_phase(plan.api, s)),
        *((floor, floor_phase(server)) for floor, server in plan.floors.items()),
        ("SQL", sql_phase_),
    ]
    parts: dict[str, list[Sample]] = {side: [] for side, _ in sides}
    for side, phase in [*sides, *reversed(sides)]:
        parts[side].append(await phase(half))
    merged = {side: Sample.merge(samples) for side, samples in parts.items()}
    api, base = merged.pop("API"), merged.pop("SQL")
    return Scenario(name, api, base, merged)


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


@asynccontextmanager
async def floor_pool(floor: Api) -> AsyncIterator[None]:
    """The floor's connections, for one phase (bench/scenarios/floor.py)."""
    if await floor.status("POST", "/floor/pool") != 200:
        raise RuntimeError("the floor did not connect its pool")
    try:
        yield
    finally:
        await floor.status("DELETE", "/floor/pool")


async def run_scenarios(plan: Plan, scenarios: Sequence[str]) -> list[Scenario]:
    c, api, token = plan.concurrency, plan.api, plan.api.token
    sides = 2 + len(plan.floors)
    results: list[Scenario] = []

    list_target = f"/api/v1/tasks?{urlencode(LIST_QUERY)}"
    search_target = f"/api/v1/tasks?{urlencode(SEARCH_QUERY)}"
    list_raw = http_request("GET", list_target, token)
    search_raw = http_request("GET", search_target, token)
    list_sql = sql_list(TaskQuery.model_validate({**LIST_QUERY, "priority": ["high"]}))
    search_sql = sql_list(TaskQuery.model_validate(SEARCH_QUERY))

    # Warm up every side (the servers' pools, caches and code paths) before measuring.
    await api.phase(c, min(2.0, plan.seconds), lambda: list_raw, 200)
    await api.phase(c, min(1.0, plan.seconds), lambda: search_raw, 200)
    for floor in plan.floors.values():
        async with floor_pool(floor):
            await floor.phase(c, min(2.0, plan.seconds), lambda: list_raw, 200)
            await floor.phase(c, min(1.0, plan.seconds), lambda: search_raw, 200)
    await sql_phase(plan.url, c, min(1.0, plan.seconds), list_sql, api.meter)

    if "list" in scenarios:
        results.append(
            await alternate(
                plan,
                "list",
                lambda server, s: server.phase(c, s, lambda: list_raw, 200),
                lambda s: sql_phase(plan.url, c, s, list_sql, api.meter),
            )
        )
    if "search" in scenarios:
        results.append(
            await alternate(
                plan,
                "search",
                lambda server, s: server.phase(c, s, lambda: search_raw, 200),
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
                lambda server, s: server.phase(c, s, lambda: create_raw, 201),
                lambda s: sql_phase(plan.url, c, s, sql_create(body), api.meter),
            )
        )
    if "complete" in scenarios:
        # Each phase gets its own share of the user's open tasks (seeded and created).
        ids = open_task_ids(plan.url)
        quota = len(ids) // (2 * sides)
        phases = iter(ids[i * quota : (i + 1) * quota] for i in range(2 * sides))

        def api_complete(server: Api, s: float) -> Awaitable[Sample]:
            take = id_dispenser(next(phases), quota)

            def next_request() -> bytes | None:
                task_id = take()
                if task_id is None:
                    return None
                return http_request("POST", f"/api/v1/tasks/{task_id}/complete", token)

            return server.phase(c, s, next_request, 200)

        def base_complete(s: float) -> Awaitable[Sample]:
            return sql_phase(
                plan.url, c, s, sql_complete(id_dispenser(next(phases), quota)), api.meter
            )

        scenario = await alternate(plan, "complete", api_complete, base_complete)
        for side in (scenario.api, scenario.base, *scenario.floors.values()):
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
