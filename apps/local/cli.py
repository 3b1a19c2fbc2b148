"""`todo-local`: the whole system on one machine.

`uv run todo-local` starts an embedded PostgreSQL (migrated), the Dapr sidecar stand-in
and the three services — backend on 8000, notification on 8001, recurring on 8002 — and
prints how to get a token and what to try. `uv run todo-local token --user alice` prints
a bearer token for a user. State (database, the broker's topics and offsets, the token
signing key, service logs) lives in `.todo-local/` (or `TODO_LOCAL_HOME`).

What dies is restarted with backoff (services, sidecars, PostgreSQL; see
`apps.local.supervisor`); `todo-local status` shows restarts, `todo-local dlq replay`
republishes dead letters. The services' traces go to `traces.jsonl` in the same place;
`todo-local trace <trace_id>` prints one as a tree (the id is in every log line).
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from apps.contracts.events import DEAD_LETTER_TOPICS
from apps.contracts.services import REMINDER_SCAN, AppId
from apps.local.admin import AdminServer, replay_offline, running_admin
from apps.local.postgres import embedded, ensure_database, migrate
from apps.local.system import DEFAULT_PORTS, LocalSystem, cluster_mesh_config, make_token
from apps.local.traces import TRACES_FILE, read_spans, render, tracing_env

app = typer.Typer(
    help="Run the Todo system on this machine (embedded PostgreSQL, stand-in Dapr sidecars).",
    no_args_is_help=False,
    add_completion=False,
)
console = Console()


def local_home() -> Path:
    return Path(os.environ.get("TODO_LOCAL_HOME", ".todo-local")).resolve()


def signing_key(home: Path) -> str:
    """The HS256 key tokens are signed with, kept so tokens survive restarts."""
    path = home / "jwt-secret"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _moment(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _guide(system: LocalSystem, home: Path) -> str:
    backend, notification, recurring = (
        system.url("backend"),
        system.url("notification"),
        system.url("recurring"),
    )
    auth = '-H "Authorization: Bearer $TOKEN"'
    json_type = "-H 'content-type: application/json'"
    weekly = (
        '{"title": "Water the plants", "due_at": "' + _moment(timedelta(days=1)) + '", '
        '"timezone": "Europe/Berlin", "recurrence": {"rrule": "FREQ=WEEKLY", "anchor": "due"}}'
    )
    reminder = (
        '{"title": "Stretch", "due_at": "' + _moment(timedelta(minutes=2)) + '", '
        '"reminders": [{"before_minutes": 1}]}'
    )
    return "\n".join(
        [
            f"backend       {backend}/docs",
            f"notification  {notification}/docs",
            f"recurring     {recurring}/docs",
            f"logs          {home / 'logs'}",
            f"traces        {home / TRACES_FILE}  (todo-local trace <trace_id>)",
            "",
            "Get a token (another terminal):",
            "  export TOKEN=$(uv run todo-local token --user alice)",
            "",
            "A weekly task — complete it, and the next one appears:",
            f"  curl -s {backend}/api/v1/tasks {auth} {json_type} -d '{weekly}'",
            f"  curl -s -X POST {backend}/api/v1/tasks/<id>/complete {auth}",
            f"  curl -s '{backend}/api/v1/tasks?status=open' {auth}",
            "",
            "A reminder a minute from now — then look at your notifications:",
            f"  curl -s {backend}/api/v1/tasks {auth} {json_type} -d '{reminder}'",
            f"  curl -s {notification}/api/v1/notifications {auth}",
            "",
            "Preview a rule:",
            f"  curl -s {recurring}/api/v1/recurrence/preview {auth} {json_type} "
            '-d \'{"rrule": "FREQ=WEEKLY;BYDAY=MO", "dtstart": "'
            + _moment(timedelta(0))
            + '", "count": 3}\'',
            "",
            "Stop with Ctrl-C.",
        ]
    )


@app.callback(invoke_without_command=True)
def up(
    context: typer.Context,
    backend_port: Annotated[int, typer.Option(help="backend port")] = DEFAULT_PORTS[AppId.BACKEND],
    notification_port: Annotated[
        int, typer.Option(help="notification service port")
    ] = DEFAULT_PORTS[AppId.NOTIFICATION],
    recurring_port: Annotated[int, typer.Option(help="recurring service port")] = DEFAULT_PORTS[
        AppId.RECURRING
    ],
    reminder_scan_seconds: Annotated[
        float, typer.Option(help=f"how often the cron binding calls {REMINDER_SCAN.route}")
    ] = 1.0,
) -> None:
    """Start everything and wait for Ctrl-C (the default command)."""
    if context.invoked_subcommand is not None:
        return
    home = local_home()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    console.print(f"[bold]todo-local[/bold] — state in {home}")
    with console.status("starting PostgreSQL…"), embedded(home / "pgdata") as postgres:
        database_url = ensure_database(postgres.url)
        migrate(database_url)
        console.print("PostgreSQL ready and migrated")
        system = LocalSystem(
            database_url=database_url,
            log_dir=home / "logs",
            ports={
                AppId.BACKEND: backend_port,
                AppId.NOTIFICATION: notification_port,
                AppId.RECURRING: recurring_port,
            },
            jwt_secret=signing_key(home),
            cron_every_seconds=reminder_scan_seconds,
            mesh_config=cluster_mesh_config(data_dir=home / "broker"),
            extra_units=(postgres,),
            extra_env=tracing_env(home),
            on_event=lambda line: console.print(f"[yellow]supervisor[/yellow] {line}"),
        )
        with console.status("starting the services and their sidecars…"):
            system.start()
        try:
            with AdminServer(system, home):
                console.rule("[bold green]todo-local is up")
                # Plain, unwrapped lines: the curl commands must survive copy and paste.
                console.print(_guide(system, home), soft_wrap=True, highlight=False, markup=False)
                console.rule()
                stop.wait()
                console.print("stopping…")
        finally:
            system.stop()


@app.command()
def token(
    user: Annotated[str, typer.Option(help="the user id (the token's sub)")] = "alice",
    ttl_hours: Annotated[float, typer.Option(help="validity in hours")] = 12.0,
) -> None:
    """Print a bearer token for USER, signed with this machine's todo-local key."""
    typer.echo(make_token(user, signing_key(local_home()), int(ttl_hours * 3600)))


@app.command()
def status() -> None:
    """Show what the running todo-local supervises: pid, state, restarts, last exit."""
    url = running_admin(local_home())
    if url is None:
        console.print("todo-local is not running (no answer from its control port)")
        raise typer.Exit(1)
    report = httpx.get(f"{url}/status", timeout=10).json()
    table = Table("unit", "state", "pid", "restarts", "last exit", "uptime s")
    for unit in report["units"]:
        table.add_row(
            unit["name"],
            unit["state"],
            str(unit["pid"] or "-"),
            str(unit["restarts"]),
            unit["last_exit"] or "-",
            "-" if unit["uptime_seconds"] is None else f"{unit['uptime_seconds']:.0f}",
        )
    console.print(table)
    for group, lag in report["lag"].items():
        console.print(f"lag {group}: {lag}")
    for topic, count in report["dead_letters"].items():
        console.print(f"dead letters {topic}: {count}")


@app.command()
def trace(
    trace_id: Annotated[str, typer.Argument(help="the trace id (32 hex digits, as logged)")],
) -> None:
    """Print one trace's spans as a tree: service, span name, duration."""
    spans = read_spans(local_home() / TRACES_FILE, trace_id)
    if not spans:
        console.print(f"no spans of trace {trace_id} in {local_home() / TRACES_FILE}")
        raise typer.Exit(1)
    for line in render(spans):
        typer.echo(line)


dlq = typer.Typer(help="Dead-letter topics of the stand-in broker.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")


@dlq.command("replay")
def dlq_replay(
    topic: Annotated[
        str, typer.Option(help=f"the dead-letter topic ({', '.join(DEAD_LETTER_TOPICS)})")
    ],
    type_: Annotated[
        str | None, typer.Option("--type", help="only events of this type (CloudEvent type)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="only events dead-lettered at or after (ISO 8601)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="only events dead-lettered at or before (ISO 8601)")
    ] = None,
    to: Annotated[
        str | None, typer.Option(help="the topic to republish to (default: TOPIC minus -dlq)")
    ] = None,
) -> None:
    """Republish a dead-letter topic's events to their topic (after the cause is fixed).

    The events go out unchanged (same CloudEvent id, key, metadata), so the consumers'
    idempotency makes a replay safe to repeat. Talks to the running todo-local, or,
    when none runs, writes into the broker's files under the todo-local home.
    """
    request = {"topic": topic, "type": type_, "since": since, "until": until, "to": to}
    home = local_home()
    url = running_admin(home)
    try:
        if url is not None:
            answer = httpx.post(f"{url}/dlq/replay", json=request, timeout=60)
            if answer.status_code != 200:
                raise ValueError(answer.json().get("error", answer.text))
            count = int(answer.json()["republished"])
        else:
            count = replay_offline(home / "broker", request)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"republished {count} event(s) from {topic}")


def main() -> None:
    app()
