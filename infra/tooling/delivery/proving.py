"""`todo-infra proving`: what the proving ground (a kind cluster in CI) runs and checks.

    todo-infra proving helm-values --plan-dir build/plan/kind --out build/proving/helm
    todo-infra proving helm-template --helm-dir build/proving/helm --out build/proving/rendered
    todo-infra proving crd-schemas --out build/proving/crd-schemas
    todo-infra proving scenarios --base-url http://127.0.0.1:18080 --host-header api.todo.localhost

`scenarios` runs against a deployed stack, through the edge, real daprd sidecars and a real
Kafka (.github/workflows/proving-ground.yml, never here):

1. a recurring task completed → exactly one next occurrence (after a settling wait: a
   redelivered `task.completed.v1` must not make a second one);
2. a reminder → exactly one notification (same settling wait);
3. a poison event (a `task.completed.v1` CloudEvent whose data fails the envelope schema)
   produced straight to `task-events` → it lands on `task-events-dlq`, read back with the
   Kafka console consumer inside the broker pod.

The logic is tested against fakes (tests/infra/test_proving_scenarios.py); the commands it
runs in the cluster go through `Kubectl`, so the tests see every argument.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from infra.tooling.delivery.smoke import API, SmokeFailure, SmokeRun

# Names the program gives these (infra/components/kafka.py; architecture §10).
KAFKA_NAMESPACE = "kafka"
KAFKA_CLUSTER = "todo"
KAFKA_USER_SECRET = "todo-apps-password"
KAFKA_USER = "todo-apps"
TASK_EVENTS = "task-events"
TASK_EVENTS_DLQ = "task-events-dlq"
# The user's ACLs allow the apps' consumer groups only. The reader assigns partitions
# itself (no group join, so the recurring service's group is not rebalanced) and never
# commits; the group id only satisfies the ACL if the client fetches offsets.
DLQ_READER_GROUP = "recurring"
KAFKA_BIN = "/opt/kafka/bin"  # Strimzi's Kafka image
CLIENT_CONFIG = "/tmp/proving-client.properties"  # noqa: S108 (inside the broker pod)


class ScenarioFailure(SmokeFailure):
    """A proving-ground scenario did not hold; the message says what was seen."""


Runner = Callable[[list[str], str | None], str]
"""Runs argv with optional stdin and returns stdout; raises CalledProcessError on failure."""


def run_command(argv: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)
    return done.stdout


@dataclass
class Kubectl:
    """kubectl against one context."""

    context: str
    run: Runner = run_command

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.run(["kubectl", "--context", self.context, *args], stdin)


@dataclass
class KafkaProbe:
    """Produce to and read from topics with Kafka's console tools in the broker pod."""

    kubectl: Kubectl
    namespace: str = KAFKA_NAMESPACE
    cluster: str = KAFKA_CLUSTER
    _pod: str | None = field(default=None, init=False)

    def pod(self) -> str:
        if self._pod is None:
            # Strimzi labels its broker pods with the cluster and the broker role.
            selector = f"strimzi.io/cluster={self.cluster},strimzi.io/broker-role=true"
            name = self.kubectl(
                "get", "pods", "-n", self.namespace, "-l", selector,
                "-o", "jsonpath={.items[0].metadata.name}",
            ).strip()  # fmt: skip
            if not name:
                raise ScenarioFailure(f"no Kafka broker pod ({selector}) in {self.namespace}")
            self._pod = name
        return self._pod

    def _exec(self, *argv: str, stdin: str | None = None) -> str:
        return self.kubectl(
            "exec", "-i", "-n", self.namespace, self.pod(), "-c", "kafka", "--", *argv,
            stdin=stdin,
        )  # fmt: skip

    def write_client_config(self) -> None:
        """SCRAM credentials of the apps' user, written in the pod from stdin (not argv)."""
        encoded = self.kubectl(
            "get", "secret", "-n", self.namespace, KAFKA_USER_SECRET,
            "-o", "jsonpath={.data.password}",
        )  # fmt: skip
        password = base64.b64decode(encoded.strip()).decode()
        config = "\n".join(
            [
                "security.protocol=SASL_PLAINTEXT",
                "sasl.mechanism=SCRAM-SHA-512",
                "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
                f'required username="{KAFKA_USER}" password="{password}";',
                f"group.id={DLQ_READER_GROUP}",
                "enable.auto.commit=false",
                "",
            ]
        )
        self._exec("sh", "-c", f"umask 077 && cat > {CLIENT_CONFIG}", stdin=config)

    def produce(self, topic: str, message: str) -> None:
        # --producer.config / --consumer.config: deprecated by KIP-1147 (Kafka 4.2) for
        # --command-config but still accepted by Kafka 4.x (apache/kafka PR #20479).
        self._exec(
            f"{KAFKA_BIN}/kafka-console-producer.sh", "--bootstrap-server", "localhost:9092",
            "--topic", topic, "--producer.config", CLIENT_CONFIG,
            stdin=message + "\n",
        )  # fmt: skip

    def partitions(self, topic: str) -> int:
        found = self.kubectl(
            "get", "kafkatopic", "-n", self.namespace, topic, "-o", "jsonpath={.spec.partitions}"
        ).strip()
        return int(found) if found else 1

    def read_all(self, topic: str, timeout_ms: int = 15000) -> list[str]:
        """Every message on `topic`, partition by partition, from the earliest offset."""
        messages: list[str] = []
        for partition in range(self.partitions(topic)):
            out = self._exec(
                f"{KAFKA_BIN}/kafka-console-consumer.sh", "--bootstrap-server", "localhost:9092",
                "--topic", topic, "--partition", str(partition), "--offset", "earliest",
                "--timeout-ms", str(timeout_ms), "--consumer.config", CLIENT_CONFIG,
            )  # fmt: skip
            messages += [line for line in out.splitlines() if line.strip()]
        return messages


def poison_event(marker: str) -> str:
    """A CloudEvent the recurring service routes to its `task.completed.v1` handler whose
    data fails the envelope schema: the consumer answers DROP, and Dapr moves a dropped
    event to the subscription's dead-letter topic (apps/shared/dapr_consumer.py)."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": marker,
            "source": "proving-ground",
            "type": "task.completed.v1",
            "datacontenttype": "application/json",
            "data": {"event_id": marker, "event_type": "task.completed.v1", "data": "poison"},
        },
        separators=(",", ":"),
    )


@dataclass
class Scenarios:
    """The three end-to-end scenarios; `smoke` talks to the API through the edge."""

    smoke: SmokeRun
    kafka: KafkaProbe
    settle: float = 20.0
    timeout: float = 180.0
    poll_interval: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def recurring_exactly_once(self) -> dict[str, Any]:
        occurrence = self.smoke.recurrence()
        self.sleep(self.settle)  # a duplicate would come from a redelivery, later
        page = self.smoke._json(
            self.smoke.api.get(
                f"{API}/tasks",
                params={"status": "open", "sort": "created_at", "order": "desc", "limit": 200},
            ),
            200,
            "list open tasks",
        )
        series = [t for t in page["items"] if t.get("series_id") == occurrence["series_id"]]
        for task in series:
            if str(task["id"]) not in self.smoke.created:
                self.smoke.created.append(str(task["id"]))  # cleaned up too
        if len(series) != 1:
            raise ScenarioFailure(
                f"completing a recurring task made {len(series)} open occurrences, expected 1: "
                f"{[t['id'] for t in series]}"
            )
        return occurrence

    def reminder_exactly_once(self) -> dict[str, Any]:
        notification = self.smoke.reminder()
        self.sleep(self.settle)
        page = self.smoke._json(
            self.smoke.notifications.get(f"{API}/notifications"), 200, "list notifications"
        )
        items = page["items"] if isinstance(page, dict) else page
        same = [n for n in items if str(n.get("task_id")) == str(notification["task_id"])]
        if len(same) != 1:
            raise ScenarioFailure(
                f"one reminder made {len(same)} notifications, expected 1: "
                f"{[n.get('id') for n in same]}"
            )
        return notification

    def poison_to_dead_letter(self, marker: str | None = None) -> str:
        marker = marker or f"proving-poison-{uuid.uuid4().hex[:12]}"
        self.kafka.write_client_config()
        self.kafka.produce(TASK_EVENTS, poison_event(marker))
        deadline = time.monotonic() + self.timeout
        while True:
            found = [m for m in self.kafka.read_all(TASK_EVENTS_DLQ) if marker in m]
            if found:
                return found[0]
            if time.monotonic() >= deadline:
                raise ScenarioFailure(
                    f"the poison event {marker} did not reach {TASK_EVENTS_DLQ} "
                    f"within {self.timeout:.0f}s"
                )
            self.sleep(self.poll_interval)

    def steps(self) -> list[tuple[str, Callable[[], object]]]:
        return [
            ("recurring task completed → exactly one next occurrence", self.recurring_exactly_once),
            ("reminder → exactly one notification", self.reminder_exactly_once),
            (f"poison event → {TASK_EVENTS_DLQ}", self.poison_to_dead_letter),
        ]


# --------------------------------------------------------------------------- commands

app = typer.Typer(
    help="The proving ground's steps: Helm values and CRD schemas from the plan, scenarios.",
    no_args_is_help=True,
)


@app.command("helm-values")
def helm_values(
    plan_dir: Annotated[Path, typer.Option("--plan-dir", help="An offline plan's folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for values/ and releases.json.")],
) -> None:
    """One values file per Helm release of the plan, and releases.json listing the charts."""
    from infra.tooling.delivery.helm_render import PlanReadError, write_helm_values

    try:
        releases = write_helm_values(plan_dir, out)
    except PlanReadError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    for release in releases:
        where = f" ({release.repo})" if release.repo else ""
        typer.echo(f"{release.namespace}/{release.name}: {release.chart} {release.version}{where}")
        for path in release.placeholders:
            typer.echo(f"  secret value {path}: rendered with a placeholder")


@app.command("helm-template")
def helm_template(
    helm_dir: Annotated[Path, typer.Option("--helm-dir", help="What helm-values wrote.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <release>.yaml.")],
) -> None:
    """`helm template` every release with the program's values (needs helm and the network)."""
    from infra.tooling.delivery.helm_render import render_releases

    for path in render_releases(helm_dir, out):
        typer.echo(str(path))


@app.command("crd-schemas")
def crd_schemas(
    out: Annotated[Path, typer.Option("--out", help="Folder for <group>/<kind>_<version>.json.")],
) -> None:
    """The vendored CRDs as kubeconform JSON schemas (strict: unknown fields fail)."""
    from infra.tooling.delivery.crd_schemas import SCHEMA_LOCATION, write_crd_schemas
    from infra.tooling.plan.reference import ReferenceDataError

    try:
        written = write_crd_schemas(out)
    except ReferenceDataError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{len(written)} schemas; kubeconform -schema-location '{out}/{SCHEMA_LOCATION}'")


@app.command()
def scenarios(
    base_url: Annotated[str, typer.Option(envvar="SMOKE_BASE_URL", help="API base URL.")],
    host_header: Annotated[
        str | None, typer.Option(envvar="SMOKE_HOST_HEADER", help="Host header (port-forward).")
    ] = None,
    kube_context: Annotated[str, typer.Option(help="kubectl context.")] = "kind-todo-proving",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each effect.")] = 180.0,
    settle: Annotated[float, typer.Option(help="Seconds to watch for duplicates.")] = 20.0,
) -> None:
    """Recurrence and reminder exactly once, and a poison event dead-lettered; exit 1 on failure."""
    import os

    from infra.tooling.delivery.smoke import clients, mint_token

    secret = os.environ.get("AUTH_JWT_SECRET")
    if not secret:
        typer.echo("error: set AUTH_JWT_SECRET (the stack's authJwtKey output)", err=True)
        raise typer.Exit(2)
    run_id = uuid.uuid4().hex[:10]
    token = mint_token(secret, f"proving-{run_id}")
    with clients(base_url, base_url, token, 15.0, host_header) as (api, notes):
        smoke = SmokeRun(api, notes, run_id=run_id, timeout=timeout)
        suite = Scenarios(smoke, KafkaProbe(Kubectl(kube_context)), settle=settle, timeout=timeout)
        failed = run_steps(suite.steps(), typer.echo)
        left = smoke.cleanup()
        if left:
            typer.echo(f"could not delete proving tasks {left}")
    if failed:
        raise typer.Exit(1)


def run_steps(steps: list[tuple[str, Callable[[], object]]], say: Callable[[str], None]) -> bool:
    """Run every step (one failing does not hide the others); True if any failed."""
    import httpx

    failed = False
    for name, step in steps:
        started = time.monotonic()
        try:
            step()
        except (SmokeFailure, httpx.HTTPError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", None) or ""
            say(f"FAIL {name}: {error} {detail}".rstrip())
            failed = True
            continue
        say(f"ok   {name} ({time.monotonic() - started:.1f}s)")
    return failed


def register(root: typer.Typer) -> None:
    """`todo-infra proving ...` (infra/tooling/cli.py COMMAND_MODULES)."""
    root.add_typer(app, name="proving")
