"""What the stand-in's parts ask of each other, so that its imports run one way.

`runner` puts a `Mesh` and its `Sidecar`s together; a sidecar serves its two API ports
(`grpc_api`, `http_api`) and joins the mesh, which hands its consumer-group members to
`delivery`. Each of those sees the others only through the narrow views below, so none
of them imports `sidecar` or `mesh`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from apps.local.standin.broker import Message
from apps.local.standin.channel import AppChannel, AppResponse
from apps.local.standin.config import MeshConfig, SidecarSpec
from apps.local.standin.errors import DaprError
from apps.local.standin.faults import Faults
from apps.local.standin.routing import Subscription
from apps.local.standin.state import StateStore


@dataclass(frozen=True)
class BulkEntry:
    """One entry of a bulk publish request."""

    entry_id: str
    data: bytes
    content_type: str
    metadata: Mapping[str, str]


class Instance(Protocol):
    """One app instance's sidecar: who it is, whether it is up, how to reach its app."""

    @property
    def app_id(self) -> str: ...

    @property
    def instance_id(self) -> str: ...

    @property
    def spec(self) -> SidecarSpec: ...

    @property
    def alive(self) -> bool: ...

    @property
    def attached(self) -> asyncio.Event:
        """Set once the app channel is up and the app's subscriptions are read."""
        ...

    @property
    def channel(self) -> AppChannel: ...

    @property
    def subscriptions(self) -> Sequence[Subscription]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class MeshApi(Protocol):
    """What a sidecar's API ports ask of the mesh: publish, invoke, state, secrets, metadata."""

    @property
    def config(self) -> MeshConfig: ...

    @property
    def state(self) -> StateStore: ...

    async def publish(
        self,
        *,
        source: str,
        pubsub_name: str,
        topic: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str],
        call_trace: Mapping[str, str] | None = None,
    ) -> Message: ...

    async def publish_bulk(
        self,
        *,
        source: str,
        pubsub_name: str,
        topic: str,
        entries: Sequence[BulkEntry],
        metadata: Mapping[str, str],
        call_trace: Mapping[str, str] | None = None,
    ) -> dict[str, DaprError]: ...

    async def invoke(
        self,
        *,
        caller: str,
        target_app: str,
        verb: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> AppResponse: ...

    def describe(self, sidecar: Instance) -> dict[str, Any]: ...


class Membership(MeshApi, Protocol):
    """What a sidecar asks of the mesh besides its APIs: to join and leave consumer groups."""

    async def join(self, sidecar: Instance, subscription: Subscription) -> None: ...

    async def detach(self, sidecar: Instance) -> None: ...


class DeliveryHost(Protocol):
    """What delivery asks of the mesh: its settings, its faults, and the broker for dead letters."""

    @property
    def config(self) -> MeshConfig: ...

    @property
    def faults(self) -> Faults: ...

    async def broker_publish(
        self,
        *,
        topic: str,
        key: str | None,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str],
    ) -> Message: ...
