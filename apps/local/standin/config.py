"""What the stand-in is configured with: the cluster-side Dapr settings it models.

The names mirror Dapr's own resources so the local picture can be checked against the
cluster's: `RetryPolicy` is a Resiliency retry policy, `CronBinding` a `bindings.cron`
Component, `AccessRule` a Configuration `accessControl` policy entry, and the partition
count stands for the Kafka topic's partitions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from apps.contracts.services import PUBSUB, SECRET_STORE, STATE_STORE


@dataclass(frozen=True)
class RetryPolicy:
    """A Dapr resiliency retry policy.

    `constant` waits `duration` between attempts; `exponential` starts at
    `initial_interval` and grows by 1.5 with ±50 % jitter up to `max_interval`, like
    Dapr's backoff. `max_retries = -1` retries forever.
    """

    policy: Literal["constant", "exponential"] = "constant"
    duration: float = 1.0
    initial_interval: float = 0.5
    max_interval: float = 60.0
    max_retries: int = 3

    def allows(self, retries_done: int) -> bool:
        """Whether another retry may follow `retries_done` retries."""
        return self.max_retries < 0 or retries_done < self.max_retries

    def delay(self, retries_done: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retries_done + 1`."""
        if self.policy == "constant":
            return self.duration
        base = min(self.initial_interval * 1.5**retries_done, self.max_interval)
        jitter = (rng or random).uniform(-0.5, 0.5) * base
        return max(0.0, min(base + jitter, self.max_interval))


# Dapr's built-in service invocation retries (DaprBuiltInServiceRetries): 3 retries, 1 s apart,
# on failures to reach the target.
BUILTIN_SERVICE_RETRIES = RetryPolicy(policy="constant", duration=1.0, max_retries=3)

# What the Kafka component does when the runtime hands an error back (no dead-letter topic):
# consumeRetryEnabled with the component's default backoff — constant 5 s, forever.
KAFKA_COMPONENT_RETRIES = RetryPolicy(policy="constant", duration=5.0, max_retries=-1)


@dataclass(frozen=True)
class CronBinding:
    """A `bindings.cron` input binding: POST `/<name>` (or `route`) every `every_seconds`.

    Dapr's schedule would read `@every 5s`; only that form is modelled.
    """

    name: str
    every_seconds: float
    route: str | None = None

    @property
    def path(self) -> str:
        return "/" + (self.route or self.name).lstrip("/")


@dataclass(frozen=True)
class AccessRule:
    """One `accessControl` policy entry of the target app: `caller` may use `verb` on paths
    starting with `path_prefix`. A target with rules denies everything else (defaultAction
    deny)."""

    caller: str
    verb: str
    path_prefix: str


@dataclass(frozen=True)
class SidecarSpec:
    """One app instance and how its sidecar talks to it (daprd's --app-id, --app-port, ...)."""

    app_id: str
    app_port: int
    app_token: str | None = None
    api_token: str | None = None
    bindings: tuple[CronBinding, ...] = ()
    grpc_port: int = 0
    http_port: int = 0


@dataclass
class MeshConfig:
    """The cluster-side settings every sidecar shares."""

    pubsub_name: str = PUBSUB
    state_store_name: str = STATE_STORE
    secret_store_name: str = SECRET_STORE
    partitions: int = 8
    # Resiliency: targets.components.<pubsub>.inbound.retry — retries of a delivery the app
    # failed or asked to retry, before the message goes to the dead-letter topic.
    pubsub_inbound_retry: RetryPolicy | None = field(
        default_factory=lambda: RetryPolicy(
            policy="exponential", initial_interval=0.2, max_interval=5.0, max_retries=10
        )
    )
    component_retry: RetryPolicy = KAFKA_COMPONENT_RETRIES
    service_retry: RetryPolicy = BUILTIN_SERVICE_RETRIES
    # How long one delivery or invocation may take before it counts as failed.
    app_timeout_seconds: float = 30.0
    # How long a sidecar keeps asking a starting app for its subscriptions.
    app_startup_timeout_seconds: float = 60.0
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    access_control: dict[str, tuple[AccessRule, ...]] = field(default_factory=dict)
    seed: int | None = None
    # Where the broker keeps its topics and consumer offsets (None: in memory only).
    data_dir: Path | None = None
