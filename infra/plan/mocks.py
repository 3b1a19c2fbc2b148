"""Pulumi mocks that let the real program run offline, and a monitor that records it.

`PlanMocks` plays the engine and the providers: every resource gets a deterministic id
and a state that is its inputs plus the outputs the real provider would compute (the
ones the program reads). Invokes (data sources) answer from a fixed table; an invoke the
table does not know fails loudly, so a new data source cannot silently plan as empty.

`RecordingMonitor` keeps what the engine would see for every registration: type, name,
parent, provider, dependencies and the inputs, with secret values kept apart so that
they can be masked when written out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

SECRET_MASK = "[secret]"

# A DOKS version list as `digitalocean.get_kubernetes_versions` returns it.
KUBERNETES_VERSIONS = ["1.34.1-do.0", "1.33.5-do.1", "1.32.9-do.2"]

# A kubeconfig shaped like the one DigitalOcean returns; the token is obviously fake.
_FAKE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: cGxhbi1jYQ==
    server: https://{name}.k8s.ondigitalocean.example
  name: do-{name}
contexts:
- context:
    cluster: do-{name}
    user: do-{name}-admin
  name: do-{name}
current-context: do-{name}
users:
- name: do-{name}-admin
  user:
    token: plan-placeholder-token
"""


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
}


def _deterministic_id(type_: str, name: str) -> str:
    return hashlib.sha256(f"{type_}::{name}".encode()).hexdigest()[:16]


def _default_state(args: MockResourceArgs) -> dict[str, Any]:
    """Outputs the providers compute and the program reads back."""
    inputs: dict[str, Any] = unwrap_secrets(dict(args.inputs))
    typ, name = args.typ, args.name
    if typ == "digitalocean:index/kubernetesCluster:KubernetesCluster":
        cluster_name = inputs.get("name", name)
        return {
            **inputs,
            "urn": f"do:kubernetes:{cluster_name}",
            "endpoint": f"https://{cluster_name}.k8s.ondigitalocean.example",
            "ipv4Address": "203.0.113.10",
            "clusterSubnet": "10.244.0.0/16",
            "serviceSubnet": "10.245.0.0/16",
            "kubeConfigs": [
                {
                    "rawConfig": _FAKE_KUBECONFIG.format(name=cluster_name),
                    "host": f"https://{cluster_name}.k8s.ondigitalocean.example",
                    "token": "plan-placeholder-token",
                    "clusterCaCertificate": "cGxhbi1jYQ==",
                    "expiresAt": "2030-01-01T00:00:00Z",
                }
            ],
        }
    if typ == "digitalocean:index/databaseCluster:DatabaseCluster":
        host = f"{inputs.get('name', name)}.db.ondigitalocean.example"
        private_host = f"private-{host}"
        return {
            **inputs,
            "urn": f"do:dbaas:{inputs.get('name', name)}",
            "host": host,
            "privateHost": private_host,
            "port": 25060,
            "database": "defaultdb",
            "user": "doadmin",
            "password": "plan-placeholder-password",
            "uri": f"postgresql://doadmin:plan-placeholder-password@{host}:25060/defaultdb?sslmode=require",
            "privateUri": (
                "postgresql://doadmin:plan-placeholder-password"
                f"@{private_host}:25060/defaultdb?sslmode=require"
            ),
        }
    if typ == "digitalocean:index/databaseUser:DatabaseUser":
        return {**inputs, "password": "plan-placeholder-password", "role": "normal"}
    if typ == "digitalocean:index/vpc:Vpc":
        return {**inputs, "urn": f"do:vpc:{inputs.get('name', name)}"}
    if typ.startswith("random:index/random"):
        return {**inputs, "result": f"plan-placeholder-{name}"}
    if typ.startswith("kubernetes:") and "metadata" in inputs:
        metadata = dict(inputs["metadata"] or {})
        metadata.setdefault("name", name)
        return {**inputs, "metadata": metadata}
    if typ == "kubernetes:helm.sh/v3:Release":
        release_name = inputs.get("name", name)
        namespace = inputs.get("namespace", "default")
        return {**inputs, "status": {"name": release_name, "namespace": namespace}}
    return inputs


def _call_kubernetes_versions(args: Mapping[str, Any]) -> dict[str, Any]:
    prefix = str(args.get("versionPrefix") or "")
    valid = [v for v in KUBERNETES_VERSIONS if v.startswith(prefix)]
    return {"latestVersion": valid[0] if valid else "", "validVersions": valid}


def _call_kubernetes_cluster(args: Mapping[str, Any]) -> dict[str, Any]:
    name = str(args["name"])
    return {
        "id": _deterministic_id("digitalocean:index/kubernetesCluster:KubernetesCluster", name),
        "name": name,
        "ipv4Address": "203.0.113.10",
        "urn": f"do:kubernetes:{name}",
        "endpoint": f"https://{name}.k8s.ondigitalocean.example",
        "kubeConfigs": [
            {
                "rawConfig": _FAKE_KUBECONFIG.format(name=name),
                "host": f"https://{name}.k8s.ondigitalocean.example",
                "token": "plan-placeholder-token",
                "clusterCaCertificate": "cGxhbi1jYQ==",
                "expiresAt": "2030-01-01T00:00:00Z",
            }
        ],
    }


CALLS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "digitalocean:index/getKubernetesVersions:getKubernetesVersions": _call_kubernetes_versions,
    "digitalocean:index/getKubernetesCluster:getKubernetesCluster": _call_kubernetes_cluster,
}
"""Invokes the program may make, by token. Extend this table when the program adds one."""


class UnmockedInvokeError(RuntimeError):
    """The program called a data source the offline plan does not know."""


class PlanMocks(pulumi.runtime.Mocks):
    """Deterministic provider behaviour for offline plans and tests."""

    def __init__(self, stack_outputs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        # Outputs of other stacks, for StackReference, by stack name.
        self._stack_outputs = dict(stack_outputs or {})

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            stack_name = str(args.inputs.get("name", args.name))
            outputs = self._stack_outputs.get(stack_name)
            if outputs is None:
                raise UnmockedInvokeError(
                    f"no outputs are mocked for stack reference {stack_name!r}"
                )
            return stack_name, {
                "name": stack_name,
                "outputs": dict(outputs),
                "secretOutputNames": [],
            }
        resource_id = args.resource_id or _deterministic_id(args.typ, args.name)
        return resource_id, _default_state(args)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        handler = CALLS.get(args.token)
        if handler is None:
            raise UnmockedInvokeError(
                f"the offline plan has no mock for invoke {args.token!r}; add one to "
                "infra.plan.mocks.CALLS"
            )
        # No check failures: the SDK's mock monitor iterates this list.
        return handler(unwrap_secrets(dict(args.args))), []


class RecordingMonitor(MockMonitor):
    """A mock monitor that keeps every registration with its graph edges."""

    def __init__(self, mocks: PlanMocks) -> None:
        super().__init__(mocks)
        self.recorded: dict[str, RecordedResource] = {}
        self.stack_urn: str | None = None

    def _record(self, request: Any, urn: str, custom: bool) -> None:
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
        self._record(request, response.urn, True)
        return response
