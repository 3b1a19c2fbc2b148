"""The benchmarks' clients: a cheap keep-alive HTTP/1.1 client for the API, and the
raw-SQL side's psycopg connections, both driven by the harness's closed loop."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.harness.load import closed_loop
from bench.harness.procstat import CpuMeter
from bench.harness.stats import Sample


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

    async def status(self, method: str, target: str) -> int:
        """The status of one request on a connection of its own."""
        connection = await HttpConnection.open(self.port)
        try:
            status, _ = await connection.request(http_request(method, target, self.token))
        finally:
            await connection.close()
        return status

    async def get_json(self, target: str) -> Any:
        connection = await HttpConnection.open(self.port)
        try:
            status, body = await connection.request(http_request("GET", target, self.token))
        finally:
            await connection.close()
        if status != 200:
            raise RuntimeError(f"GET {target} answered {status}: {body[:300]!r}")
        return json.loads(body)


SqlOperation = Callable[[psycopg.AsyncConnection[Any]], Awaitable[bool | None]]


def sql_phase(
    url: str, concurrency: int, seconds: float, operation: SqlOperation, meter: CpuMeter
) -> Awaitable[Sample]:
    async def open_worker() -> psycopg.AsyncConnection[Any]:
        # The same session settings as the API's engine (apps/shared/db.py).
        return await psycopg.AsyncConnection.connect(url, options="-c timezone=UTC")

    async def close_worker(connection: psycopg.AsyncConnection[Any]) -> None:
        await connection.close()

    return closed_loop(concurrency, seconds, open_worker, close_worker, operation, meter)
