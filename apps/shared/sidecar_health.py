"""Whether the pod's Dapr sidecar answers, for `/readyz` (check name `dapr-sidecar`).

Why readiness needs it: when the sidecar injector cannot be reached, a pod can start
with no daprd at all. Its database check alone would pass, the rollout would report
ready and the service would run with no pub/sub and no service invocation. Liveness
does not look at the sidecar: restarting the app does not bring a missing sidecar.

Which endpoint: `GET /v1.0/healthz/outbound`, not `/v1.0/healthz`. Both answer 204 when
healthy and 500 when not (Dapr health API reference,
https://docs.dapr.io/reference/api/health_api/). `/v1.0/healthz` also waits for daprd's
app channel, that is for this very app, and the Dapr docs warn against application code
depending on it because of that circular dependency
(https://docs.dapr.io/operations/resiliency/health-checks/sidecar-health/).
`/healthz/outbound` reports what this app needs from the sidecar: components loaded and
the API port open, so publish and invoke can work. It is what the SDK's
`wait_for_sidecar` checks before the first call (`apps.shared.dapr`). The full check is
not lost: the injector gives the daprd container its own readiness probe on
`/v1.0/healthz`, and a pod is ready only when all its containers are.

Health endpoints need no `dapr-api-token`: daprd exempts exactly these two paths from
API-token authentication (advisory GHSA-59m6-82qm-vqgj), so none is sent.

The address is the one the `dapr` SDK uses (`DAPR_HTTP_ENDPOINT`, else
`DAPR_RUNTIME_HOST`:`DAPR_HTTP_PORT`, default 127.0.0.1:3500). The injector sets
`DAPR_HTTP_PORT` in every container of the pod
(https://docs.dapr.io/reference/environment/); in a pod it never reached the default
port is closed, which is exactly the "no sidecar" answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import httpx
from dapr.clients.http.helpers import get_api_url
from fastapi import FastAPI

from apps.shared.logs import get_logger
from apps.shared.settings import ServiceSettings

SIDECAR_CHECK: Final = "dapr-sidecar"

_log = get_logger("apps.sidecar_health")


def sidecar_health_url() -> str:
    """The sidecar's outbound health endpoint, at the address the SDK calls."""
    return f"{get_api_url()}/healthz/outbound"


class SidecarProbe:
    """One HTTP client per app lifetime, asking the sidecar whether it is healthy."""

    def __init__(self, *, url: str, timeout_seconds: float) -> None:
        self.url = url
        self._timeout = timeout_seconds
        # trust_env=False: the sidecar is on loopback; a proxy from the environment
        # must not sit between the app and its own sidecar.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            trust_env=False,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=1),
        )
        self._last_failure: str | None = None

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    async def failure(self) -> str | None:
        """None when the sidecar answered 2xx in time, else why not (for the log)."""
        try:
            # httpx's timeout applies per phase (connect, read, ...); this bounds the
            # whole call, so a sidecar that trickles bytes cannot hold the probe.
            async with asyncio.timeout(self._timeout):
                response = await self._client.get(self.url)
        except TimeoutError:
            reason: str | None = f"no answer within {self._timeout:g}s"
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            reason = None if response.is_success else f"answered {response.status_code}"
        self._report(reason)
        return reason

    def _report(self, reason: str | None) -> None:
        """Log changes only: the kubelet probes every few seconds."""
        if reason == self._last_failure:
            return
        if reason is None:
            _log.info("dapr sidecar healthy again", url=self.url)
        else:
            _log.warning("dapr sidecar not healthy", url=self.url, reason=reason)
        self._last_failure = reason

    async def aclose(self) -> None:
        await self._client.aclose()


@asynccontextmanager
async def open_sidecar_probe(app: FastAPI, settings: ServiceSettings) -> AsyncIterator[None]:
    """Put `sidecar_probe` on `app.state` for the app's lifetime (None: not required)."""
    if not settings.dapr_sidecar_required:
        app.state.sidecar_probe = None
        yield
        return
    probe = SidecarProbe(
        url=sidecar_health_url(), timeout_seconds=settings.dapr_sidecar_probe_timeout_seconds
    )
    app.state.sidecar_probe = probe
    try:
        yield
    finally:
        await probe.aclose()
