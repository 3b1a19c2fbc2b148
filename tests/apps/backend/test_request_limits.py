"""Request size limits on a real uvicorn process running the real backend (the image's
`--http` protocol included): one request must not be able to take a pod's memory.

The bodies and heads are sent over raw sockets, the way an attacker would: a client
library would refuse or reshape some of them.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.apps.backend.conftest import APP_TOKEN, JWT_SECRET, bearer
from tests.apps.shared.uvicorn_process import UvicornProcess

BODY_LIMIT = 64 * 1024
HEADER_LIMIT = 16 * 1024
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(module_database_url: str) -> Iterator[UvicornProcess]:
    process = UvicornProcess(
        "apps.backend.main:app",
        {
            "DATABASE_URL": module_database_url,
            "AUTH_JWT_SECRET": JWT_SECRET,
            "APP_API_TOKEN": APP_TOKEN,
            "APP_ENV": "test",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_SIZE": "2",
            "DAPR_SIDECAR_REQUIRED": "false",
            "HTTP_MAX_BODY_BYTES": str(BODY_LIMIT),
            "HTTP_MAX_HEADER_BYTES": str(HEADER_LIMIT),
        },
    )
    try:
        process.wait_ready()
        yield process
    finally:
        process.close()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _exchange(port: int, head: bytes, body_chunks: Iterator[bytes] | None = None) -> bytes:
    """Send `head` then `body_chunks` until the server stops reading; return its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(head)
            for chunk in body_chunks or iter(()):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what we want to read
        sock.settimeout(10)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def _status_and_json(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head, "no answer"
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def _stream(total: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // piece):
        yield b"x" * piece


def test_a_64_mib_body_without_token_is_refused_413_without_being_read(
    server: UvicornProcess,
) -> None:
    before = _rss_bytes(server.process.pid)
    started = time.monotonic()
    answer = _exchange(
        server.port,
        b"POST /api/v1/tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % (64 * MIB),
        _stream(64 * MIB),
    )
    status, body = _status_and_json(answer)
    assert status == 413
    assert body["detail"] == [
        {
            "loc": ["body"],
            "msg": f"request body is larger than {BODY_LIMIT} bytes",
            "type": "request_too_large",
        }
    ]
    assert b"connection: close" in answer.lower()
    assert time.monotonic() - started < 5
    assert _rss_bytes(server.process.pid) - before < 16 * MIB
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_chunked_body_over_the_limit_is_cut_off_413(server: UvicornProcess) -> None:
    """No Content-Length to refuse up front: the count stops the body as it arrives."""
    token = bearer("alice")["Authorization"].encode()
    chunk = b"x" * 8192
    frames = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4096))  # 32 MiB
    before = _rss_bytes(server.process.pid)
    answer = _exchange(
        server.port,
        b"POST /api/v1/tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"authorization: " + token + b"\r\ntransfer-encoding: chunked\r\n\r\n",
        frames,
    )
    status, body = _status_and_json(answer)
    assert status == 413
    assert body["detail"][0]["type"] == "request_too_large"  # type: ignore[index]
    assert _rss_bytes(server.process.pid) - before < 16 * MIB


def test_a_body_under_the_limit_still_works(server: UvicornProcess) -> None:
    title = "y" * 200
    response = httpx.post(
        f"{server.url}/api/v1/tasks", json={"title": title}, headers=bearer("alice"), timeout=10
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == title


def test_an_8_mb_authorization_header_is_refused_431(server: UvicornProcess) -> None:
    before = _rss_bytes(server.process.pid)
    answer = _exchange(
        server.port,
        b"GET /api/v1/tasks HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ",
        _stream(8 * MIB),
    )
    status, body = _status_and_json(answer)
    assert status == 431
    assert body["detail"][0]["type"] == "headers_too_large"  # type: ignore[index]
    assert _rss_bytes(server.process.pid) - before < 16 * MIB
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_heads_under_the_limit_pass_on_one_keep_alive_connection(server: UvicornProcess) -> None:
    """Each request on a connection has its own budget: many requests, each under it."""
    padding = "p" * (HEADER_LIMIT // 2)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(5):
            response = client.get(
                "/api/v1/tasks", headers={**bearer("alice"), "x-padding": padding}
            )
            assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 60_000 + b"]" * 60_000,
        b'{"a":' * 30_000 + b"1" + b"}" * 30_000,
        b'{"title": "' + b"\\ud800" * 5000 + b'"}',
        b'{"title": "x", "title": "y", "priority": 1e999999}',
        b"\xff\xfe{not json",
    ],
    ids=["nested-arrays", "nested-objects", "lone-surrogates", "huge-exponent", "bad-bytes"],
)
def test_pathological_json_gets_a_4xx(server: UvicornProcess, payload: bytes) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/tasks",
        content=payload,
        headers={**bearer("alice"), "content-type": "application/json"},
        timeout=10,
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
