"""How the cost of a list page and a search page grows with the user's tasks.

At each size, one request at a time (no queueing): the API's latency and the CPU time a
request costs its server and the database, next to the same SQL sent straight through
psycopg (the part of the latency the database accounts for). A list page is read in
index order and stops after the page, so it should stay flat; a search ranks every
match, so it grows with the matches, and should grow no faster than they do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import psycopg

from apps.backend.schemas import TaskQuery
from apps.backend.store.queries import task_list_params, task_list_statement
from bench.client import Api, http_request, sql_phase
from bench.harness.stats import Sample
from bench.scenarios.sql_baseline import compiled, sql_list
from bench.scenarios.task_api import LIST_QUERY, SEARCH_QUERY, constant
from bench.scenarios.task_data import USER

QUERIES = {"list": LIST_QUERY, "search": SEARCH_QUERY}


def task_query(query: dict[str, str]) -> TaskQuery:
    return TaskQuery.model_validate(
        {**query, **({"priority": [query["priority"]]} if "priority" in query else {})}
    )


@dataclass
class SizeRow:
    tasks: int
    name: str
    matches: int
    api: Sample
    sql: Sample


async def measure_sizes(api: Api, url: str, tasks: int, seconds: float) -> list[SizeRow]:
    rows = []
    for name, query in QUERIES.items():
        target = f"/api/v1/tasks?{urlencode(query)}"
        page = await api.get_json(target)
        raw = http_request("GET", target, api.token)
        operation = sql_list(task_query(query))
        await api.phase(1, min(1.0, seconds), constant(raw), 200)  # warm-up
        await sql_phase(url, 1, min(1.0, seconds), operation, api.meter)
        sample = await api.phase(1, seconds, constant(raw), 200)
        sql = await sql_phase(url, 1, seconds, operation, api.meter)
        rows.append(SizeRow(tasks, name, page["total"], sample, sql))
    return rows


def explain_search(url: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the search page's statement, indented."""
    query = task_query(SEARCH_QUERY)
    text, params = compiled(task_list_statement(query), task_list_params(user_id=USER, query=query))
    with psycopg.connect(url, options="-c timezone=UTC") as connection:
        for _ in range(3):  # warm the cache, as the timed requests had
            connection.execute(text, params).fetchall()
        plan = connection.execute(f"EXPLAIN (ANALYZE, BUFFERS) {text}", params).fetchall()
    return "EXPLAIN ANALYZE of the search page:\n" + "\n".join(f"    {row[0]}" for row in plan)


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def size_report(rows: Sequence[SizeRow]) -> None:
    print("One request at a time, by the measured user's number of tasks")
    header = (
        f"{'query':<7} {'tasks':>7} {'matches':>7} | {'API p50':>7} {'p95':>6} "
        f"{'server':>6} {'pg':>6} | {'SQL p50':>7} {'pg':>6} | {'µs/match':>8}"
    )
    print(header)
    print(f"{'':<25}|{'ms':^30}|{'ms':^16}| SQL p50")
    print("-" * len(header))
    for row in rows:
        sql_p50 = row.sql.latency_ms(0.5)
        per_match = sql_p50 * 1000 / row.matches if row.matches else math.nan
        cells: list[Any] = [
            f"{row.name:<7} {row.tasks:>7} {row.matches:>7} |",
            _fmt(row.api.latency_ms(0.5), "7.2f"),
            _fmt(row.api.latency_ms(0.95), "6.2f"),
            _fmt(row.api.cpu_ms_per_request("server"), "6.2f"),
            _fmt(row.api.cpu_ms_per_request("postgres"), "6.2f") + " |",
            _fmt(sql_p50, "7.2f"),
            _fmt(row.sql.cpu_ms_per_request("postgres"), "6.2f") + " |",
            _fmt(per_match, "8.2f"),
        ]
        print(" ".join(cells))
    print(
        "server, pg: CPU ms per request of the API server and of PostgreSQL; SQL: the "
        "same statement through psycopg alone"
    )
