"""`/readyz` needs the database and the Dapr sidecar; `/healthz` needs neither.

Each service runs for real (its lifespan, a fresh PostgreSQL database) and is pointed,
through the SDK's `DAPR_*` variables, at one of: the stand-in sidecar (the protocol
`todo-local` and the e2e tests use), a port nobody listens on (no sidecar injected), a
server answering 500 as daprd does while not ready, or a socket that never answers.
"""

from __future__ import annotations

import json
import socket
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from apps.backend.main import create_app as backend_app
from apps.backend.settings import BackendSettings
from apps.local.ports import free_port
from apps.local.standin import MeshThread, SidecarSpec
from apps.notification.main import create_app as notification_app
from apps.notification.settings import NotificationServiceSettings
from apps.recurring.main import create_app as recurring_app
from apps.recurring.settings import RecurringSettings
from apps.shared.service import open_database, service_app
from apps.shared.settings import AuthSettings, load_settings
from apps.shared.sidecar_health import SidecarProbe
from tests.apps.local.conftest import fast_config
from tests.apps.local.probe_app import ServerThread

SERVICES: dict[str, tuple[Callable[[Any], FastAPI], type[AuthSettings]]] = {
    "backend": (backend_app, BackendSettings),
    "notification": (notification_app, NotificationServiceSettings),
    "recurring": (recurring_app, RecurringSettings),
}
SECRET = "readiness-test-secret-long-enough-for-hs256"
NOT_READY_SIDECAR = {"status": "not ready", "failing": ["dapr-sidecar"]}


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def start(
    service: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., TestClient]:
    """`start(port, **settings)`: the service, its sidecar expected on 127.0.0.1:`port`."""
    monkeypatch.setenv("OUTBOX_RELAY_ENABLED", "false")  # the relay would publish

    def build(port: int, **overrides: Any) -> TestClient:
        monkeypatch.delenv("DAPR_HTTP_ENDPOINT", raising=False)
        monkeypatch.setenv("DAPR_RUNTIME_HOST", "127.0.0.1")
        monkeypatch.setenv("DAPR_HTTP_PORT", str(port))
        create, settings_cls = SERVICES[service]
        settings = settings_cls(
            **{
                "database_url": database_url,
                "auth_jwt_secret": SECRET,
                "log_level": "WARNING",
                "db_pool_size": 2,
                **overrides,
            }
        )
        return TestClient(create(settings), raise_server_exceptions=False)

    return build


@pytest.fixture
def standin() -> Iterator[MeshThread]:
    mesh = MeshThread(fast_config())
    mesh.start()
    try:
        yield mesh
    finally:
        mesh.stop()


@pytest.fixture
def failing_sidecar() -> Iterator[int]:
    """Answers its health endpoints as daprd does before it is ready: 500."""

    async def not_ready(request: Request) -> Response:
        body = {"errorCode": "ERR_HEALTH_NOT_READY", "message": "dapr is not ready"}
        return JSONResponse(body, status_code=500)

    server = ServerThread(
        Starlette(
            routes=[Route("/v1.0/healthz/outbound", not_ready), Route("/v1.0/healthz", not_ready)]
        )
    ).start()
    try:
        yield server.port
    finally:
        server.stop()


@pytest.fixture
def hung_sidecar() -> Iterator[int]:
    """Accepts connections (the kernel's backlog does) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_ready_with_the_stand_in_sidecar(
    service: str, start: Callable[..., TestClient], standin: MeshThread
) -> None:
    sidecar = standin.add_sidecar(SidecarSpec(app_id=service, app_port=free_port()))
    with start(sidecar.http_port) as client:
        # Readiness converges: like the kubelet, ask again (every 0.2 s, up to 10 s) — on
        # a loaded machine the stand-in's first health answer can miss the probe's 1 s.
        deadline = time.monotonic() + 10.0
        response = client.get("/readyz")
        while response.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            response = client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok"}


def test_no_sidecar_is_not_ready_but_alive(
    service: str, start: Callable[..., TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    with start(free_port()) as client:
        capsys.readouterr()
        for _ in range(2):
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.json() == NOT_READY_SIDECAR  # the check's name, no traceback
        assert client.get("/healthz").status_code == 200
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    warnings_logged = [r for r in records if r.get("event") == "dapr sidecar not healthy"]
    # Logged once per change, not on every probe; the reason says what happened.
    assert len(warnings_logged) == 1, records
    assert "Connect" in warnings_logged[0]["reason"]


def test_sidecar_answering_500_is_not_ready(
    service: str, start: Callable[..., TestClient], failing_sidecar: int
) -> None:
    with start(failing_sidecar) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == NOT_READY_SIDECAR
        assert client.get("/healthz").status_code == 200


def test_a_hung_sidecar_fails_readiness_within_the_timeout(
    service: str, start: Callable[..., TestClient], hung_sidecar: int
) -> None:
    with start(hung_sidecar, dapr_sidecar_probe_timeout_seconds=0.3) as client:
        began = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - began
        assert response.status_code == 503
        assert response.json() == NOT_READY_SIDECAR
        # The kubelet's probe times out after 2 s: the answer must come well before.
        assert 0.25 < elapsed < 1.5, elapsed


def test_sidecar_not_required_is_ready_without_one(
    service: str, start: Callable[..., TestClient]
) -> None:
    with start(free_port(), dapr_sidecar_required=False) as client:
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_readiness_follows_the_sidecar_going_and_coming_back(
    service: str, start: Callable[..., TestClient], standin: MeshThread
) -> None:
    sidecar = standin.add_sidecar(SidecarSpec(app_id=service, app_port=free_port()))
    with start(sidecar.http_port) as client:
        assert client.get("/readyz").status_code == 200
        standin.call(standin.mesh.take_down, sidecar)
        assert client.get("/readyz").json() == NOT_READY_SIDECAR
        standin.call(standin.mesh.bring_up, sidecar)
        # The probe's pooled connection died with the old sidecar; the next one is new.
        assert client.get("/readyz").status_code == 200


def test_both_failing_checks_are_named(
    service: str, start: Callable[..., TestClient], database_url: str
) -> None:
    unreachable = database_url.split("?")[0].rsplit("/", 1)[0] + "/db?host=/nonexistent"
    with start(free_port(), database_url=unreachable, log_level="ERROR") as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "failing": ["database", "dapr-sidecar"]}


def test_the_probe_client_is_closed_with_the_app(
    service: str, start: Callable[..., TestClient]
) -> None:
    client = start(free_port())
    with client:
        probe = client.app.state.sidecar_probe  # type: ignore[attr-defined]
        assert isinstance(probe, SidecarProbe) and not probe.closed
        assert probe.url.endswith("/v1.0/healthz/outbound")
    assert probe.closed


def test_the_requirement_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.delenv("DAPR_SIDECAR_REQUIRED", raising=False)
    assert load_settings(BackendSettings).dapr_sidecar_required is True
    monkeypatch.setenv("DAPR_SIDECAR_REQUIRED", "false")
    monkeypatch.setenv("DAPR_SIDECAR_PROBE_TIMEOUT_SECONDS", "0.5")
    settings = load_settings(RecurringSettings)
    assert settings.dapr_sidecar_required is False
    assert settings.dapr_sidecar_probe_timeout_seconds == 0.5


def test_a_service_that_never_opened_the_probe_is_not_ready(database_url: str) -> None:
    """Fail closed: a lifespan that forgot `open_sidecar_probe` must not pass readiness."""
    settings = BackendSettings(database_url=database_url, auth_jwt_secret=SECRET)

    @asynccontextmanager
    async def database_only(app: FastAPI) -> AsyncIterator[None]:
        async with open_database(app, settings):
            yield

    app = service_app(service="forgetful", title="t", description="d", lifespan=database_only)
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == NOT_READY_SIDECAR
