"""One sidecar: the gRPC and HTTP API ports of one app instance, and its app channel.

A sidecar can be taken down and brought back on the same ports (the "sidecar absent"
fault): while down, its ports refuse connections, it leaves its consumer groups (its
partitions move to the app's other instances) and its cron bindings stop firing.
"""

from __future__ import annotations

import asyncio
import json
import socket

import grpc
import structlog
import uvicorn
from dapr.proto import api_service_v1

from apps.local.standin.channel import AppChannel, ChannelError
from apps.local.standin.config import SidecarSpec
from apps.local.standin.grpc_api import DaprApi
from apps.local.standin.http_api import build_http_api
from apps.local.standin.protocols import Membership
from apps.local.standin.routing import Subscription, SubscriptionError, parse_subscriptions

log = structlog.get_logger("standin.sidecar")


def _listen(port: int) -> socket.socket:
    """A listening loopback socket on `port` (0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(256)
    sock.setblocking(False)
    return sock


class Sidecar:
    """One app instance's sidecar; the mesh sees it as a `protocols.Instance`."""

    def __init__(self, mesh: Membership, spec: SidecarSpec, instance_id: str) -> None:
        self.mesh = mesh
        self.spec = spec
        self.app_id = spec.app_id
        self.instance_id = instance_id
        self.grpc_port = spec.grpc_port
        self.http_port = spec.http_port
        self.channel = AppChannel(
            port=spec.app_port, app_token=spec.app_token, timeout=mesh.config.app_timeout_seconds
        )
        self.subscriptions: list[Subscription] = []
        self.alive = False
        self.attached = asyncio.Event()
        self._grpc: grpc.aio.Server | None = None
        self._http: uvicorn.Server | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def env(self) -> dict[str, str]:
        """The DAPR_* variables the app instance needs to find this sidecar."""
        variables = {
            "DAPR_HTTP_PORT": str(self.http_port),
            "DAPR_GRPC_PORT": str(self.grpc_port),
            "DAPR_RUNTIME_HOST": "127.0.0.1",
        }
        if self.spec.api_token:
            variables["DAPR_API_TOKEN"] = self.spec.api_token
        return variables

    async def start(self) -> None:
        """Open both API ports, then attach to the app in the background."""
        await self._open_ports()
        self.alive = True
        self.attached.clear()
        self._spawn(self._attach())

    async def _open_ports(self) -> None:
        server = grpc.aio.server()
        api_service_v1.add_DaprServicer_to_server(DaprApi(self, self.mesh), server)  # type: ignore[no-untyped-call]
        self.grpc_port = server.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        await server.start()
        self._grpc = server

        sock = _listen(self.http_port)
        self.http_port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_http_api(self, self.mesh),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._http = uvicorn.Server(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Close the ports and leave the groups (the sidecar is absent)."""
        self.alive = False
        self.attached.clear()
        await self.mesh.detach(self)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            self._http.force_exit = True
            await asyncio.gather(self._http_task, return_exceptions=True)
            self._http = None
        if self._grpc is not None:
            await self._grpc.stop(grace=None)
            self._grpc = None
        await self.channel.close()

    def _spawn(self, coroutine: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _attach(self) -> None:
        """What daprd does once the app listens: read subscriptions, check bindings, subscribe."""
        self.subscriptions = await self._load_subscriptions()
        for subscription in self.subscriptions:
            if subscription.pubsub_name != self.mesh.config.pubsub_name:
                log.error("unknown pubsub in subscription", pubsub=subscription.pubsub_name)
                continue
            await self.mesh.join(self, subscription)
        for binding in self.spec.bindings:
            if await self._app_listens_on(binding.path):
                self._spawn(self._fire_cron(binding.path, binding.every_seconds))
            else:
                log.error("app does not listen on binding route", route=binding.path)
        self.attached.set()

    async def _load_subscriptions(self) -> list[Subscription]:
        deadline = asyncio.get_running_loop().time() + self.mesh.config.app_startup_timeout_seconds
        while True:
            try:
                response = await self.channel.request("GET", "/dapr/subscribe")
                if response.status == 404:
                    return []  # an app without subscriptions
                if response.status != 200:
                    raise ChannelError(f"GET /dapr/subscribe answered {response.status}")
                return parse_subscriptions(json.loads(response.content))
            except (ChannelError, ValueError) as exc:
                if isinstance(exc, SubscriptionError):
                    log.error("app declared invalid subscriptions", error=str(exc))
                    return []
                if asyncio.get_running_loop().time() > deadline:
                    log.error("app never answered GET /dapr/subscribe", app_id=self.app_id)
                    return []
                await asyncio.sleep(0.1)

    async def _app_listens_on(self, path: str) -> bool:
        """daprd's check for an HTTP input binding: OPTIONS answers 2xx or 405."""
        try:
            response = await self.channel.request("OPTIONS", path)
        except ChannelError:
            return False
        return 200 <= response.status < 300 or response.status == 405

    async def _fire_cron(self, path: str, every: float) -> None:
        """The cron input binding of this instance (each replica's sidecar fires its own).

        On a fixed schedule, whatever each call takes: daprd's cron binding runs its
        trigger as a cron job (components-contrib bindings/cron/cron.go, `AddFunc` on a
        scheduler without a skip-if-still-running wrapper), so a slow call neither
        delays the next firing nor stops it from overlapping (the reminder scan's claim
        is safe under that: FOR UPDATE SKIP LOCKED). A firing missed entirely (the loop
        was busy past it) is skipped, not caught up.
        """
        loop = asyncio.get_running_loop()
        due = loop.time() + every
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            self._spawn(self._fire_once(path))
            due += every
            behind = loop.time() - due
            if behind > 0:
                due += every * (int(behind // every) + 1)

    async def _fire_once(self, path: str) -> None:
        try:
            response = await self.channel.request(
                "POST", path, headers={"content-type": "application/json"}
            )
            if not 200 <= response.status < 300:
                log.error("binding event failed", route=path, status=response.status)
        except ChannelError as exc:
            if self.alive:
                log.error("binding event failed", route=path, error=str(exc))
