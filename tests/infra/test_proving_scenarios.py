"""`todo-infra proving scenarios`: exactly-once effects and the dead-letter topic.

The real run is the proving-ground workflow (a kind cluster with daprd and Kafka). Here the
API is test_smoke's `FakeDeployment` (which can be told to duplicate effects, as a
redelivered event would), and Kafka is `FakeBroker`: a stand-in for the `kubectl` commands
`KafkaProbe` runs, recording each argv and routing a poison event to the dead-letter topic
only if the fake consumer is told to.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from typing import Any

import httpx
import pytest

from infra.tooling.delivery.proving import (
    CLIENT_CONFIG,
    TASK_EVENTS,
    TASK_EVENTS_DLQ,
    KafkaProbe,
    Kubectl,
    ScenarioFailure,
    Scenarios,
    poison_event,
    run_steps,
)
from infra.tooling.delivery.smoke import SmokeRun
from tests.infra.test_smoke import NOW, FakeDeployment


class DuplicatingDeployment(FakeDeployment):
    """A pipeline that handles some events twice (what exactly-once must rule out)."""

    def __init__(self, *, twice: set[str]) -> None:
        super().__init__(delay=2)
        self.twice = twice

    def _tick(self) -> None:
        completions, reminders = list(self.pending_completions), list(self.pending_reminders)
        super()._tick()
        if not self.pending_completions and not self.pending_reminders:
            if "completion" in self.twice:
                self.pending_completions = completions
                self.twice.discard("completion")
            if "reminder" in self.twice:
                self.pending_reminders = reminders
                self.twice.discard("reminder")


class FakeBroker:
    """Answers KafkaProbe's kubectl calls; topics are lists of messages."""

    def __init__(self, *, dead_letters: bool = True) -> None:
        self.topics: dict[str, list[str]] = {TASK_EVENTS: [], TASK_EVENTS_DLQ: []}
        self.dead_letters = dead_letters
        self.calls: list[tuple[list[str], str | None]] = []
        self.files: dict[str, str] = {}

    def __call__(self, argv: list[str], stdin: str | None) -> str:
        self.calls.append((argv, stdin))
        args = argv[3:]  # after kubectl --context <ctx>
        if args[:2] == ["get", "pods"]:
            return "todo-dual-role-0"
        if args[:2] == ["get", "secret"]:
            return base64.b64encode(b"s3cret").decode()
        if args[:2] == ["get", "kafkatopic"]:
            return "3"
        if args[0] == "exec":
            command = args[args.index("--") + 1 :]
            if command[0] == "sh":
                self.files[CLIENT_CONFIG] = stdin or ""
                return ""
            topic = command[command.index("--topic") + 1]
            if command[0].endswith("kafka-console-producer.sh"):
                assert stdin is not None
                self.topics[topic].append(stdin.strip())
                if self.dead_letters:  # what daprd does with a DROP answer
                    self.topics[TASK_EVENTS_DLQ].append(stdin.strip())
                return ""
            if command[0].endswith("kafka-console-consumer.sh"):
                partition = int(command[command.index("--partition") + 1])
                return "\n".join(self.topics[topic]) + "\n" if partition == 0 else ""
        raise subprocess.CalledProcessError(1, argv, "", "unexpected command")


def _scenarios(fake: FakeDeployment, broker: FakeBroker | None = None) -> Scenarios:
    transport = httpx.MockTransport(fake.handle)
    headers = {"Authorization": "Bearer token"}
    api = httpx.Client(transport=transport, base_url="http://127.0.0.1:18080", headers=headers)
    smoke = SmokeRun(
        api, api, run_id="p1", timeout=5, poll_interval=0, clock=lambda: NOW, sleep=lambda _: None
    )
    kafka = KafkaProbe(Kubectl("kind-todo-proving", run=broker or FakeBroker()))
    return Scenarios(smoke, kafka, settle=0, timeout=0.05, poll_interval=0, sleep=lambda _: None)


def test_one_completion_one_occurrence_passes() -> None:
    scenarios = _scenarios(FakeDeployment(delay=2))
    occurrence = scenarios.recurring_exactly_once()
    assert occurrence["id"] in scenarios.smoke.created


def test_a_second_occurrence_fails_and_is_cleaned_up() -> None:
    fake = DuplicatingDeployment(twice={"completion"})
    scenarios = _scenarios(fake)
    with pytest.raises(ScenarioFailure, match="made 2 open occurrences, expected 1"):
        scenarios.recurring_exactly_once()
    scenarios.smoke.cleanup()
    assert fake.tasks == {}  # both occurrences were recorded for cleanup


def test_one_reminder_one_notification_passes() -> None:
    notification = _scenarios(FakeDeployment(delay=2)).reminder_exactly_once()
    assert notification["task_id"]


def test_a_duplicate_notification_fails() -> None:
    scenarios = _scenarios(DuplicatingDeployment(twice={"reminder"}))
    with pytest.raises(ScenarioFailure, match="made 2 notifications, expected 1"):
        scenarios.reminder_exactly_once()


def test_the_poison_event_is_read_back_from_the_dead_letter_topic() -> None:
    broker = FakeBroker()
    found = _scenarios(FakeDeployment(), broker).poison_to_dead_letter("proving-poison-x1")
    assert json.loads(found)["id"] == "proving-poison-x1"
    assert broker.topics[TASK_EVENTS] == [poison_event("proving-poison-x1")]
    # The credentials travel on stdin into a file in the pod, never in an argv.
    assert 'password="s3cret"' in broker.files[CLIENT_CONFIG]
    assert all("s3cret" not in " ".join(argv) for argv, _ in broker.calls)
    consumers = [argv for argv, _ in broker.calls if any("consumer" in a for a in argv)]
    # Every partition of the dead-letter topic, from the start, without joining a group.
    assert [c[c.index("--partition") + 1] for c in consumers] == ["0", "1", "2"]
    assert all("--offset" in c and "--group" not in c for c in consumers)
    assert all(
        argv[:3] == ["kubectl", "--context", "kind-todo-proving"] for argv, _ in broker.calls
    )


def test_a_poison_event_that_never_reaches_the_dead_letter_topic_fails() -> None:
    scenarios = _scenarios(FakeDeployment(), FakeBroker(dead_letters=False))
    with pytest.raises(ScenarioFailure, match="did not reach task-events-dlq"):
        scenarios.poison_to_dead_letter("proving-poison-x2")


def test_the_poison_event_fails_the_envelope_schema_the_consumer_checks() -> None:
    """DROP (→ dead letter) needs the consumer to call it poison, not to retry it."""
    from apps.shared.dapr_consumer import PoisonEvent, read_event

    event: dict[str, Any] = json.loads(poison_event(f"proving-poison-{uuid.uuid4().hex}"))
    assert event["type"] == "task.completed.v1"
    with pytest.raises(PoisonEvent, match="schema"):
        read_event(json.dumps(event).encode(), accepted_types=("task.completed.v1",))


def test_every_step_runs_and_a_failure_is_reported() -> None:
    said: list[str] = []

    def broken() -> None:
        raise ScenarioFailure("no")

    failed = run_steps([("first", broken), ("second", lambda: None)], said.append)
    assert failed
    assert said[0] == "FAIL first: no"
    assert said[1].startswith("ok   second")
    assert not run_steps([("only", lambda: None)], said.append)
