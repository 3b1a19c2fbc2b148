"""A stand-in for the Dapr sidecar, for tests and `todo-local` (the real daprd cannot run here).

It speaks the protocol the `dapr` SDK speaks — Dapr's gRPC API for publish, state and
secrets, the HTTP API for health and service invocation — and behaves towards the apps
the way daprd does: it reads each app's `GET /dapr/subscribe`, delivers CloudEvents to
the routes, honours SUCCESS/RETRY/DROP, 404 and other statuses, applies a
resiliency-like retry policy, then dead-letters; one consumer group per app id, order
per partition key; the cron input binding; faults on demand.

`Mesh` is the whole cluster-side picture (broker, apps, their sidecars); `MeshThread`
runs one on its own event loop for synchronous callers such as pytest and the CLI.
"""

from apps.local.standin.config import (
    AccessRule,
    CronBinding,
    MeshConfig,
    RetryPolicy,
    SidecarSpec,
)
from apps.local.standin.faults import Faults
from apps.local.standin.mesh import Mesh
from apps.local.standin.runner import MeshThread
from apps.local.standin.sidecar import Sidecar

__all__ = [
    "AccessRule",
    "CronBinding",
    "Faults",
    "Mesh",
    "MeshConfig",
    "MeshThread",
    "RetryPolicy",
    "Sidecar",
    "SidecarSpec",
]
