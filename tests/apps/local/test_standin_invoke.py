"""Service invocation, the cron binding and the API token, as the SDK and apps see them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprHttpError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apps.local.standin import AccessRule, CronBinding, MeshThread, Sidecar, SidecarSpec
from tests.apps.local.probe_app import ProbeApp, Received, ServerThread, wait_until


def test_invocation_reaches_the_target_with_its_app_token(
    attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    def answer(received: Received) -> tuple[int, Any]:
        return 201, {"echo": received.json(), "query": received.headers.get("x-probe")}

    target = ProbeApp(answer=answer)
    attach(target, app_id="backend", app_token="backend-token")
    caller = attach(ProbeApp(), app_id="recurring", app_token="recurring-token", api_token="api")
    sdk_env(caller)

    with DaprClient() as client:
        response = client.invoke_method(
            "backend",
            "internal/v1/tasks/abc/next-occurrence",
            data=b'{"n": 1}',
            content_type="application/json",
            http_verb="POST",
            metadata=(("x-probe", "yes"),),
        )

    assert response.status_code == 201
    assert response.json() == {"echo": {"n": 1}, "query": "yes"}
    (call,) = target.calls("/internal/v1/tasks/abc/next-occurrence")
    assert call.headers["dapr-api-token"] == "backend-token"  # the target's, not the caller's
    assert call.headers["dapr-caller-app-id"] == "recurring"


def test_target_errors_pass_through_to_the_caller(
    attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    target = ProbeApp(answer=lambda received: (409, {"detail": "conflict"}))
    attach(target, app_id="backend")
    sdk_env(attach(ProbeApp(), app_id="recurring"))

    with DaprClient() as client, pytest.raises(DaprHttpError) as raised:
        client.invoke_method("backend", "x", data=b"{}", http_verb="POST")
    assert raised.value.status_code == 409


def test_access_control_denies_what_the_policy_does_not_allow(
    standin: MeshThread, attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    standin.mesh.config.access_control["backend"] = (
        AccessRule(caller="recurring", verb="POST", path_prefix="/internal/"),
    )
    target = ProbeApp()
    attach(target, app_id="backend")
    recurring = attach(ProbeApp(), app_id="recurring")
    notification = attach(ProbeApp(), app_id="notification")

    sdk_env(recurring)
    with DaprClient() as client:
        assert client.invoke_method("backend", "internal/x", data=b"", http_verb="POST")
        with pytest.raises(DaprHttpError) as denied_verb:
            client.invoke_method("backend", "internal/x", data=b"", http_verb="DELETE")
    sdk_env(notification)
    with DaprClient() as client, pytest.raises(DaprHttpError) as denied_caller:
        client.invoke_method("backend", "internal/x", data=b"", http_verb="POST")

    assert denied_verb.value.status_code == denied_caller.value.status_code == 403
    assert len(target.calls("/internal/x")) == 1


def test_no_instance_of_the_target_is_a_500_after_the_builtin_retries(
    attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    sdk_env(attach(ProbeApp(), app_id="recurring"))
    with DaprClient() as client, pytest.raises(DaprHttpError) as raised:
        client.invoke_method("backend", "x", data=b"", http_verb="POST")
    assert raised.value.status_code == 500
    assert "ERR_DIRECT_INVOKE" in str(raised.value)


def test_invocations_are_spread_over_the_instances(
    attach: Callable[..., Sidecar], sdk_env: Callable[[Sidecar], None]
) -> None:
    first, second = ProbeApp(), ProbeApp()
    attach(first, app_id="backend")
    attach(second, app_id="backend")
    sdk_env(attach(ProbeApp(), app_id="recurring"))
    with DaprClient() as client:
        for _ in range(6):
            client.invoke_method("backend", "ping", data=b"", http_verb="POST")
    assert len(first.calls("/ping")) == len(second.calls("/ping")) == 3


def test_cron_binding_fires_on_every_instance_with_the_app_token(
    attach: Callable[..., Sidecar],
) -> None:
    cron = (CronBinding(name="reminder-scan", every_seconds=0.05),)
    first, second = ProbeApp(), ProbeApp()
    attach(first, app_id="backend", app_token="t", bindings=cron)
    attach(second, app_id="backend", app_token="t", bindings=cron)

    wait_until(lambda: len(first.calls("/reminder-scan")) >= 3, what="first replica's cron")
    wait_until(lambda: len(second.calls("/reminder-scan")) >= 3, what="second replica's cron")
    assert first.calls("/reminder-scan", method="OPTIONS")  # daprd's "does the app listen?"
    assert all(c.headers["dapr-api-token"] == "t" for c in first.calls("/reminder-scan"))


def test_cron_binding_stays_off_when_the_app_does_not_listen(
    attach: Callable[..., Sidecar],
) -> None:
    probe = ProbeApp(answer=lambda received: (404, None))
    sidecar = attach(
        probe, app_id="backend", bindings=(CronBinding(name="reminder-scan", every_seconds=0.02),)
    )
    assert sidecar.attached.is_set()
    assert probe.calls("/reminder-scan") == []


def test_api_token_is_required_when_the_sidecar_has_one(
    attach: Callable[..., Sidecar],
    sdk_env: Callable[[Sidecar], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attach(ProbeApp(), app_id="backend")
    caller = attach(ProbeApp(), app_id="recurring", api_token="right")
    sdk_env(caller)
    monkeypatch.setenv("DAPR_API_TOKEN", "wrong")
    with DaprClient() as client:  # the health probe is open, as in daprd
        with pytest.raises(DaprHttpError) as raised:
            client.invoke_method("backend", "x", data=b"", http_verb="POST")
        with pytest.raises(Exception, match="UNAUTHENTICATED|invalid api token"):
            client.publish_event("pubsub", "t", b"x")
    assert raised.value.status_code == 401


def test_cron_binding_fires_again_while_a_call_is_still_running(standin: MeshThread) -> None:
    """As daprd's cron binding: the next firing does not wait for the previous call. The
    first call answers only once a second one has arrived, so a sidecar that waited for
    each call to end would never make it."""
    second_arrived = asyncio.Event()
    calls: list[str] = []

    async def scan(request: Request) -> Response:
        calls.append(request.method)
        if request.method == "POST":
            if calls.count("POST") == 1:
                await second_arrived.wait()
            else:
                second_arrived.set()
        return Response(status_code=200)

    app = Starlette(routes=[Route("/reminder-scan", scan, methods=["POST", "OPTIONS"])])
    server = ServerThread(app).start()
    try:
        sidecar = standin.add_sidecar(
            SidecarSpec(
                app_id="backend",
                app_port=server.port,
                bindings=(CronBinding(name="reminder-scan", every_seconds=0.05),),
            )
        )
        standin.call(sidecar.attached.wait)
        wait_until(lambda: calls.count("POST") >= 3, what="firings past a running call")
    finally:
        server.stop()
