"""A webhook call against receivers that misbehave, on real loopback sockets: it goes to
the address that was checked, keeps the name for Host and TLS, follows no redirect, and
is bounded in time and size."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from apps.notification.settings import NotificationServiceSettings
from apps.notification.targets import IPAddress, parse_target, resolve
from apps.notification.workers.outbound import new_client, post
from apps.notification.workers.webhooks import WebhookWorker
from tests.apps.local.probe_app import ProbeApp, ServerThread
from tests.apps.notification.receivers import RawServer, read_request, write_certificates
from tests.apps.notification.worker_harness import run_worker, seed_webhook

NAME = "hooks.example.test"


@pytest.fixture
def settings(notification_settings: NotificationServiceSettings) -> NotificationServiceSettings:
    return notification_settings.model_copy(
        update={"webhook_timeout_seconds": 1.0, "webhook_max_attempts": 1}
    )


@pytest.fixture
def probe() -> Iterator[tuple[ProbeApp, str]]:
    app = ProbeApp()
    server = ServerThread(app.app).start()
    try:
        yield app, f"http://127.0.0.1:{server.port}/hook"
    finally:
        server.stop()


@contextmanager
def _serve(handle: Any) -> Iterator[RawServer]:
    server = RawServer(handle).start()
    try:
        yield server
    finally:
        server.stop()


def _trickle(connection: socket.socket, server: RawServer) -> None:
    """Answer one byte every 0.25 s (the whole head would take 9.5 s): no single read
    waits long enough to trip a per-read timeout."""
    read_request(connection)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
        if server.stopping.wait(0.25):
            return
        connection.sendall(bytes([byte]))


def _endless_body(connection: socket.socket, server: RawServer) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
    block = b"x" * 65536
    while not server.stopping.is_set():
        connection.sendall(block)
        with server.lock:
            server.sent += len(block)


def _redirect(location: str, connection: socket.socket, server: RawServer) -> None:
    read_request(connection)
    connection.sendall(
        f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
    )


def test_a_trickling_receiver_is_cut_off_at_the_deadline(
    settings: NotificationServiceSettings, probe: tuple[ProbeApp, str]
) -> None:
    with _serve(_trickle) as trickling:
        database_url = settings.database_url.get_secret_value()
        slow = seed_webhook(
            database_url, user_id="slow", url=f"http://127.0.0.1:{trickling.port}/hook"
        )
        fine = seed_webhook(database_url, user_id="fine", url=probe[1])
        one_slot = settings.model_copy(update={"webhook_concurrency": 1})

        started = time.monotonic()
        rows = run_worker(
            one_slot,
            lambda rows: rows[slow].status == "failed" and rows[fine].status == "delivered",
            timeout=12,
        )
        elapsed = time.monotonic() - started

    assert rows[slow].last_error == "no answer within 1 s"
    assert trickling.connections == 1
    # The only slot was freed at the 1 s deadline, long before the answer would end.
    assert elapsed < 6, elapsed


def test_an_endless_answer_is_read_no_further_than_the_cap(
    settings: NotificationServiceSettings,
) -> None:
    with _serve(_endless_body) as endless:
        url = f"http://127.0.0.1:{endless.port}/hook"
        delivery = seed_webhook(settings.database_url.get_secret_value(), user_id="a", url=url)
        started = time.monotonic()
        rows = run_worker(settings, lambda rows: rows[delivery].status != "pending", timeout=8)
        elapsed = time.monotonic() - started

    # Delivered: the status was 200 and the body beyond 64 KiB was never waited for.
    assert rows[delivery].status == "delivered", rows[delivery]
    assert elapsed < 5, elapsed
    # What the receiver managed to push is bounded by socket buffers (a few MiB), not
    # by its Content-Length; reading on until the deadline would take far more.
    assert endless.sent < 64 * 1024 * 1024


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    settings: NotificationServiceSettings, probe: tuple[ProbeApp, str]
) -> None:
    elsewhere, elsewhere_url = probe
    with _serve(partial(_redirect, elsewhere_url)) as redirecting:
        url = f"http://127.0.0.1:{redirecting.port}/hook"
        delivery = seed_webhook(settings.database_url.get_secret_value(), user_id="a", url=url)
        rows = run_worker(settings, lambda rows: rows[delivery].status == "failed")

    assert rows[delivery].last_error == "answered 307"
    assert redirecting.connections == 1
    assert elsewhere.received == []


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`NAME` resolves to 127.0.0.2 the first time and to 127.0.0.1 ever after; each
    lookup of it is recorded. 127.0.0.2 counts as public here: it stands for the public
    address a rebinding name shows the check, 127.0.0.1 for the internal one it
    switches to."""
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (NAME, NAME.encode()):  # httpx's stack resolves bytes
            lookups.append(NAME)
            return real("127.0.0.2" if len(lookups) == 1 else "127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    def is_public(address: IPAddress) -> bool:
        return str(address) == "127.0.0.2"

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr("apps.notification.targets.is_public", is_public)
    return lookups


def test_the_call_connects_to_the_address_that_was_checked(
    settings: NotificationServiceSettings,
    rebinding_dns: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked, internal = ProbeApp(), ProbeApp()
    public_server = ServerThread(checked.app, host="127.0.0.2").start()
    internal_server = ServerThread(internal.app, port=public_server.port).start()
    # The test's "public" receiver listens on a free port, not on 80 or 443.
    monkeypatch.setattr("apps.notification.targets.PUBLIC_PORTS", frozenset({public_server.port}))
    try:
        url = f"http://{NAME}:{public_server.port}/hook"
        strict = settings.model_copy(update={"webhook_allow_private_targets": False})
        delivery = seed_webhook(strict.database_url.get_secret_value(), user_id="a", url=url)
        rows = run_worker(strict, lambda rows: rows[delivery].status != "pending")
    finally:
        public_server.stop()
        internal_server.stop()

    assert rows[delivery].status == "delivered", rows[delivery]
    assert rebinding_dns == [NAME]  # one resolution for the attempt, none by httpx
    (call,) = checked.calls("/hook")
    assert call.headers["host"] == f"{NAME}:{public_server.port}"
    assert internal.received == []


def _tls_receiver(calls: list[dict[str, str]]) -> FastAPI:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        calls.append({k.lower(): v for k, v in request.headers.items()})
        return Response(status_code=204)

    return app


@pytest.mark.parametrize("certified", [NAME, "someone-else.example.test"])
def test_https_verifies_the_certificate_against_the_name(
    settings: NotificationServiceSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    certified: str,
) -> None:
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: real("127.0.0.1" if host == NAME else host, *a, **k),
    )
    ca, cert, key = write_certificates(tmp_path, certified)
    calls: list[dict[str, str]] = []
    server = ServerThread(
        _tls_receiver(calls), ssl_certfile=str(cert), ssl_keyfile=str(key)
    ).start()
    try:
        url = f"https://{NAME}:{server.port}/hook"
        delivery = seed_webhook(settings.database_url.get_secret_value(), user_id="a", url=url)
        trusting = partial(WebhookWorker, tls=ssl.create_default_context(cafile=str(ca)))
        rows = run_worker(
            settings, lambda rows: rows[delivery].status != "pending", worker_factory=trusting
        )
    finally:
        server.stop()

    if certified == NAME:
        assert rows[delivery].status == "delivered", rows[delivery]
        assert [call["host"] for call in calls] == [f"{NAME}:{server.port}"]
    else:  # the certificate is checked against the name, not the address connected to
        assert rows[delivery].status == "failed"
        assert "CERTIFICATE_VERIFY_FAILED" in (rows[delivery].last_error or "")
        assert calls == []


def test_no_trace_context_leaves_with_a_webhook_call(probe: tuple[ProbeApp, str]) -> None:
    """With the httpx instrumentation on and a span current, the webhook POST carries no
    traceparent to the receiver; the same client's ordinary call does (the control)."""
    app, url = probe
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider())
    try:
        tracer = TracerProvider().get_tracer("probe")

        async def calls() -> None:
            target = parse_target(url, allow_private=True)
            resolved = await resolve(target, allow_private=True)
            async with new_client(timeout=2.0) as client:
                with tracer.start_as_current_span("reminder"):
                    deadline = asyncio.get_running_loop().time() + 2.0
                    status = await post(client, resolved, body=b"{}", headers={}, deadline=deadline)
                    assert status == 200
                    await client.get(url)  # the control: not a webhook call

        asyncio.run(calls())
    finally:
        instrumentor.uninstrument()
    webhook, control = app.received[-2:]
    assert webhook.method == "POST" and "traceparent" not in webhook.headers
    assert control.method == "GET" and "traceparent" in control.headers
