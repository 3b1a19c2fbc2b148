"""`todo-local`'s own control port: what `todo-local status` and `todo-local dlq replay`
talk to while `todo-local` runs.

The running `todo-local` serves a small JSON API on a loopback port and writes where to
find it to `<home>/admin.json` (removed at exit):

* `GET /status` — the supervisor's units (pid, state, restarts, last exit) and the
  consumer groups' lag;
* `POST /dlq/replay` — `{"topic", "to", "type", "since", "until"}` → `{"republished": n}`.

When no `todo-local` runs, `dlq replay` opens the broker's files itself (see
`replay_offline`): the broker's data dir is locked by whichever process uses it.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from apps.contracts.events import DEAD_LETTER_TOPICS
from apps.local.standin import Mesh
from apps.local.system import LocalSystem, cluster_mesh_config

ADMIN_FILE = "admin.json"


def original_topic(dead_letter_topic: str) -> str:
    """The topic a dead-letter topic's events came from (`task-events-dlq` → `task-events`)."""
    if dead_letter_topic not in DEAD_LETTER_TOPICS or not dead_letter_topic.endswith("-dlq"):
        known = ", ".join(DEAD_LETTER_TOPICS)
        raise ValueError(f"{dead_letter_topic!r} is not a dead-letter topic (known: {known})")
    return dead_letter_topic.removesuffix("-dlq")


def parse_moment(value: str | None) -> float | None:
    """An ISO 8601 moment (naive means UTC) as epoch seconds."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def status_of(system: LocalSystem) -> dict[str, Any]:
    mesh = system.standin.mesh
    return {
        "units": system.status(),
        "lag": {f"{app_id}/{topic}": group.lag() for (app_id, topic), group in mesh.groups.items()},
        "dead_letters": {topic: len(mesh.messages(topic)) for topic in DEAD_LETTER_TOPICS},
    }


def replay(system: LocalSystem, request: dict[str, Any]) -> int:
    topic = str(request["topic"])
    return system.standin.call(
        system.standin.mesh.replay_dead_letters,
        topic,
        to_topic=str(request.get("to") or original_topic(topic)),
        event_type=request.get("type"),
        since=parse_moment(request.get("since")),
        until=parse_moment(request.get("until")),
    )


class AdminServer:
    """The control port of a running `todo-local` (a thread of its own)."""

    def __init__(self, system: LocalSystem, home: Path) -> None:
        self.system = system
        self.file = home / ADMIN_FILE
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, status: int, body: object) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path == "/status":
                    self._answer(200, status_of(outer.system))
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self) -> None:
                if self.path != "/dlq/replay":
                    self._answer(404, {"error": "not found"})
                    return
                length = int(self.headers.get("content-length") or 0)
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                    self._answer(200, {"republished": replay(outer.system, request)})
                except (ValueError, KeyError) as exc:
                    self._answer(400, {"error": str(exc)})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="todo-local-admin", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> AdminServer:
        self.thread.start()
        self.file.write_text(json.dumps({"url": self.url, "pid": os.getpid()}))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.file.unlink(missing_ok=True)
        self.server.shutdown()
        self.server.server_close()


def running_admin(home: Path) -> str | None:
    """The control URL of the `todo-local` running on `home`, if one answers."""
    try:
        url = str(json.loads((home / ADMIN_FILE).read_text())["url"])
        httpx.get(f"{url}/status", timeout=5).raise_for_status()
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return None
    return url


def replay_offline(broker_dir: Path, request: dict[str, Any]) -> int:
    """Replay straight into the broker's files (no `todo-local` running on them)."""

    async def run() -> int:
        mesh = Mesh(cluster_mesh_config(data_dir=broker_dir))
        try:
            topic = str(request["topic"])
            return await mesh.replay_dead_letters(
                topic,
                to_topic=str(request.get("to") or original_topic(topic)),
                event_type=request.get("type"),
                since=parse_moment(request.get("since")),
                until=parse_moment(request.get("until")),
            )
        finally:
            await mesh.close()

    return asyncio.run(run())
