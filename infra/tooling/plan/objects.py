"""Turn recorded registrations into the Kubernetes objects they declare.

A `kubernetes:<group>/<version>:<Kind>` resource becomes one object as the API server
would receive it (`apiVersion`, `kind`, `metadata`, the rest of its inputs). Helm
releases (`kubernetes:helm.sh/v3:Release`) cannot be rendered offline without helm and
the chart, so they become a `HelmRelease` record: chart, version, repository, namespace
and the values the program passes, which is what the footprint, the values check and a
reviewer need.

Secrets never reach an object: inputs the engine holds as secrets are replaced by
`[secret]`, key by key where the keys themselves are not secret (a Secret's `stringData`
keeps its key names so the object keeps its shape).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.policy.rules import SECRET_MASK
from infra.tooling.plan.mocks import RecordedResource

KUBERNETES_PREFIX = "kubernetes:"
HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
# A v4 Chart renders the chart in the provider and applies its objects one by one; it
# registers as a component, and its objects are not known offline either.
HELM_CHART_V4_TYPE = "kubernetes:helm.sh/v4:Chart"
HELM_TYPES = frozenset({HELM_RELEASE_TYPE, HELM_CHART_V4_TYPE})
HELM_RECORD_API_VERSION = "plan.todo.dev/v1"
HELM_RECORD_KIND = "HelmRelease"
# Types in the kubernetes package that are not objects in the cluster.
_NOT_OBJECTS = ("kubernetes:yaml", "kubernetes:kustomize")
# Pulumi-only inputs the provider strips before talking to the API server.
_PULUMI_ONLY_INPUTS = frozenset({"__fieldsToPatch"})
_HELM_RECORD_FIELDS = ("chart", "version", "namespace", "repositoryOpts", "createNamespace")


@dataclass(frozen=True)
class KubernetesObject:
    """One object the program declares, ready to be written as YAML."""

    resource: RecordedResource
    body: dict[str, Any]

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.body["metadata"].get("namespace")
        return str(namespace) if namespace else None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def is_helm_release(self) -> bool:
        return self.kind == HELM_RECORD_KIND and self.api_version == HELM_RECORD_API_VERSION

    def file_name(self) -> str:
        """A stable, unique, filesystem-safe name: namespace_kind_name.yaml."""
        parts = [self.namespace or "_cluster", self.kind.lower(), self.name]
        return "_".join(_safe(part) for part in parts) + ".yaml"


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in text)


def normalize_numbers(value: Any) -> Any:
    """Whole floats back to ints: the engine carries every number as a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: normalize_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize_numbers(item) for item in value]
    return value


def is_kubernetes_object(resource: RecordedResource) -> bool:
    """A Kubernetes object, or a Helm chart installation (recorded, not rendered)."""
    if resource.type in HELM_TYPES:
        return True
    return (
        resource.custom
        and not resource.read  # read from the cluster (`.get()`), not applied
        and resource.type.startswith(KUBERNETES_PREFIX)
        and not resource.type.startswith(_NOT_OBJECTS)
        and not resource.type.startswith("pulumi:providers:")
    )


def _mask_preserving_keys(masked: Any, raw: Any) -> Any:
    """Where a whole mapping was secret, keep its keys and mask each value instead."""
    if masked == SECRET_MASK and isinstance(raw, Mapping):
        return dict.fromkeys(raw, SECRET_MASK)
    if isinstance(masked, Mapping) and isinstance(raw, Mapping):
        return {key: _mask_preserving_keys(item, raw.get(key)) for key, item in masked.items()}
    if isinstance(masked, list) and isinstance(raw, list) and len(masked) == len(raw):
        return [_mask_preserving_keys(m, r) for m, r in zip(masked, raw, strict=True)]
    return masked


def _api_version_and_kind(type_token: str) -> tuple[str, str]:
    # kubernetes:apps/v1:Deployment → apps/v1, Deployment; core/v1 is the legacy "v1".
    _, group_version, kind = type_token.split(":", 2)
    if group_version.startswith("core/"):
        group_version = group_version.removeprefix("core/")
    return group_version, kind


def to_object(resource: RecordedResource) -> KubernetesObject:
    inputs = normalize_numbers(_mask_preserving_keys(resource.inputs, resource.raw_inputs))
    if resource.type in HELM_TYPES:
        return _helm_record(resource, inputs)
    api_version, kind = _api_version_and_kind(resource.type)
    body: dict[str, Any] = {"apiVersion": inputs.get("apiVersion", api_version)}
    body["kind"] = inputs.get("kind", kind)
    metadata = dict(inputs.get("metadata") or {})
    # Without metadata.name Pulumi auto-names the object `<resource name>-<random>`; the
    # plan uses the resource name, which is what that name starts with.
    metadata.setdefault("name", resource.name)
    body["metadata"] = metadata
    for key, value in inputs.items():
        if key not in {"apiVersion", "kind", "metadata"} and key not in _PULUMI_ONLY_INPUTS:
            body[key] = value
    return KubernetesObject(resource=resource, body=body)


def _helm_record(resource: RecordedResource, inputs: dict[str, Any]) -> KubernetesObject:
    release_name = str(inputs.get("name") or resource.name)
    metadata: dict[str, Any] = {"name": release_name}
    if inputs.get("namespace"):
        metadata["namespace"] = inputs["namespace"]
    spec = {key: inputs[key] for key in _HELM_RECORD_FIELDS if key in inputs}
    spec["values"] = inputs.get("values") or {}
    spec["installedBy"] = resource.type
    body = {
        "apiVersion": HELM_RECORD_API_VERSION,
        "kind": HELM_RECORD_KIND,
        "metadata": metadata,
        "spec": spec,
    }
    return KubernetesObject(resource=resource, body=body)


def kubernetes_objects(resources: Iterable[RecordedResource]) -> list[KubernetesObject]:
    """Every Kubernetes object the program declares, Helm releases as records."""
    return [to_object(resource) for resource in resources if is_kubernetes_object(resource)]


def helm_release_values(obj: KubernetesObject) -> dict[str, Any]:
    values = obj.body["spec"].get("values") or {}
    return dict(values) if isinstance(values, Mapping) else {}
