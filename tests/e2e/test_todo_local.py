"""`uv run todo-local` as a new user meets it: start, try the two stories, Ctrl-C, gone."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from apps.local.cli import signing_key
from apps.local.ports import fixed_free_port
from apps.local.system import make_token
from tests.e2e.conftest import eventually


@pytest.fixture
def todo_local(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, int], Path]]:
    # Chosen here, bound by todo-local later: below the ephemeral range, where no
    # outgoing connection's local port can take them in between.
    ports = {app: fixed_free_port() for app in ("backend", "notification", "recurring")}
    home = tmp_path / "home"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "apps.local",
            "--backend-port",
            str(ports["backend"]),
            "--notification-port",
            str(ports["notification"]),
            "--recurring-port",
            str(ports["recurring"]),
        ],
        env={**os.environ, "TODO_LOCAL_HOME": str(home), "LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, ports, home
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("todo-local did not come up:\n" + "".join(seen))


def _closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_new_user_sees_the_next_occurrence_and_a_notification(
    todo_local: tuple[subprocess.Popen[str], dict[str, int], Path],
) -> None:
    process, ports, home = todo_local
    banner = _read_until(process, "Stop with Ctrl-C", timeout=180)
    assert "todo-local token --user alice" in banner
    token = make_token("alice", signing_key(home))
    auth = {"Authorization": f"Bearer {token}"}
    backend = httpx.Client(base_url=f"http://127.0.0.1:{ports['backend']}", headers=auth)
    notifications = httpx.Client(base_url=f"http://127.0.0.1:{ports['notification']}", headers=auth)

    weekly: dict[str, Any] = backend.post(
        "/api/v1/tasks",
        json={
            "title": "Water the plants",
            "due_at": "2030-01-06T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "recurrence": {"rrule": "FREQ=WEEKLY", "anchor": "due"},
        },
    ).json()
    backend.post(f"/api/v1/tasks/{weekly['id']}/complete").raise_for_status()
    (following,) = eventually(
        lambda: backend.get("/api/v1/tasks", params={"status": "open"}).json()["items"],
        what="the next occurrence",
    )
    assert following["due_at"] == "2030-01-13T08:00:00Z"

    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    backend.post(
        "/api/v1/tasks",
        json={"title": "Stretch", "due_at": "2030-01-01T00:00:00Z", "reminders": [{"at": soon}]},
    ).raise_for_status()
    (note,) = eventually(
        lambda: notifications.get("/api/v1/notifications").json()["items"],
        what="the notification",
    )
    assert note["title"] == "Stretch"

    # A service that dies is restarted, and `todo-local status` shows it.
    admin = json.loads((home / "admin.json").read_text())["url"]
    units = {u["name"]: u for u in httpx.get(f"{admin}/status").json()["units"]}
    assert {"postgres", "notification-0", "notification-0-sidecar"} <= set(units)
    os.kill(int(units["notification-0"]["pid"]), signal.SIGKILL)
    _read_until(process, "notification-0 restarted", timeout=60)

    def answers() -> bool:
        try:
            return notifications.get("/api/v1/notifications").status_code == 200
        except httpx.HTTPError:
            return False

    eventually(answers, timeout=60, what="the notification service back")
    status = subprocess.run(
        [sys.executable, "-m", "apps.local", "status"],
        env={**os.environ, "TODO_LOCAL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert "SIGKILL" in status.stdout
    backend.close()
    notifications.close()

    process.send_signal(signal.SIGINT)  # Ctrl-C
    assert process.wait(timeout=60) == 0
    assert all(_closed(port) for port in ports.values())
