"""The sidecar's gRPC API (DAPR_GRPC_PORT): the calls the `dapr` SDK makes over gRPC.

Publish (single and bulk), state (get, bulk get, save, delete, bulk delete,
transactions), secrets (one and bulk) and metadata. Anything else answers
UNIMPLEMENTED, which is what the generated servicer base does.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeAlias

import grpc
from dapr.proto import api_service_v1, api_v1, common_v1
from google.protobuf import empty_pb2

from apps.local.standin.errors import DaprError
from apps.local.standin.protocols import BulkEntry, Instance, MeshApi
from apps.local.standin.state import EtagMismatch, StateOperation, StateStore

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
_FIRST_WRITE = 1  # common.v1.StateOptions.StateConcurrency.CONCURRENCY_FIRST_WRITE


class DaprApi(api_service_v1.DaprServicer):
    def __init__(self, sidecar: Instance, mesh: MeshApi) -> None:
        self._sidecar = sidecar
        self._mesh = mesh

    async def _fail(self, context: Context, error: DaprError) -> NoReturn:
        await context.abort(error.grpc_status, str(error))
        raise AssertionError("abort returns by raising")  # pragma: no cover

    async def _authorize(self, context: Context) -> None:
        token = self._sidecar.spec.api_token
        if token and dict(context.invocation_metadata() or ()).get("dapr-api-token") != token:
            await self._fail(context, DaprError.unauthorized())

    # -- pub/sub ---------------------------------------------------------------------------

    async def PublishEvent(  # noqa: N802 - gRPC method names
        self, request: Any, context: Context
    ) -> empty_pb2.Empty:
        await self._authorize(context)
        try:
            await self._mesh.publish(
                source=self._sidecar.app_id,
                pubsub_name=request.pubsub_name,
                topic=request.topic,
                data=bytes(request.data),
                content_type=request.data_content_type,
                metadata=dict(request.metadata),
                call_trace=_trace_of(context),
            )
        except DaprError as error:
            await self._fail(context, error)
        return empty_pb2.Empty()

    async def BulkPublishEvent(  # noqa: N802
        self, request: Any, context: Context
    ) -> Any:
        """As daprd's `bulkPublishEvent` (dapr/dapr pkg/api/grpc/grpc.go): over gRPC a
        call that failed for any entry answers with an error status (INTERNAL, like a
        failed single publish) and no entries, so the caller cannot tell which entries
        went out; `failedEntries` is only ever empty on success."""
        await self._authorize(context)
        try:
            failed = await self._mesh.publish_bulk(
                source=self._sidecar.app_id,
                pubsub_name=request.pubsub_name,
                topic=request.topic,
                entries=[
                    BulkEntry(
                        entry_id=entry.entry_id,
                        data=bytes(entry.event),
                        content_type=entry.content_type,
                        metadata=dict(entry.metadata),
                    )
                    for entry in request.entries
                ],
                metadata=dict(request.metadata),
                call_trace=_trace_of(context),
            )
        except DaprError as error:
            await self._fail(context, error)
        if failed:
            await self._fail(context, next(iter(failed.values())))
        return api_v1.BulkPublishResponse()

    BulkPublishEventAlpha1 = BulkPublishEvent

    # -- state -------------------------------------------------------------------------------

    async def _store(self, name: str, context: Context) -> StateStore:
        if name != self._mesh.config.state_store_name:
            await self._fail(context, DaprError.store_not_found("state", name))
        return self._mesh.state

    def _key(self, key: str) -> str:
        return StateStore.qualified(self._sidecar.app_id, key)

    async def GetState(  # noqa: N802
        self, request: Any, context: Context
    ) -> Any:
        await self._authorize(context)
        store = await self._store(request.store_name, context)
        found = store.get(self._key(request.key))
        if found is None:
            return api_v1.GetStateResponse()
        return api_v1.GetStateResponse(data=found[0], etag=found[1])

    async def GetBulkState(  # noqa: N802
        self, request: Any, context: Context
    ) -> Any:
        await self._authorize(context)
        store = await self._store(request.store_name, context)
        items = []
        for key in request.keys:
            found = store.get(self._key(key))
            items.append(
                api_v1.BulkStateItem(key=key, data=found[0], etag=found[1])
                if found
                else api_v1.BulkStateItem(key=key)
            )
        return api_v1.GetBulkStateResponse(items=items)

    def _operation(self, kind: str, item: Any) -> StateOperation:
        return StateOperation(
            kind="upsert" if kind == "upsert" else "delete",
            key=self._key(item.key),
            value=bytes(item.value),
            etag=item.etag.value if item.HasField("etag") else None,
            first_write=item.options.concurrency == _FIRST_WRITE,
        )

    async def _apply(
        self,
        store: StateStore,
        operations: list[StateOperation],
        context: Context,
    ) -> empty_pb2.Empty:
        try:
            store.apply(operations)
        except EtagMismatch as exc:
            await self._fail(context, DaprError.etag_mismatch(str(exc)))
        return empty_pb2.Empty()

    async def SaveState(  # noqa: N802
        self, request: Any, context: Context
    ) -> empty_pb2.Empty:
        await self._authorize(context)
        store = await self._store(request.store_name, context)
        operations = [self._operation("upsert", item) for item in request.states]
        return await self._apply(store, operations, context)

    async def DeleteState(  # noqa: N802
        self, request: Any, context: Context
    ) -> empty_pb2.Empty:
        await self._authorize(context)
        store = await self._store(request.store_name, context)
        item = common_v1.StateItem(key=request.key, etag=request.etag, options=request.options)
        if not request.HasField("etag"):
            item.ClearField("etag")
        return await self._apply(store, [self._operation("delete", item)], context)

    async def DeleteBulkState(  # noqa: N802
        self, request: Any, context: Context
    ) -> empty_pb2.Empty:
        await self._authorize(context)
        store = await self._store(request.store_name, context)
        operations = [self._operation("delete", item) for item in request.states]
        return await self._apply(store, operations, context)

    async def ExecuteStateTransaction(  # noqa: N802
        self, request: Any, context: Context
    ) -> empty_pb2.Empty:
        await self._authorize(context)
        store = await self._store(request.storeName, context)
        operations = [
            self._operation(operation.operationType, operation.request)
            for operation in request.operations
        ]
        return await self._apply(store, operations, context)

    # -- secrets -----------------------------------------------------------------------------

    async def _secrets(self, name: str, context: Context) -> dict[str, dict[str, str]]:
        if name != self._mesh.config.secret_store_name:
            await self._fail(context, DaprError.store_not_found("secret", name))
        return self._mesh.config.secrets

    async def GetSecret(  # noqa: N802
        self, request: Any, context: Context
    ) -> Any:
        await self._authorize(context)
        secrets = await self._secrets(request.store_name, context)
        if request.key not in secrets:
            await self._fail(context, DaprError.secret_missing(request.key))
        return api_v1.GetSecretResponse(data=secrets[request.key])

    async def GetBulkSecret(  # noqa: N802
        self, request: Any, context: Context
    ) -> Any:
        await self._authorize(context)
        secrets = await self._secrets(request.store_name, context)
        return api_v1.GetBulkSecretResponse(
            data={name: api_v1.SecretResponse(secrets=values) for name, values in secrets.items()}
        )

    # -- metadata ----------------------------------------------------------------------------

    async def GetMetadata(  # noqa: N802
        self, request: Any, context: Context
    ) -> Any:
        await self._authorize(context)
        described = self._mesh.describe(self._sidecar)
        return api_v1.GetMetadataResponse(
            id=described["id"],
            runtime_version=described["runtimeVersion"],
            registered_components=[
                api_v1.RegisteredComponents(name=c["name"], type=c["type"], version=c["version"])
                for c in described["components"]
            ],
            subscriptions=[
                api_v1.PubsubSubscription(
                    pubsub_name=s["pubsubname"],
                    topic=s["topic"],
                    dead_letter_topic=s.get("deadLetterTopic") or "",
                    rules=api_v1.PubsubSubscriptionRules(
                        rules=[
                            api_v1.PubsubSubscriptionRule(match=r["match"], path=r["path"])
                            for r in s["rules"]
                        ]
                    ),
                )
                for s in described["subscriptions"]
            ],
        )


def _trace_of(context: Context) -> dict[str, str]:
    """The call's W3C trace context, from its gRPC metadata (daprd reads it there)."""
    metadata = dict(context.invocation_metadata() or ())
    return {name: str(metadata[name]) for name in ("traceparent", "tracestate") if name in metadata}
