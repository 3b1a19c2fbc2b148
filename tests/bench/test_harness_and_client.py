"""The benchmarks' closed loop, HTTP client and command lines, without a database.

The benchmarks themselves are run by hand (they take minutes); these catch the parts
a refactoring can break silently: what a phase counts, how an answer is framed, and the
defaults `--quick` picks.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlencode

from apps.backend.store.queries import task_list_params, task_list_statement
from bench import api, pipeline
from bench.client import HttpConnection, http_request
from bench.harness.load import closed_loop
from bench.harness.procstat import CpuMeter
from bench.scenarios import floor
from bench.scenarios.sql_baseline import compiled
from bench.scenarios.task_api import LIST_QUERY, SEARCH_QUERY
from bench.scenarios.task_sizes import task_query


def test_a_closed_loop_counts_successes_errors_and_stops_when_work_runs_out() -> None:
    outcomes: list[bool | OSError] = [True, False, True, OSError("reset"), True]
    pending = iter(outcomes)

    async def operation(_worker: object) -> bool | None:
        await asyncio.sleep(0)
        outcome = next(pending, None)
        if isinstance(outcome, OSError):
            raise outcome
        return outcome

    async def nothing(_worker: object = None) -> None:
        return None

    sample = asyncio.run(closed_loop(1, 30.0, nothing, nothing, operation, CpuMeter()))
    # The error stopped the only worker: the last True was never asked for.
    assert (sample.requests, sample.errors) == (2, 2)
    assert sample.notes == ["OSError: reset"]
    assert set(sample.cpu) == {"client"}
    assert sample.seconds < 30.0


def test_the_http_client_frames_answers_by_content_length_on_one_connection() -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for body in (b'{"ok":true}', b""):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = next((int(x[15:]) for x in lines if x.startswith(b"Content-Length:")), 0)
            received.append(head + (await reader.readexactly(length) if length else b""))
            status = b"200 OK" if body else b"204 No Content"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            )
            await writer.drain()
        writer.close()

    async def exchange() -> list[tuple[int, bytes]]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            connection = await HttpConnection.open(port)
            try:
                return [
                    await connection.request(http_request("POST", "/t", "tok", b"{}")),
                    await connection.request(http_request("GET", "/t?x=1", "tok")),
                ]
            finally:
                await connection.close()
        finally:
            server.close()
            await server.wait_closed()

    answers = asyncio.run(exchange())
    assert answers == [(200, b'{"ok":true}'), (204, b"")]
    assert received[0].startswith(b"POST /t HTTP/1.1\r\n")
    assert b"Authorization: Bearer tok\r\n" in received[0] and received[0].endswith(b"\r\n{}")
    assert received[1].startswith(b"GET /t?x=1 HTTP/1.1\r\n")


def test_quick_runs_are_small_and_short() -> None:
    api_args = api.parse_args(["--quick", "--concurrency", "8", "--scenarios", "list, create"])
    assert (api_args.tasks, api_args.seconds, api_args.pool_size) == (1_000, 1.0, 8)
    assert api_args.scenarios == ["list", "create"]

    pipeline_args = pipeline.parse_args(["--quick", "--skip", "reminders"])
    counts = (pipeline_args.completions, pipeline_args.open_completions, pipeline_args.reminders)
    assert counts == (300, 200, 500)
    assert pipeline_args.skip == {"reminders"}
    assert pipeline_args.replicas == {"backend": 1, "notification": 1, "recurring": 1}


def test_several_task_counts_ask_for_the_size_table() -> None:
    args = api.parse_args(["--tasks", "1000,10_000,100000"])
    assert (args.sizes, args.tasks) == ([1_000, 10_000, 100_000], 1_000)
    assert api.parse_args([]).sizes == [10_000]


def test_the_floor_fills_every_parameter_of_the_apis_list_and_search_statements() -> None:
    for query in (LIST_QUERY, SEARCH_QUERY):
        validated = task_query(query)
        _, expected = compiled(
            task_list_statement(validated), task_list_params(user_id="u", query=validated)
        )
        filled = floor._list_params(parse_qsl(urlencode(query)), "u")
        assert filled == {
            name: str(value) if name.startswith("priority") else value
            for name, value in expected.items()
        }
