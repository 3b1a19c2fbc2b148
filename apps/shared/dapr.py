"""The services' access to their Dapr sidecar, through the official `dapr` SDK.

Publish goes over Dapr's gRPC API via `dapr.aio.clients.DaprClient`, service invocation
over its HTTP API through one kept-alive aiohttp session, both configured by the
standard `DAPR_*` variables.

The SDK client checks `GET /v1.0/healthz/outbound` when it is built, with a blocking
wait of up to `DAPR_HEALTH_TIMEOUT`. To keep the event loop free, `DaprAccess` first
checks that the sidecar's port is open, then runs the SDK's async health check with a
short budget, and builds the client only once the sidecar answers; a failed call drops
the client so that the next one starts from a fresh connection (a restarted sidecar is
then picked up at once, not after gRPC's reconnect backoff).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import grpc
from dapr.aio.clients import DaprClient
from dapr.aio.clients.health import DaprHealth
from dapr.clients import BulkPublishEntry
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.http.helpers import get_api_url
from dapr.conf import settings
from opentelemetry.trace import SpanKind

from apps.contracts.services import PUBSUB
from apps.shared.logs import get_logger
from apps.shared.tracing import current_trace_headers, headers_with_trace, tracer

PUBSUB_NAME: Final = PUBSUB
JSON_CONTENT_TYPE: Final = "application/json"
_API_TOKEN_HEADER: Final = "dapr-api-token"

_log = get_logger("apps.dapr")


class SidecarUnavailable(RuntimeError):
    """The sidecar, or the broker behind it, cannot take the call now: try again later."""


class PublishFailed(RuntimeError):
    """The sidecar answered but could not publish (the broker behind it): try again later."""


class PublishRejected(RuntimeError):
    """The sidecar refused the message itself (retrying the same message will not help)."""


@dataclass(frozen=True)
class InvokeResult:
    """The target app's answer to a service invocation, whatever its status."""

    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# gRPC codes daprd uses for a message it will never accept; anything else may pass later.
_REJECTED_CODES = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND}
)
# Codes that say the channel to the sidecar is broken (as opposed to the broker behind it).
_CONNECTION_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN}
)


async def _sidecar_listening(timeout: float) -> bool:
    """Whether the sidecar's HTTP port accepts connections at all.

    The SDK's health check reports each refused connection with a bare `print()` on
    stdout, which would break the services' JSON logs; checking that the port is open
    first means the SDK check only runs against a sidecar that is there.
    """
    url = urlsplit(get_api_url())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that coincides with its timeout, and the caller never stops.
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(url.hostname or "127.0.0.1", port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


def publish_metadata(
    *,
    event_id: str,
    event_type: str,
    partition_key: str | None,
    trace_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What makes daprd use our id, type and trace context in the CloudEvent and key the
    Kafka message.

    `trace_headers` (`traceparent`, `tracestate`) become the CloudEvent's extension
    attributes of those names through `cloudevent.` metadata, which daprd lets override
    them (docs.dapr.io, "Publishing & subscribing messages with CloudEvents"; dapr/dapr
    pkg/runtime/pubsub/cloudevents.go). The gRPC publish call carries no trace header of
    its own (the SDK's gRPC channel is not instrumented), so this is how the trace
    reaches the subscriber.
    """
    metadata = {"cloudevent.id": event_id, "cloudevent.type": event_type}
    if partition_key:
        metadata["partitionKey"] = partition_key
    for name, value in (trace_headers or {}).items():
        if value:
            metadata[f"cloudevent.{name}"] = value
    return metadata


@dataclass(frozen=True)
class BulkEvent:
    """One event of a bulk publish: its serialised envelope and what keys and traces it."""

    entry_id: str
    """Unique within one call; failures come back under it."""
    event_id: str
    event_type: str
    envelope_json: bytes | str
    """The envelope, already JSON (the relay sends the stored text as it is)."""
    partition_key: str | None
    trace_headers: Mapping[str, str]


class DaprAccess:
    def __init__(self, *, ready_timeout_seconds: float = 2.0) -> None:
        self._ready_timeout = ready_timeout_seconds
        self._client: DaprClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> DaprClient:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                if not await _sidecar_listening(self._ready_timeout):
                    raise SidecarUnavailable("the Dapr sidecar is not listening")
                try:
                    async with asyncio.timeout(self._ready_timeout):
                        await DaprHealth.wait_for_sidecar()  # type: ignore[no-untyped-call]
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise SidecarUnavailable("the Dapr sidecar is not healthy") from exc
                self._client = DaprClient()
            return self._client

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()  # type: ignore[no-untyped-call]
            except Exception as exc:  # closing a broken channel must not mask the cause
                _log.debug("closing the Dapr client failed", error=repr(exc))

    async def ready(self) -> bool:
        """Whether the sidecar answers its health check now."""
        try:
            await self._connected()
        except SidecarUnavailable:
            return False
        return True

    async def publish(
        self,
        *,
        topic: str,
        envelope_json: bytes | str,
        event_id: str,
        event_type: str,
        partition_key: str | None,
        pubsub_name: str = PUBSUB_NAME,
    ) -> None:
        """Publish one event envelope (already JSON) under its own CloudEvent id and type,
        in the current span's trace."""
        client = await self._connected()
        try:
            await client.publish_event(
                pubsub_name,
                topic,
                envelope_json,
                data_content_type=JSON_CONTENT_TYPE,
                publish_metadata=publish_metadata(
                    event_id=event_id,
                    event_type=event_type,
                    partition_key=partition_key,
                    trace_headers=current_trace_headers(),
                ),
            )
        except DaprGrpcError as exc:
            raise await self._publish_error(exc) from exc

    async def publish_bulk(
        self,
        *,
        topic: str,
        events: Sequence[BulkEvent],
        pubsub_name: str = PUBSUB_NAME,
    ) -> dict[str, str]:
        """Publish several events to `topic` in one call; returns the failed ones
        (entry id → error). Raises like `publish` when the call fails as a whole.

        Dapr's bulk publish (gRPC `BulkPublishEvent`, HTTP
        `POST /v1.0-alpha1/publish/bulk/<pubsub>/<topic>`; docs.dapr.io "Publish and
        subscribe to bulk messages") is not transactional: some entries may fail while
        others are published, each failure named by its `entryId` in `failedEntries`, and
        it keeps no order among the entries of one call (dapr/dapr pkg/api/grpc/grpc.go
        `bulkPublishEvent`). Each entry's metadata is its own (`partitionKey`,
        `cloudevent.*`), merged over the request's (utils.PopulateMetadataForBulkPublishEntry),
        so ids, types, keys and trace contexts stay per event; the Kafka component keys
        each message by its entry's `partitionKey` (components-contrib
        common/component/kafka/producer.go `BulkPublish`).
        """
        client = await self._connected()
        entries = [
            BulkPublishEntry(
                event=event.envelope_json,
                metadata=publish_metadata(
                    event_id=event.event_id,
                    event_type=event.event_type,
                    partition_key=event.partition_key,
                    trace_headers=event.trace_headers,
                ),
                content_type=JSON_CONTENT_TYPE,
                entry_id=event.entry_id,
            )
            for event in events
        ]
        try:
            response = await client.publish_events(
                pubsub_name, topic, entries, data_content_type=JSON_CONTENT_TYPE
            )
        except DaprGrpcError as exc:
            raise await self._publish_error(exc) from exc
        return {entry.entry_id: entry.error or "failed" for entry in response.failed_entries}

    async def _publish_error(self, exc: DaprGrpcError) -> Exception:
        code = exc.code()  # type: ignore[no-untyped-call]
        reason = f"{code.name}: {exc.details()}"  # type: ignore[no-untyped-call]
        if code in _REJECTED_CODES:
            return PublishRejected(reason)
        if code in _CONNECTION_CODES:
            await self._drop_client()
            return SidecarUnavailable(f"publish failed: {reason}")
        return PublishFailed(reason)

    async def invoke(
        self,
        app_id: str,
        method: str,
        *,
        body: Mapping[str, Any] | None = None,
        verb: str = "POST",
        headers: Mapping[str, str] | None = None,
        timeout_seconds: int = 30,
    ) -> InvokeResult:
        """Call `method` on `app_id` through Dapr; any HTTP status comes back as a result.

        Under a client span whose `traceparent`/`tracestate` go with the call as headers
        (the SDK sends invocation metadata as HTTP headers); daprd passes them on to the
        target app, whose request span continues the trace.
        """
        with tracer().start_as_current_span(
            # The name stays low in cardinality (the path holds ids); the path is an attribute.
            f"invoke {app_id} {verb}",
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "dapr", "rpc.service": app_id, "rpc.method": method},
        ) as span:
            result = await self._invoke(
                app_id,
                method,
                body=body,
                verb=verb,
                headers=headers_with_trace(headers),
                timeout_seconds=timeout_seconds,
            )
            span.set_attribute("http.response.status_code", result.status)
            return result

    def _http(self) -> aiohttp.ClientSession:
        """One session (and its kept-alive connections) to the sidecar's HTTP API for
        every invocation: the SDK's `invoke_method` opens a new session, so a new TCP
        connection, per call (dapr/aio/clients/http/client.py `send_bytes`)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64),
                trust_env=False,
                auto_decompress=False,
            )
        return self._session

    async def _invoke(
        self,
        app_id: str,
        method: str,
        *,
        body: Mapping[str, Any] | None,
        verb: str,
        headers: Mapping[str, str],
        timeout_seconds: int,
    ) -> InvokeResult:
        """`<verb> /v1.0/invoke/<app-id>/method/<method>` on the sidecar's HTTP API, as the
        SDK sends it (docs.dapr.io "Service invocation API reference"): the target's
        status and body come back as they are; only an unreachable sidecar raises."""
        await self._connected()
        outgoing = {"content-type": JSON_CONTENT_TYPE, **headers}
        if settings.DAPR_API_TOKEN:
            outgoing[_API_TOKEN_HEADER] = settings.DAPR_API_TOKEN
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        url = f"{get_api_url()}/invoke/{app_id}/method/{method}"
        try:
            async with self._http().request(
                verb,
                url,
                data=data,
                headers=outgoing,
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
                allow_redirects=False,
            ) as response:
                return InvokeResult(status=response.status, body=await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self._drop_client()
            raise SidecarUnavailable(f"invocation of {app_id} failed: {exc!r}") from exc

    async def close(self) -> None:
        await self._drop_client()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
