"""Fixtures for the sidecar stand-in's tests: a probe app, a mesh, and SDK environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from apps.local.standin import MeshConfig, MeshThread, RetryPolicy, Sidecar, SidecarSpec
from tests.apps.local.probe_app import ProbeApp, ServerThread

# Short intervals keep the suite fast; the semantics are the same as with real durations.
FAST_INBOUND = RetryPolicy(policy="constant", duration=0.02, max_retries=3)


def fast_config(**overrides: object) -> MeshConfig:
    config = MeshConfig(
        partitions=4,
        pubsub_inbound_retry=FAST_INBOUND,
        component_retry=RetryPolicy(policy="constant", duration=0.05, max_retries=-1),
        service_retry=RetryPolicy(policy="constant", duration=0.05, max_retries=3),
        app_startup_timeout_seconds=10,
        seed=7,
    )
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@pytest.fixture
def standin() -> Iterator[MeshThread]:
    runner = MeshThread(fast_config())
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture
def serve() -> Iterator[Callable[[ProbeApp], ServerThread]]:
    """Start probe apps; all are stopped when the test ends."""
    servers: list[ServerThread] = []

    def start(probe: ProbeApp) -> ServerThread:
        server = ServerThread(probe.app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def attach(
    standin: MeshThread,
    serve: Callable[[ProbeApp], ServerThread],
) -> Callable[..., Sidecar]:
    """Start a probe app and a sidecar for it; wait until the sidecar has subscribed."""

    def attach_probe(probe: ProbeApp, app_id: str = "probe", **spec: object) -> Sidecar:
        server = serve(probe)
        sidecar = standin.add_sidecar(
            SidecarSpec(app_id=app_id, app_port=server.port, **spec)  # type: ignore[arg-type]
        )
        standin.call(sidecar.attached.wait)
        return sidecar

    return attach_probe


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Sidecar], None]:
    """Point the `dapr` SDK (which reads DAPR_* at call time) at one sidecar."""

    def point_at(sidecar: Sidecar) -> None:
        for name, value in sidecar.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "5")

    return point_at
