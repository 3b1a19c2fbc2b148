"""Health, readiness, metrics by route template, request ids and JSON logs."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from apps.backend.main import create_app
from apps.backend.settings import BackendSettings
from tests.apps.backend.conftest import JWT_SECRET


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def test_readiness_fails_when_the_database_is_unreachable(database_url: str) -> None:
    unreachable = database_url.split("?")[0].rsplit("/", 1)[0] + "/db?host=/nonexistent"
    settings = BackendSettings(
        database_url=unreachable,
        auth_jwt_secret=JWT_SECRET,
        log_level="WARNING",
        dapr_sidecar_required=False,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "not ready", "failing": ["database"]}


def _sample(metrics: str, prefix: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_use_route_templates(client: TestClient, alice: dict[str, str]) -> None:
    label = (
        'http_requests_total{method="GET",route="/api/v1/tasks/{task_id}",'
        'service="backend",status="404"}'
    )
    before = _sample(client.get("/metrics").text, label)
    for _ in range(2):
        client.get("/api/v1/tasks/00000000-0000-0000-0000-000000000000", headers=alice)
    client.get("/no/such/path")
    metrics = client.get("/metrics").text
    assert _sample(metrics, label) == before + 2
    assert "00000000-0000" not in metrics
    assert 'route="unmatched"' in metrics
    assert (
        'http_request_duration_seconds_bucket{le="0.025",method="GET",route="/api/v1/tasks/{task_id}",service="backend"}'
        in metrics
    )


def test_request_id_is_echoed_and_generated(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = client.get("/healthz", headers={"x-request-id": "bad id\n"}).headers["x-request-id"]
    assert len(generated) == 32 and generated != "bad id"


def test_logs_are_json_with_request_id_and_no_token(
    backend_settings: BackendSettings, alice: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = backend_settings.model_copy(update={"log_level": "INFO"})
    with TestClient(create_app(settings)) as client:
        capsys.readouterr()
        client.get("/api/v1/tasks", headers={**alice, "x-request-id": "req-42"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    [access] = [line for line in lines if line.get("event") == "request"]
    assert access["request_id"] == "req-42" and access["status"] == 200
    assert access["service"] == "backend" and access["path"] == "/api/v1/tasks"
    token = alice["Authorization"].split()[1]
    assert all(token not in json.dumps(line) for line in lines)


def test_unexpected_errors_answer_500_json_without_details(
    backend_settings: BackendSettings, alice: dict[str, str]
) -> None:
    app = create_app(backend_settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "detail": [{"loc": ["server"], "msg": "internal error", "type": "internal_error"}]
    }
