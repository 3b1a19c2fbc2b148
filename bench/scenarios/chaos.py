"""Chaos: crash every part of the system under load; count what was lost or doubled.

The system runs as under `todo-local` (supervised service processes, stand-in sidecars,
a durable broker, an embedded PostgreSQL the supervisor also restarts), in this process.
While recurring tasks are completed through the API and reminders fall due, one part
after another is killed at a moment chosen to hurt:

* backend — SIGKILL while its outbox relay is inside a publish (the broker stored the
  event, the relay never heard back: it publishes again after the restart);
* backend — SIGKILL while completions are in flight (clients retry; completing is
  idempotent);
* recurring — SIGKILL while its service invocation of the backend is in flight (the
  successor exists, the consumer never acked: the event is redelivered);
* notification — SIGKILL while a webhook call is in flight (the local receiver holds the
  call open; the delivery is retried after the restart);
* each stand-in sidecar — crashed (ports gone, deliveries in flight abandoned);
* PostgreSQL — stopped as a crash would (`pg_ctl stop -m immediate`), once, mid-run.

The supervisor brings each back (the recovery time is kill → ready again). At the end:
every completion must have exactly one successor, every reminder exactly one
notification, every notification's webhook must have arrived; webhook deliveries are
counted by delivery id (a retried call after a crash mid-call arrives twice with the same
id — receivers deduplicate on it: at-least-once by contract).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg

from apps.contracts.events import DEAD_LETTER_TOPICS
from apps.local.postgres import PostgresUnit, embedded
from apps.local.standin import RetryPolicy
from apps.local.supervisor import Backoff
from apps.local.system import Instance, LocalSystem, cluster_mesh_config
from apps.notification.signing import ID_HEADER
from bench.harness.database import bench_database
from bench.scenarios.recurring_load import USERS, seed_recurring
from bench.scenarios.reminders import seed_reminders

RECOVERY_TARGET_SECONDS = 10.0


@dataclass
class ChaosOptions:
    completions: int = 1_000
    reminders: int = 1_000
    seed: int = 7
    # Seconds over which completions are issued and reminders fall due.
    duration: float = 90.0
    # How long to wait, after the last kill, for everything to arrive (a webhook call cut
    # by a crash is retried when its claim's lease ends: 60 s in the notification service).
    drain_timeout: float = 240.0
    workers: int = 12
    work_dir: Path | None = None
    say: Callable[[str], None] = print


@dataclass
class Kill:
    target: str
    point: str
    at: float = 0.0  # seconds since the run started
    recovery: float | None = None  # kill → ready again; None: never came back
    note: str = ""


@dataclass
class ChaosReport:
    options: ChaosOptions
    kills: list[Kill] = field(default_factory=list)
    completions_one: int = 0
    completions_none: int = 0
    completions_many: int = 0
    reminders_one: int = 0
    reminders_none: int = 0
    reminders_many: int = 0
    webhook_deliveries: int = 0
    webhook_ids: int = 0
    webhook_duplicates: int = 0
    webhooks_missing: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    completion_retries: int = 0
    elapsed: float = 0.0

    @property
    def lost(self) -> int:
        return self.completions_none + self.reminders_none + self.webhooks_missing

    @property
    def doubled(self) -> int:
        return self.completions_many + self.reminders_many

    @property
    def recovered(self) -> bool:
        return all(
            k.recovery is not None and k.recovery <= RECOVERY_TARGET_SECONDS for k in self.kills
        )

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and self.recovered

    def table(self) -> str:
        o = self.options
        rows = [
            ("recurring-task completions", f"{o.completions}"),
            ("  with exactly one successor", f"{self.completions_one}"),
            ("  with none (lost)", f"{self.completions_none}"),
            ("  with more than one (doubled)", f"{self.completions_many}"),
            ("reminders", f"{o.reminders}"),
            ("  with exactly one notification", f"{self.reminders_one}"),
            ("  with none (lost)", f"{self.reminders_none}"),
            ("  with more than one (doubled)", f"{self.reminders_many}"),
            ("webhook deliveries received", f"{self.webhook_deliveries}"),
            ("  distinct delivery ids", f"{self.webhook_ids}"),
            ("  duplicates by delivery id", f"{self.webhook_duplicates}"),
            ("  notifications whose webhook never came", f"{self.webhooks_missing}"),
            *(
                (f"poison events in {topic}", str(count))
                for topic, count in sorted(self.dead_letters.items())
            ),
            ("completion requests retried by clients", f"{self.completion_retries}"),
            (
                "restarts seen (supervisor)",
                ", ".join(f"{unit} {n}" for unit, n in sorted(self.restarts.items())) or "none",
            ),
            ("run time", f"{self.elapsed:.0f} s"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        lines += ["", f"{'#':>2}  {'killed':<22} {'crash point':<34} {'at s':>6} {'back in s':>9}"]
        for number, kill in enumerate(self.kills, 1):
            back = "never" if kill.recovery is None else f"{kill.recovery:.2f}"
            lines.append(
                f"{number:>2}  {kill.target:<22} {kill.point:<34} {kill.at:>6.1f} {back:>9}"
                + (f"  ({kill.note})" if kill.note else "")
            )
        verdict = "PASS" if self.ok else "FAIL"
        lines += [
            "",
            f"{verdict}: lost {self.lost}, doubled {self.doubled}, every kill back within "
            f"{RECOVERY_TARGET_SECONDS:g} s: {'yes' if self.recovered else 'no'}",
        ]
        return "\n".join(lines)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender killed mid-call resets its connections: expected here


class WebhookReceiver:
    """A local webhook endpoint that counts deliveries by delivery id; `hold()` makes the
    next call wait (so the sender can be killed in the middle of it)."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.hold_seconds = 0.0
        self.in_call = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                delivery = self.headers.get(ID_HEADER, "?")
                with outer.lock:
                    outer.received[delivery] += 1
                    hold, outer.hold_seconds = outer.hold_seconds, 0.0
                if hold:
                    outer.in_call.set()
                    time.sleep(hold)
                try:
                    self.send_response(204)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender died meanwhile

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def hold(self, seconds: float) -> None:
        with self.lock:
            self.in_call.clear()
            self.hold_seconds = seconds

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def chaos_system(options: ChaosOptions) -> Iterator[tuple[LocalSystem, PostgresUnit, str]]:
    """An embedded PostgreSQL, a database on it and the supervised system on a durable
    broker, all under one scratch directory (deleted at the end)."""
    scratch = Path(tempfile.mkdtemp(prefix="todo-chaos-", dir=options.work_dir))
    try:
        with ExitStack() as stack:
            postgres = stack.enter_context(embedded(scratch / "pgdata", cleanup_mode="delete"))
            url = stack.enter_context(bench_database(postgres.url))
            system = LocalSystem(
                database_url=url,
                log_dir=scratch / "logs",
                mesh_config=cluster_mesh_config(
                    data_dir=scratch / "broker",
                    # The cluster's policy, budget ~25 s: longer than any outage here.
                    pubsub_inbound_retry=RetryPolicy(
                        policy="exponential",
                        initial_interval=0.5,
                        max_interval=10.0,
                        max_retries=8,
                    ),
                    component_retry=RetryPolicy(policy="constant", duration=1.0, max_retries=-1),
                    seed=options.seed,
                ),
                cron_every_seconds=1.0,
                backoff=Backoff(),
                extra_units=(postgres,),
                on_event=lambda line: options.say(f"  supervisor: {line}"),
                extra_env={
                    "LOG_LEVEL": "WARNING",
                    "OUTBOX_RELAY_POLL_SECONDS": "0.5",
                    "WEBHOOK_MAX_ATTEMPTS": "20",
                    "WEBHOOK_BACKOFF_BASE_SECONDS": "0.5",
                    "WEBHOOK_BACKOFF_MAX_SECONDS": "3",
                    "WEBHOOK_POLL_SECONDS": "0.5",
                    "WEBHOOK_TIMEOUT_SECONDS": "10",
                },
            )
            stack.enter_context(system)
            yield system, postgres, url
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class Completer:
    """Completes tasks through the API at a steady pace; retries until each succeeded."""

    def __init__(self, system: LocalSystem, ids: list[str], duration: float, workers: int):
        self.system, self.ids, self.duration, self.workers = system, ids, duration, workers
        self.in_flight = 0
        self.retries = 0
        self.done = 0

    async def run(self) -> None:
        tokens = {f"user-{n}": self.system.token(f"user-{n}", 7200) for n in range(USERS)}
        interval = self.duration / max(len(self.ids), 1)
        start = time.monotonic()
        queue = list(enumerate(self.ids))
        queue.reverse()

        async def worker() -> None:
            async with httpx.AsyncClient(base_url=self.system.url("backend"), timeout=15) as http:
                while queue:
                    number, task_id = queue.pop()
                    wait = start + number * interval - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    token = tokens[f"user-{number % USERS}"]
                    while True:
                        self.in_flight += 1
                        try:
                            answer = await http.post(
                                f"/api/v1/tasks/{task_id}/complete",
                                headers={"Authorization": f"Bearer {token}"},
                            )
                            if answer.status_code == 200:
                                break
                        except httpx.HTTPError:
                            pass
                        finally:
                            self.in_flight -= 1
                        self.retries += 1
                        await asyncio.sleep(0.2)
                    self.done += 1

        await asyncio.gather(*(worker() for _ in range(self.workers)))


def _wait_for(check: Callable[[], bool], timeout: float, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return False


def _database_up(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


class Chaos:
    """The kills, one after another, each waiting for the victim to be back."""

    def __init__(
        self,
        system: LocalSystem,
        postgres: PostgresUnit,
        url: str,
        receiver: WebhookReceiver,
        completer: Completer,
        options: ChaosOptions,
    ) -> None:
        self.system, self.postgres, self.url = system, postgres, url
        self.receiver, self.completer, self.options = receiver, completer, options
        self.rng = random.Random(options.seed)
        self.kills: list[Kill] = []
        self.started = time.monotonic()

    def _instance(self, app_id: str) -> Instance:
        return self.system.of(app_id)[0]

    def _kill_process(self, app_id: str, point: str, armed: Callable[[], bool]) -> Kill:
        kill = Kill(app_id, point)
        instance = self._instance(app_id)
        if not _wait_for(armed, timeout=30):
            kill.note = "moment not reached in 30 s; killed anyway"
        old = instance.process.pid
        kill.at = time.monotonic() - self.started
        self.system.kill(instance)
        moment = time.monotonic()
        back = _wait_for(
            lambda: instance.process.pid != old and self.system.ready(instance), 60, 0.05
        )
        kill.recovery = time.monotonic() - moment if back else None
        return kill

    def backend_mid_publish(self) -> Kill:
        mesh = self.system.standin.mesh
        mesh.faults.stall_after_publish = 3.0
        try:
            return self._kill_process(
                "backend",
                "relay publish stored, not acked",
                lambda: mesh.in_flight["publish", "backend"] > 0,
            )
        finally:
            mesh.faults.stall_after_publish = 0.0

    def backend_mid_completion(self) -> Kill:
        return self._kill_process(
            "backend", "completion requests in flight", lambda: self.completer.in_flight > 0
        )

    def recurring_mid_invocation(self) -> Kill:
        mesh = self.system.standin.mesh
        mesh.faults.stall_after_invoke = 3.0
        try:
            return self._kill_process(
                "recurring",
                "next-occurrence invoked, no answer",
                lambda: mesh.in_flight["invoke", "recurring"] > 0,
            )
        finally:
            mesh.faults.stall_after_invoke = 0.0

    def notification_mid_webhook(self) -> Kill:
        self.receiver.hold(5.0)
        try:
            return self._kill_process(
                "notification", "webhook call in flight", self.receiver.in_call.is_set
            )
        finally:
            self.receiver.hold(0.0)

    def sidecar(self, app_id: str) -> Kill:
        instance = self._instance(app_id)
        sidecar = instance.sidecar
        kill = Kill(f"{app_id} sidecar", "crash (ports gone, deliveries cut)")
        kill.at = time.monotonic() - self.started
        self.system.crash_sidecar(instance)
        moment = time.monotonic()
        back = _wait_for(lambda: sidecar.alive and sidecar.attached.is_set(), 60, 0.02)
        kill.recovery = time.monotonic() - moment if back else None
        return kill

    def database(self) -> Kill:
        kill = Kill("postgres", "pg_ctl stop -m immediate")
        kill.at = time.monotonic() - self.started
        moment = time.monotonic()
        self.postgres.crash()
        back = _wait_for(lambda: _database_up(self.url), 60, 0.1)
        kill.recovery = time.monotonic() - moment if back else None
        return kill

    def run(self) -> list[Kill]:
        plan: list[Callable[[], Kill]] = [
            self.backend_mid_publish,
            self.recurring_mid_invocation,
            self.notification_mid_webhook,
            self.backend_mid_completion,
            lambda: self.sidecar("backend"),
            lambda: self.sidecar("recurring"),
            lambda: self.sidecar("notification"),
        ]
        self.rng.shuffle(plan)
        plan.insert(len(plan) // 2, self.database)  # once, mid-run
        # One slot of the load's duration per kill, the moment random within it.
        slot = max(self.options.duration / len(plan), 1.0)
        for number, step in enumerate(plan):
            moment = self.started + slot * (number + self.rng.uniform(0.1, 0.6))
            time.sleep(max(0.5, moment - time.monotonic()))
            kill = step()
            self.kills.append(kill)
            back = "never" if kill.recovery is None else f"{kill.recovery:.2f}s"
            self.options.say(
                f"killed {kill.target} ({kill.point}) at {kill.at:.1f}s: back in {back}"
            )
        return self.kills


def _count(url: str, ids: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        successors: dict[str, int] = dict(
            connection.execute(
                "SELECT previous_task_id::text, count(*) FROM tasks "
                "WHERE previous_task_id = ANY(%s::uuid[]) GROUP BY 1",
                (ids,),
            ).fetchall()
        )
        per_reminder = connection.execute(
            "SELECT r.id, count(n.id) FROM reminders r "
            "LEFT JOIN notifications n ON n.reminder_id = r.id "
            "WHERE r.user_id LIKE 'reminded-%%' GROUP BY r.id"
        ).fetchall()
        webhook_rows = connection.execute(
            "SELECT status, count(*) FROM notification_deliveries "
            "WHERE channel = 'webhook' GROUP BY status"
        ).fetchall()
    by_status = {str(row[0]): int(row[1]) for row in webhook_rows}
    return {
        "completions_one": sum(1 for i in ids if successors.get(i) == 1),
        "completions_none": sum(1 for i in ids if i not in successors),
        "completions_many": sum(1 for i in ids if successors.get(i, 0) > 1),
        "reminders_one": sum(1 for row in per_reminder if row[1] == 1),
        "reminders_none": sum(1 for row in per_reminder if row[1] == 0),
        "reminders_many": sum(1 for row in per_reminder if row[1] > 1),
        "webhook_rows": sum(by_status.values()),
        "webhook_pending": by_status.get("pending", 0),
        "webhook_failed": by_status.get("failed", 0),
    }


def _webhook_ids(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        return {
            row[0]
            for row in connection.execute(
                "SELECT id::text FROM notification_deliveries WHERE channel = 'webhook'"
            )
        }


def run_chaos(options: ChaosOptions) -> ChaosReport:
    report = ChaosReport(options)
    say = options.say
    with WebhookReceiver() as receiver, chaos_system(options) as (system, postgres, url):
        load = f"{options.completions} recurring tasks, {options.reminders} reminders"
        say(f"system up; seeding {load}")
        for n in range(USERS):
            user = f"reminded-{n}"
            answer = httpx.put(
                f"{system.url('notification')}/api/v1/notification-settings",
                json={"webhook_url": receiver.url},  # a secret is generated
                headers={"Authorization": f"Bearer {system.token(user)}"},
                timeout=15,
            )
            answer.raise_for_status()
        ids = seed_recurring(url, options.completions)
        start = datetime.now(UTC) + timedelta(seconds=5)
        seed_reminders(url, options.reminders, start=start, window=options.duration)
        completer = Completer(system, ids, options.duration, options.workers)
        chaos = Chaos(system, postgres, url, receiver, completer, options)
        began = time.monotonic()
        killer = threading.Thread(target=lambda: chaos.run(), name="chaos")
        killer.start()
        asyncio.run(completer.run())
        say(f"all {completer.done} completions accepted after {time.monotonic() - began:.0f}s")
        killer.join()
        say("every kill done; waiting for the pipeline to drain")
        deadline = time.monotonic() + options.drain_timeout
        while True:
            counts = _count(url, ids)
            delivered = set(receiver.received)
            missing = len(_webhook_ids(url) - delivered)
            if (
                counts["completions_none"] == 0
                and counts["reminders_none"] == 0
                and counts["webhook_rows"] >= options.reminders
                and counts["webhook_pending"] == 0
                and missing == 0
            ) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        time.sleep(3.0)  # let late duplicates, if any, land before counting
        counts = _count(url, ids)
        ids_in_db = _webhook_ids(url)
        report.kills = chaos.kills
        report.completions_one = counts["completions_one"]
        report.completions_none = counts["completions_none"]
        report.completions_many = counts["completions_many"]
        report.reminders_one = counts["reminders_one"]
        report.reminders_none = counts["reminders_none"]
        report.reminders_many = counts["reminders_many"]
        with receiver.lock:
            report.webhook_deliveries = sum(receiver.received.values())
            report.webhook_ids = len(receiver.received)
            report.webhook_duplicates = report.webhook_deliveries - report.webhook_ids
            report.webhooks_missing = (
                len(ids_in_db - set(receiver.received))
                + max(0, options.reminders - len(ids_in_db))
                + counts["webhook_failed"]
            )
        mesh = system.standin.mesh
        report.dead_letters = {topic: len(mesh.messages(topic)) for topic in DEAD_LETTER_TOPICS}
        report.restarts = Counter(event.unit for event in system.supervisor.events)
        report.completion_retries = completer.retries
        report.elapsed = time.monotonic() - began
    return report


def summary_json(report: ChaosReport) -> str:
    return json.dumps(
        {"lost": report.lost, "doubled": report.doubled, "recovered": report.recovered}
    )
