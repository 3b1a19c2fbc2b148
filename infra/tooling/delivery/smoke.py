"""Smoke test of a deployed stack through its public URL, as the deploy workflow runs it.

    uv run python -m infra.tooling.delivery.smoke --base-url https://api.staging.example.com

It proves the paths a release must not break, end to end through the edge, Dapr, Kafka
and the database:

1. health: an authenticated read through the edge answers 200 (edge, backend, JWT key
   and database agree);
2. recurrence: a task with a daily RRULE is created and completed, and the recurring
   service's next occurrence (same series, due one day later) appears;
3. reminders: a task with a reminder a few seconds ahead is created, and the notification
   service records a notification for it (cron binding → reminder.due.v1 → consumer).

The bearer token is `SMOKE_TOKEN`, or an HS256 token minted from `AUTH_JWT_SECRET` for a
throw-away user (`smoke-<run>`), so the smoke test's data is isolated from real users and
removed at the end. Neither value is ever printed.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

API = "/api/v1"


class SmokeFailure(AssertionError):
    """A step of the smoke test did not hold; the message says which and what was seen."""


@dataclass
class SmokeRun:
    """One smoke run against one deployment."""

    api: httpx.Client
    notifications: httpx.Client
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    timeout: float = 180.0
    poll_interval: float = 3.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep
    created: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        """Marks this run's tasks (tags are lowercase, at most 32 characters)."""
        return f"smoke-{self.run_id}"

    # ------------------------------------------------------------------------- helpers

    def _json(self, response: httpx.Response, expected: int, what: str) -> Any:
        if response.status_code != expected:
            raise SmokeFailure(
                f"{what}: expected HTTP {expected}, got {response.status_code}: "
                f"{response.text[:300]}"
            )
        return response.json() if response.content else None

    def _poll(self, what: str, probe: Callable[[], Any | None]) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            found = probe()
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise SmokeFailure(f"{what}: not seen within {self.timeout:.0f}s")
            self.sleep(self.poll_interval)

    def _create_task(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        task: dict[str, Any] = self._json(self.api.post(f"{API}/tasks", json=body), 201, what)
        self.created.append(str(task["id"]))
        return task

    # ------------------------------------------------------------------------- steps

    def health(self) -> None:
        """The API answers through the edge, with auth and the database behind it.

        `/healthz` and `/readyz` are not exposed by the edge (only `/api/` is), so the
        probe is an authenticated read: it needs the gateway, the backend, the JWT key and
        the database to agree.
        """
        response = self.api.get(f"{API}/tags")
        if response.status_code != 200:
            raise SmokeFailure(f"GET {API}/tags: HTTP {response.status_code} {response.text[:200]}")

    def recurrence(self) -> dict[str, Any]:
        due = (self.clock() + timedelta(hours=1)).replace(microsecond=0)
        title = f"smoke {self.run_id} recurring"
        task = self._create_task(
            {
                "title": title,
                "due_at": due.isoformat(),
                "recurrence": {"rrule": "FREQ=DAILY;COUNT=3", "anchor": "due"},
                "tags": [self.tag],
            },
            "create a recurring task",
        )
        completed = self._json(
            self.api.post(f"{API}/tasks/{task['id']}/complete"), 200, "complete it"
        )
        if not completed.get("completed"):
            raise SmokeFailure(f"complete: the task is not completed: {completed}")
        expected_due = due + timedelta(days=1)

        def next_occurrence() -> dict[str, Any] | None:
            page = self._json(
                # By series, not by tag: the next occurrence need not copy the tags. The
                # throw-away user owns only this run's tasks; a fixed SMOKE_TOKEN user's
                # newest 200 include it.
                self.api.get(
                    f"{API}/tasks",
                    params={"status": "open", "sort": "created_at", "order": "desc", "limit": 200},
                ),
                200,
                "list open tasks",
            )
            for item in page["items"]:
                same_series = item.get("series_id") and item["series_id"] == task["series_id"]
                if same_series and item["id"] != task["id"]:
                    if _moment(item["due_at"]) != expected_due:
                        raise SmokeFailure(
                            f"next occurrence due {item['due_at']}, expected {expected_due}"
                        )
                    return dict(item)
            return None

        occurrence: dict[str, Any] = self._poll("the next occurrence", next_occurrence)
        self.created.append(str(occurrence["id"]))
        return occurrence

    def reminder(self) -> dict[str, Any]:
        now = self.clock().replace(microsecond=0)
        task = self._create_task(
            {
                "title": f"smoke {self.run_id} reminder",
                "due_at": (now + timedelta(minutes=30)).isoformat(),
                "reminders": [{"at": (now + timedelta(seconds=5)).isoformat()}],
                "tags": [self.tag],
            },
            "create a task with a reminder",
        )

        def notification() -> dict[str, Any] | None:
            page = self._json(
                self.notifications.get(f"{API}/notifications"), 200, "list notifications"
            )
            items = page["items"] if isinstance(page, dict) else page
            return next((dict(n) for n in items if str(n.get("task_id")) == task["id"]), None)

        found: dict[str, Any] = self._poll("a notification for the reminder", notification)
        return found

    def cleanup(self) -> list[str]:
        """Delete what the run created; returns what could not be deleted."""
        left = []
        for task_id in self.created:
            response = self.api.delete(f"{API}/tasks/{task_id}")
            if response.status_code not in (204, 404):
                left.append(task_id)
        return left


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def mint_token(secret: str, subject: str, *, lifetime: timedelta = timedelta(minutes=20)) -> str:
    """An HS256 bearer token as the backend verifies them (architecture §5)."""
    import jwt

    now = datetime.now(UTC)
    claims = {"sub": subject, "iat": now, "nbf": now, "exp": now + lifetime}
    return jwt.encode(claims, secret, algorithm="HS256")


def client_headers(token: str, host_header: str | None = None) -> dict[str, str]:
    """The headers of every request; `host_header` routes through a port-forward.

    Reached through `kubectl port-forward` (the kind proving ground), the edge still needs
    the public hostname to pick the route: the Gateway's HTTPRoute matches on it. httpx
    sends a Host header given here instead of the URL's.
    """
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "todo-smoke/1"}
    if host_header:
        headers["Host"] = host_header
    return headers


@contextmanager
def clients(
    base_url: str,
    notifications_url: str,
    token: str,
    timeout: float,
    host_header: str | None = None,
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The API and notifications clients of a run, closed at the end."""
    headers = client_headers(token, host_header)
    with (
        httpx.Client(base_url=base_url, headers=headers, timeout=timeout) as api,
        httpx.Client(base_url=notifications_url, headers=headers, timeout=timeout) as notes,
    ):
        yield api, notes


def main(
    base_url: Annotated[
        str, typer.Option(envvar="SMOKE_BASE_URL", help="Public URL of the backend API.")
    ],
    notifications_url: Annotated[
        str | None,
        typer.Option(
            envvar="SMOKE_NOTIFICATIONS_URL",
            help="URL that serves /api/v1/notifications (default: the base URL).",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each event.")] = 180.0,
    host_header: Annotated[
        str | None,
        typer.Option(
            envvar="SMOKE_HOST_HEADER",
            help="Host header to send (the API's hostname when the URL is a port-forward).",
        ),
    ] = None,
) -> None:
    """Health, recurring task, reminder → notification; exit 1 on the first failure."""
    console = Console()
    token = os.environ.get("SMOKE_TOKEN")
    run = uuid.uuid4().hex[:10]
    if not token:
        secret = os.environ.get("AUTH_JWT_SECRET")
        if not secret:
            console.print("[red]error:[/red] set SMOKE_TOKEN or AUTH_JWT_SECRET")
            raise typer.Exit(2)
        token = mint_token(secret, f"smoke-{run}")
    notes_url = notifications_url or base_url
    with clients(base_url, notes_url, token, 15.0, host_header) as (api, notes):
        smoke = SmokeRun(api, notes, run_id=run, timeout=timeout)
        steps: list[tuple[str, Callable[[], object]]] = [
            ("API through the edge", smoke.health),
            ("recurring task → next occurrence", smoke.recurrence),
            ("reminder → notification", smoke.reminder),
        ]
        try:
            for name, step in steps:
                started = time.monotonic()
                step()
                console.print(f"[green]ok[/green]   {name} ({time.monotonic() - started:.1f}s)")
        except (SmokeFailure, httpx.HTTPError) as error:
            console.print(f"[red]FAIL[/red] {name}: {error}")
            raise typer.Exit(1) from None
        finally:
            left = smoke.cleanup()
            if left:
                console.print(f"[yellow]could not delete smoke tasks {left}[/yellow]")


if __name__ == "__main__":
    typer.run(main)
