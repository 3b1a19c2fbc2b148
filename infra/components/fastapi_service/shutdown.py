"""The pod's shutdown budget: preStop, the app's drain, daprd's, and the grace period.

On deletion the kubelet runs the app container's `preStop` and sends daprd SIGTERM at
the same moment (daprd has no preStop); the endpoints controller drops the terminating
pod from the Service and Envoy Gateway's EDS at once, whatever its readiness.

1. preStop `sleep` (the Kubernetes sleep action, GA in 1.32; DOKS >= 1.33 here, and the
   image needs no shell for it): `pre_stop` seconds while Envoy and kube-proxy drop the
   pod; the app still serves whatever was already routed to it.
2. The app gets SIGTERM: `/readyz` fails (apps/shared/shutdown.py), uvicorn stops
   accepting and lets requests in flight finish, at most `http_drain`
   (`UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN`); then each background worker finishes its round
   and gives back its claims, at most `worker_drain` (`SHUTDOWN_DRAIN_SECONDS`).
3. daprd blocks its own shutdown for `dapr.io/block-shutdown-duration` or until the app
   reports unhealthy, whichever is first, keeping its API up so the relay can still
   publish during the app's drain (dapr/dapr#4313, daprd `--dapr-block-shutdown-duration`,
   https://docs.dapr.io/reference/arguments-annotations-overview/); then
   `dapr.io/graceful-shutdown-seconds` bounds its own drain of in-flight operations
   (https://docs.dapr.io/reference/api/shutdown_api/). With app health checks on
   (`/healthz`), the block ends early once uvicorn has stopped listening and daprd's
   app health probe has failed; the relay treats a vanished sidecar as a failed publish
   (its rows stay unpublished and unclaimed), so that costs no event.

Arithmetic (checked below): preStop 5 + app drain (10 + 10) + sidecar drain 5 = 30 <
terminationGracePeriodSeconds 40; daprd's block covers preStop + app drain (25 s).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShutdownBudget:
    """Seconds for each phase of a pod's shutdown, and what they add up to."""

    pre_stop: int = 5
    """preStop sleep: endpoint removal reaches Envoy and kube-proxy."""
    http_drain: int = 10
    """uvicorn's graceful shutdown for requests in flight."""
    worker_drain: int = 10
    """Background workers' last round (outbox relay batch, webhook calls)."""
    sidecar_drain: int = 5
    """daprd's graceful shutdown after its block ends."""
    margin: int = 10
    """Slack for the kubelet, slow nodes and the last log lines."""

    @property
    def app_drain(self) -> int:
        return self.http_drain + self.worker_drain

    @property
    def block_shutdown(self) -> int:
        """daprd keeps its API up this long from SIGTERM: the app's whole stop."""
        return self.pre_stop + self.app_drain

    @property
    def termination_grace(self) -> int:
        return self.pre_stop + self.app_drain + self.sidecar_drain + self.margin

    def __post_init__(self) -> None:
        total = self.pre_stop + self.app_drain + self.sidecar_drain
        if not total < self.termination_grace:
            raise ValueError(f"shutdown phases ({total}s) must fit the grace period")

    def annotations(self) -> dict[str, str]:
        return {
            "dapr.io/block-shutdown-duration": f"{self.block_shutdown}s",
            "dapr.io/graceful-shutdown-seconds": str(self.sidecar_drain),
        }

    def app_env(self) -> dict[str, str]:
        return {
            "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": str(self.http_drain),
            "SHUTDOWN_DRAIN_SECONDS": str(self.worker_drain),
        }


SHUTDOWN = ShutdownBudget()
