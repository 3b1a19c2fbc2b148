"""Small Kubernetes building blocks the components share (not a component itself).

Manifests are written as plain dicts with the Kubernetes API's camelCase keys, exactly as
they appear in `kubectl get -o yaml`; the SDK passes them through unchanged.

The hardened security contexts live here once, so every workload the program writes
meets the restricted Pod Security profile the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

PART_OF = "todo"
DAPR_POD_LABEL = "todo.dev/dapr"
"""Pods that run a Dapr sidecar (NetworkPolicies open the sidecar's paths for them)."""
DB_CLIENT_LABEL = "todo.dev/db-client"
"""Pods that may reach the database."""
DAPR_APPS_NAMESPACE_LABEL = "todo.dev/dapr-apps"
"""Namespaces whose sidecars may reach the Dapr control plane."""
KAFKA_CLIENTS_NAMESPACE_LABEL = "todo.dev/kafka-clients"
"""Namespaces whose sidecars may reach a Kafka listener."""


def child_of(parent: pulumi.Resource, **options: Any) -> pulumi.ResourceOptions:
    """Options of a component's child: parented to the component, plus `options`."""
    return pulumi.ResourceOptions(parent=parent, **options)


def labels(app: str, component: str) -> dict[str, str]:
    """The recommended labels for one of our workloads."""
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def container_security_context() -> dict[str, Any]:
    """Restricted-profile container settings: nothing to escalate, nothing to write."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(uid: int, fs_group: int | None = None) -> dict[str, Any]:
    """Restricted-profile pod settings for a fixed non-root uid."""
    context: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        context["fsGroup"] = fs_group
        context["fsGroupChangePolicy"] = "OnRootMismatch"
    return context


def resources(
    cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str
) -> dict[str, Any]:
    """Requests and limits of one container."""
    return {
        "requests": {"cpu": cpu_request, "memory": memory_request},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


class KubernetesObject(pulumi.CustomResource):
    """Any Kubernetes object, with top-level fields besides `spec`.

    `k8s.apiextensions.CustomResource` only carries `metadata` and `spec`; Dapr objects
    also have top-level `scopes` and `auth`, which this passes through as written.
    """

    def __init__(
        self,
        name: str,
        api_version: str,
        kind: str,
        metadata: pulumi.Input[Mapping[str, Any]],
        opts: pulumi.ResourceOptions,
        **fields: pulumi.Input[Any],
    ) -> None:
        props: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
        props.update(fields)
        super().__init__(f"kubernetes:{api_version}:{kind}", name, props, opts)


def image_pull_secrets(secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """A pod spec's `imagePullSecrets`, or nothing when the images are public."""
    return {} if secret is None else {"imagePullSecrets": [{"name": secret}]}
