"""Which input changes make the provider replace a resource instead of updating it.

An offline plan cannot ask the provider, so this is an estimate from the fields that are
immutable in the Kubernetes API or that the providers mark as forcing a new resource. It
covers the resources this program creates; anything it does not know is reported as an
update, and `pulumi preview` against the real stack remains the authority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.tooling.plan.field_paths import PathPart, path_matches


@dataclass(frozen=True)
class ReplaceRule:
    """A field whose change forces replacement, and why."""

    pattern: tuple[str, ...]
    reason: str


def _rules(reason: str, *patterns: str) -> tuple[ReplaceRule, ...]:
    return tuple(ReplaceRule(tuple(p.split(".")), reason) for p in patterns)


_IDENTITY = _rules(
    "an object's name and namespace identify it: a new one is created",
    "metadata.name",
    "metadata.namespace",
    "apiVersion",
    "kind",
)
_SELECTOR = _rules("`spec.selector` is immutable", "spec.selector")

# By Kubernetes kind (the last segment of the type token, or `kind` of a CustomResource).
KUBERNETES_RULES: dict[str, tuple[ReplaceRule, ...]] = {
    "Deployment": _SELECTOR,
    "ReplicaSet": _SELECTOR,
    "DaemonSet": _SELECTOR,
    "StatefulSet": _SELECTOR
    + _rules(
        "a StatefulSet's volumeClaimTemplates, serviceName and podManagementPolicy are immutable",
        "spec.volumeClaimTemplates",
        "spec.serviceName",
        "spec.podManagementPolicy",
    ),
    "Job": _rules(
        "a Job's pod template and selector are immutable", "spec.template", "spec.selector"
    ),
    "Service": _rules("a Service's clusterIP is immutable", "spec.clusterIP", "spec.clusterIPs"),
    "PersistentVolumeClaim": _rules(
        "a claim's storage class, access modes and volume are immutable",
        "spec.storageClassName",
        "spec.accessModes",
        "spec.volumeName",
        "spec.volumeMode",
        "spec.selector",
    ),
    "StorageClass": _rules(
        "a StorageClass is immutable apart from its metadata",
        "provisioner",
        "parameters",
        "reclaimPolicy",
        "volumeBindingMode",
    ),
    "RoleBinding": _rules("`roleRef` is immutable", "roleRef"),
    "ClusterRoleBinding": _rules("`roleRef` is immutable", "roleRef"),
}

# ConfigMaps and Secrets: pulumi-kubernetes replaces them on a data change (so that
# workloads pick up the new content) unless the provider opts out.
_CONFIG_MAP_DATA = _rules(
    "pulumi-kubernetes replaces ConfigMaps on a data change (provider enableConfigMapMutable off)",
    "data",
    "binaryData",
    "immutable",
)
_SECRET_DATA = _rules(
    "pulumi-kubernetes replaces Secrets on a data change (provider enableSecretMutable off)",
    "data",
    "stringData",
    "type",
    "immutable",
)

# Other providers, by type token: fields the providers declare force-new.
TYPE_RULES: dict[str, tuple[ReplaceRule, ...]] = {
    "kubernetes:helm.sh/v3:Release": _rules(
        "a Helm release is identified by its name and namespace", "name", "namespace"
    ),
    "digitalocean:index/kubernetesCluster:KubernetesCluster": _rules(
        "a DOKS cluster cannot move region, VPC or subnets, nor change its default pool's size",
        "region",
        "vpcUuid",
        "clusterSubnet",
        "serviceSubnet",
        "nodePool.size",
    ),
    "digitalocean:index/kubernetesNodePool:KubernetesNodePool": _rules(
        "a node pool cannot change cluster or Droplet size", "clusterId", "size"
    ),
    "digitalocean:index/vpc:Vpc": _rules(
        "a VPC cannot change region or IP range", "region", "ipRange"
    ),
    "digitalocean:index/databaseCluster:DatabaseCluster": _rules(
        "a managed database cannot change engine", "engine"
    ),
    "digitalocean:index/databaseDb:DatabaseDb": _rules(
        "a database is identified by cluster and name", "clusterId", "name"
    ),
    "digitalocean:index/databaseUser:DatabaseUser": _rules(
        "a database user is identified by cluster and name", "clusterId", "name"
    ),
    "digitalocean:index/databaseFirewall:DatabaseFirewall": _rules(
        "a database firewall belongs to one cluster", "clusterId"
    ),
}

_RANDOM_REASON = "random resources regenerate on any input change"


def kubernetes_kind(type_token: str, inputs: Mapping[str, Any]) -> str | None:
    """The Kubernetes kind of a resource, or None for non-Kubernetes resources."""
    if not type_token.startswith("kubernetes:") or type_token.startswith("kubernetes:helm.sh/"):
        return None
    if type_token.endswith(":CustomResource") or "apiextensions" in type_token:
        kind = inputs.get("kind")
        return kind if isinstance(kind, str) else None
    return type_token.rsplit(":", 1)[-1]


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def rules_for(
    type_token: str, inputs: Mapping[str, Any], provider_inputs: Mapping[str, Any] | None
) -> tuple[ReplaceRule, ...]:
    """The replace rules that apply to one resource under its provider's settings."""
    provider_inputs = provider_inputs or {}
    kind = kubernetes_kind(type_token, inputs)
    if kind is not None:
        rules = _IDENTITY + KUBERNETES_RULES.get(kind, ())
        if kind == "ConfigMap" and not _truthy(provider_inputs.get("enableConfigMapMutable")):
            rules += _CONFIG_MAP_DATA
        if kind == "Secret" and not _truthy(provider_inputs.get("enableSecretMutable")):
            rules += _SECRET_DATA
        return rules
    if type_token.startswith("random:"):
        return (ReplaceRule(("*",), _RANDOM_REASON),)
    return TYPE_RULES.get(type_token, ())


def replacing_rule(parts: Sequence[PathPart], rules: Sequence[ReplaceRule]) -> ReplaceRule | None:
    """The first rule that a change at `parts` triggers, if any."""
    for rule in rules:
        if rule.pattern == ("*",) or path_matches(parts, rule.pattern):
            return rule
    return None
