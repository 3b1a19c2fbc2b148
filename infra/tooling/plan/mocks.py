"""Pulumi mocks that let the real program run offline, and a monitor that records it.

`PlanMocks` plays the engine and the providers: every resource gets a deterministic id
and a state that is its inputs plus the outputs the real provider computes, as the
provider documents them (`infra/tooling/plan/provider_mocks.py`, which also models the account:
offered versions, existing clusters). An invoke it does not model fails loudly, so a new
data source cannot silently plan as empty.

`RecordingMonitor` keeps what the engine would see for every registration: type, name,
parent, provider, dependencies and the inputs, with secret values kept apart so that
they can be masked when written out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

from infra.policy.rules import SECRET_MASK
from infra.tooling.plan.provider_mocks import (
    CONNECTION_POOL_TYPE,
    DATABASE_CLUSTER_TYPE,
    RESOURCE_STATES,
    CloudWorld,
    Fidelity,
    deterministic_id,
)


def mask_secrets(value: Any) -> tuple[Any, bool]:
    """Replace every wrapped secret in a deserialized property tree by SECRET_MASK."""
    if rpc.is_rpc_secret(value):
        return SECRET_MASK, True
    if isinstance(value, Mapping):
        masked: dict[str, Any] = {}
        found = False
        for key, item in value.items():
            masked[key], item_found = mask_secrets(item)
            found = found or item_found
        return masked, found
    if isinstance(value, list | tuple):
        items = [mask_secrets(item) for item in value]
        return [item for item, _ in items], any(found for _, found in items)
    if isinstance(value, pulumi.Resource):
        # Resource references (e.g. a Provider passed as an input) print as their type.
        return f"<resource {type(value).__name__}>", False
    return value, False


def unwrap_secrets(value: Any) -> Any:
    """The same tree with secrets unwrapped to their plain values (for mock state only)."""
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap_secrets(item) for item in value]
    return value


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration as the engine received it."""

    urn: str
    type: str
    name: str
    parent: str | None
    provider: str | None
    dependencies: tuple[str, ...]
    custom: bool
    inputs: dict[str, Any]
    has_secrets: bool
    raw_inputs: dict[str, Any] = field(repr=False, compare=False)
    """Inputs with secrets unwrapped: only for assertions in tests, never written out."""
    read: bool = False
    """Read from the cloud or cluster (`.get()`), not created by the program."""

    @property
    def provider_urn(self) -> str | None:
        """The provider reference without its `::id` suffix."""
        if not self.provider:
            return None
        return self.provider.rsplit("::", 1)[0]


# Outputs that the providers' schemas declare secret: the engine returns them wrapped.
PROVIDER_SECRET_OUTPUTS: dict[str, frozenset[str]] = {
    "digitalocean:index/kubernetesCluster:KubernetesCluster": frozenset({"kubeConfigs"}),
    "digitalocean:index/databaseCluster:DatabaseCluster": frozenset(
        {"password", "uri", "privateUri"}
    ),
    "digitalocean:index/databaseUser:DatabaseUser": frozenset({"password"}),
    # database_connection_pool.py: additional_secret_outputs password, privateUri, uri.
    CONNECTION_POOL_TYPE: frozenset({"password", "uri", "privateUri"}),
}


def _state(
    world: CloudWorld, args: MockResourceArgs, created: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Inputs plus the outputs the provider computes (as it documents them)."""
    inputs: dict[str, Any] = unwrap_secrets(dict(args.inputs))
    typ, name = args.typ, args.name
    computed = world.fidelity is not Fidelity.INPUTS_ONLY
    provider_state = RESOURCE_STATES.get(typ)
    if provider_state is not None:
        if typ == "digitalocean:index/kubernetesCluster:KubernetesCluster":
            created[str(inputs.get("name", name))] = inputs
        return provider_state(world, name, inputs) if computed else inputs
    if typ.startswith("random:index/random"):
        # RandomPassword/RandomId: "The generated random ..." `result`.
        return {**inputs, "result": f"plan-placeholder-{name}"} if computed else inputs
    if typ.startswith("kubernetes:") and "metadata" in inputs:
        # The Kubernetes provider auto-names objects without `metadata.name` (name plus a
        # random suffix) already in preview; the plan uses the plain name.
        metadata = dict(inputs["metadata"] or {})
        metadata.setdefault("name", name)
        return {**inputs, "metadata": metadata}
    if typ == "kubernetes:helm.sh/v3:Release" and computed:
        release_name = inputs.get("name", name)
        namespace = inputs.get("namespace", "default")
        return {**inputs, "status": {"name": release_name, "namespace": namespace}}
    return inputs


class UnmockedInvokeError(RuntimeError):
    """The program called a data source the offline plan does not know."""


class PlanMocks(pulumi.runtime.Mocks):
    """Deterministic provider behaviour for offline plans and tests."""

    def __init__(
        self,
        stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
        world: CloudWorld | None = None,
    ) -> None:
        # Outputs of other stacks, for StackReference, by stack name.
        self._stack_outputs = dict(stack_outputs or {})
        self.world = world or CloudWorld()
        self._created_clusters: dict[str, dict[str, Any]] = {}
        self._created_databases: dict[str, dict[str, Any]] = {}
        """Database clusters' states by id (a connection pool names its cluster by id)."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            return self._stack_reference(args)
        if args.resource_id and args.typ.startswith("kubernetes:"):
            # `.get()`: the object as it exists in the cluster.
            return args.resource_id, self.world.read_kubernetes(args.typ, args.resource_id)
        resource_id = args.resource_id or deterministic_id(args.typ, args.name)
        if args.typ == CONNECTION_POOL_TYPE:
            return resource_id, self._connection_pool(args)
        state = _state(self.world, args, self._created_clusters)
        if args.typ == DATABASE_CLUSTER_TYPE:
            self._created_databases[resource_id] = state
        return resource_id, state

    def _connection_pool(self, args: MockResourceArgs) -> dict[str, Any]:
        """A pool answers with its cluster's addresses (provider_mocks)."""
        inputs: dict[str, Any] = unwrap_secrets(dict(args.inputs))
        if self.world.fidelity is Fidelity.INPUTS_ONLY:
            return inputs
        cluster = self._created_databases.get(str(inputs.get("clusterId")))
        return self.world.database_connection_pool(args.name, inputs, cluster)

    def _stack_reference(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        stack_name = str(args.inputs.get("name", args.name))
        outputs = self._stack_outputs.get(stack_name)
        if outputs is None:
            if stack_name.rsplit("/", 1)[-1] != pulumi.get_stack():
                raise UnmockedInvokeError(
                    f"no outputs are mocked for stack reference {stack_name!r}"
                )
            # A stack reading its own last outputs: a stack never deployed has none.
            outputs = {}
        return stack_name, {"name": stack_name, "outputs": dict(outputs), "secretOutputNames": []}

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        call_args = unwrap_secrets(dict(args.args))
        if args.token == "digitalocean:index/getKubernetesVersions:getKubernetesVersions":
            result = self.world.kubernetes_versions(call_args)
        elif args.token == "digitalocean:index/getKubernetesCluster:getKubernetesCluster":
            result = self.world.existing_cluster(call_args, self._created_clusters)
        else:
            raise UnmockedInvokeError(
                f"the offline plan has no mock for invoke {args.token!r}; model it in "
                "infra.tooling.plan.provider_mocks and answer it in PlanMocks.call"
            )
        # No check failures: the SDK's mock monitor iterates this list.
        return result, []


class RecordingMonitor(MockMonitor):
    """A mock monitor that keeps every registration with its graph edges."""

    def __init__(self, mocks: PlanMocks) -> None:
        super().__init__(mocks)
        self.recorded: dict[str, RecordedResource] = {}
        self.stack_urn: str | None = None

    def _record(self, request: Any, urn: str, custom: bool, read: bool = False) -> None:
        inputs = rpc.deserialize_properties(
            request.object if hasattr(request, "object") else request.properties
        )
        masked, has_secrets = mask_secrets(inputs)
        self.recorded[urn] = RecordedResource(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            provider=request.provider or None,
            dependencies=tuple(dict.fromkeys(getattr(request, "dependencies", ()))),
            custom=custom,
            inputs=json.loads(json.dumps(masked, default=str)),
            has_secrets=has_secrets,
            raw_inputs=unwrap_secrets(inputs),
            read=read,
        )

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = urn
            return resource_pb2.RegisterResourceResponse(urn=urn)
        inputs = rpc.deserialize_properties(request.object)
        args = MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=bool(request.custom),
        )
        resource_id, state = self.mocks.new_resource(args)
        # Secret outputs come back wrapped, as from the engine: those the program asked
        # for (additionalSecretOutputs, e.g. RandomPassword.result) and those the
        # provider's schema declares.
        secret_outputs = set(request.additionalSecretOutputs)
        secret_outputs |= PROVIDER_SECRET_OUTPUTS.get(request.type, frozenset())
        for key in secret_outputs & set(state):
            state[key] = rpc.wrap_rpc_secret(state[key])
        state_proto = _sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, resource_id or "", state)
        self._record(request, urn, bool(request.custom))
        return resource_pb2.RegisterResourceResponse(
            urn=urn, id=resource_id or "", object=state_proto
        )

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        # The engine answers a read with the object's id (resource_pb2.ReadResourceResponse
        # `id`); the SDK's mock monitor leaves it empty, which the SDK takes for "unknown"
        # in a preview (runtime/resource.py read_resource), and every invoke depending on
        # the read (a StackReference's outputs) would then come back unknown, unchecked.
        response.id = str(self.resources[response.urn].id or request.id)
        self._record(request, response.urn, True, read=True)
        return response
