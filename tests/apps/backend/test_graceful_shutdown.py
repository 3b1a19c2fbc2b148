"""SIGTERM under steady load: a real uvicorn process running the real backend app against
the test PostgreSQL, with the Dapr sidecar stand-in (readiness includes it, the outbox
relay publishes through it)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from apps.local.standin import MeshThread, SidecarSpec
from apps.shared.shutdown import SHUTDOWN_CHECK
from tests.apps.backend.conftest import APP_TOKEN, JWT_SECRET, bearer
from tests.apps.local.conftest import fast_config
from tests.apps.local.probe_app import ProbeApp, ServerThread, wait_until
from tests.apps.shared.uvicorn_process import Load, UvicornProcess, readiness_after

GRACE_SECONDS = 1.5


@pytest.fixture
def mesh() -> Iterator[tuple[MeshThread, dict[str, str]]]:
    """The sidecar stand-in for app id `backend`, and the env that points the SDK at it."""
    app = ServerThread(ProbeApp().app).start()
    standin = MeshThread(fast_config())
    standin.start()
    try:
        sidecar = standin.add_sidecar(SidecarSpec(app_id="backend", app_port=app.port))
        yield standin, dict(sidecar.env)
    finally:
        standin.stop()
        app.stop()


def _other_sessions(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_sigterm_under_load_fails_readiness_then_drains_and_releases_everything(
    database_url: str, mesh: tuple[MeshThread, dict[str, str]]
) -> None:
    standin, sidecar_env = mesh
    server = UvicornProcess(
        "apps.backend.main:app",
        {
            **sidecar_env,
            "DATABASE_URL": database_url,
            "AUTH_JWT_SECRET": JWT_SECRET,
            "APP_API_TOKEN": APP_TOKEN,
            "APP_ENV": "test",
            "LOG_LEVEL": "INFO",
            "DB_POOL_SIZE": "4",
            "DAPR_SIDECAR_REQUIRED": "true",
            "SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
            "SHUTDOWN_DRAIN_SECONDS": "10",
            "OUTBOX_RELAY_POLL_SECONDS": "0.1",
        },
    )
    try:
        server.wait_ready()
        headers = bearer("alice")
        load = Load(
            lambda client: client.post(
                f"{server.url}/api/v1/tasks", json={"title": "under load"}, headers=headers
            )
        ).start()
        wait_until(lambda: len(load.outcomes) >= 30, timeout=30, what="steady load")

        signalled = server.terminate()
        readiness = readiness_after(
            server.url, signalled + 0.2, until=lambda: server.process.poll() is not None
        )
        server.wait_exit(timeout=60)
        outcomes = load.stop()
        log = server.log()
    finally:
        server.close()

    # Every request sent before the signal was accepted and completed normally.
    before = [o for o in outcomes if o.started < signalled]
    assert before and all(o.result == 201 for o in before), [o.result for o in before]
    # None at all failed inside the app; after the grace period new ones are refused.
    assert not [o for o in outcomes if isinstance(o.result, int) and o.result != 201]
    # Readiness failed from the signal on, naming why, while the server still answered.
    assert readiness, log
    assert all(status == 503 and SHUTDOWN_CHECK in body for status, body in readiness), readiness
    assert "stop signal received" in log and "Application shutdown complete" in log, log

    created = sum(1 for o in outcomes if o.result == 201)
    with psycopg.connect(database_url, autocommit=True) as connection:
        tasks = connection.execute("SELECT count(*) FROM tasks").fetchone()
        published = {
            str(event_id)
            for (event_id,) in connection.execute(
                "SELECT event_id FROM outbox WHERE published_at IS NOT NULL"
            )
        }
        # No row is held: a NOWAIT lock over the whole outbox succeeds at once.
        connection.execute("BEGIN")
        connection.execute("SELECT id FROM outbox FOR UPDATE NOWAIT")
        connection.execute("ROLLBACK")
    assert tasks is not None and tasks[0] == created
    # The relay's last batch finished: what it marked published is what the broker got,
    # and nothing reached the broker that is still marked unpublished.
    sent = {str(event["id"]) for event in standin.mesh.events("task-events")}
    assert published == sent
    # The pools (and the relay's LISTEN connection) are closed.
    wait_until(lambda: _other_sessions(database_url) == 0, timeout=10, what="sessions closed")
