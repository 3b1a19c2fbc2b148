"""The stand-in's health endpoints answer as daprd's do (what the services' /readyz asks).

daprd: `/v1.0/healthz/outbound` is healthy once the API is up, `/v1.0/healthz` only once
the app channel is too; healthy is 204 with no body, not ready is 500 with
`ERR_HEALTH_NOT_READY`; neither needs the API token.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest

from apps.local.standin import MeshThread, Sidecar, SidecarSpec
from tests.apps.local.probe_app import ProbeApp


def _health(sidecar: Sidecar, path: str) -> httpx.Response:
    # No dapr-api-token header although the sidecar has one: health is exempt.
    return httpx.get(f"http://127.0.0.1:{sidecar.http_port}/v1.0/{path}", timeout=5)


def test_before_the_app_channel_only_outbound_is_healthy(standin: MeshThread) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        # Nothing listens on the app port: the sidecar cannot attach to its app.
        sidecar = standin.add_sidecar(SidecarSpec(app_id="lonely", app_port=port, api_token="t"))
        outbound = _health(sidecar, "healthz/outbound")
        full = _health(sidecar, "healthz")
    assert outbound.status_code == 204 and outbound.content == b""
    assert full.status_code == 500
    assert full.json() == {"errorCode": "ERR_HEALTH_NOT_READY", "message": "dapr is not ready"}


def test_once_attached_both_are_healthy(attach: Callable[..., Sidecar]) -> None:
    sidecar = attach(ProbeApp(), api_token="t")
    for path in ("healthz", "healthz/outbound"):
        response = _health(sidecar, path)
        assert response.status_code == 204, path


def test_a_sidecar_taken_down_refuses_connections(
    standin: MeshThread, attach: Callable[..., Sidecar]
) -> None:
    sidecar = attach(ProbeApp())
    standin.call(standin.mesh.take_down, sidecar)
    with pytest.raises(httpx.ConnectError):
        _health(sidecar, "healthz/outbound")
    standin.call(standin.mesh.bring_up, sidecar)
    assert _health(sidecar, "healthz/outbound").status_code == 204
