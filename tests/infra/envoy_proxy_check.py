"""EnvoyProxy (gateway.envoyproxy.io/v1alpha1) checked without its CRD.

k8s-reference has no Envoy Gateway CRDs, so an EnvoyProxy cannot be validated against
its real schema offline. What is checked instead, so that a misspelt or misplaced field
still fails:

- the Envoy Gateway structure, against the schema below: written from Envoy Gateway's
  API types (`api/v1alpha1`: `EnvoyProxySpec.provider` → `EnvoyProxyProvider` →
  `EnvoyProxyKubernetesProvider` → `KubernetesDeploymentSpec`, `KubernetesPodSpec`,
  `KubernetesContainerSpec`, `KubernetesServiceSpec`,
  `KubernetesPodDisruptionBudgetSpec`; reference: gateway.envoyproxy.io/docs/api/
  extension_types for v1.9). Every object is closed (`additionalProperties: false`)
  over the fields those types have, enums are the API's. Only the branches the program
  can set are spelled out; a field of these types that is not listed fails, and is
  added here after checking it against the API the same way;
- the core/v1 types inside (PodSecurityContext, SecurityContext, ResourceRequirements,
  TopologySpreadConstraint, the Service's type/annotations, the PDB's minAvailable) as
  what they are, by kubernetes-validate --strict on a Pod, a Service and a
  PodDisruptionBudget built from them.

When k8s-reference gains Envoy Gateway's CRDs, `test_allowed_gaps_in_the_reference_are_
still_gaps` fails and the full CRD check replaces this one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECT = {"type": "object"}  # a core/v1 type: validated by kubernetes-validate below
_ARRAY = {"type": "array"}


def _closed(properties: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": dict(properties),
    }
    schema.update(extra)
    return schema


_POD = _closed(
    {
        "annotations": _STRING_MAP,
        "labels": _STRING_MAP,
        "securityContext": _OBJECT,
        "affinity": _OBJECT,
        "tolerations": _ARRAY,
        "volumes": _ARRAY,
        "imagePullSecrets": _ARRAY,
        "nodeSelector": _STRING_MAP,
        "topologySpreadConstraints": _ARRAY,
    }
)
_CONTAINER = _closed(
    {
        "env": _ARRAY,
        "resources": _OBJECT,
        "securityContext": _OBJECT,
        "image": {"type": "string"},
        "volumeMounts": _ARRAY,
    }
)
_PATCH = _closed(
    {"type": {"enum": ["StrategicMerge", "JSONMerge"]}, "value": {}}, required=["value"]
)
_DEPLOYMENT = _closed(
    {
        "patch": _PATCH,
        "replicas": {"type": "integer", "minimum": 0},
        "strategy": _OBJECT,
        "pod": _POD,
        "container": _CONTAINER,
        "initContainers": _ARRAY,
        "name": {"type": "string"},
    }
)
_SERVICE = _closed(
    {
        "annotations": _STRING_MAP,
        "type": {"enum": ["ClusterIP", "LoadBalancer", "NodePort"]},
        "loadBalancerClass": {"type": "string"},
        "allocateLoadBalancerNodePorts": {"type": "boolean"},
        "loadBalancerSourceRanges": {"type": "array", "items": {"type": "string"}},
        "loadBalancerIP": {"type": "string"},
        "externalTrafficPolicy": {"enum": ["Local", "Cluster"]},
        "patch": _PATCH,
        "name": {"type": "string"},
    }
)
_KUBERNETES_PROVIDER = _closed(
    {
        "envoyDeployment": _DEPLOYMENT,
        "envoyDaemonSet": _OBJECT,
        "envoyService": _SERVICE,
        "envoyHpa": _OBJECT,
        "useListenerPortAsContainerPort": {"type": "boolean"},
        "envoyPDB": _closed({"minAvailable": {"type": "integer", "minimum": 0}}),
    }
)
ENVOY_PROXY_SCHEMA: dict[str, Any] = _closed(
    {
        "apiVersion": {"const": "gateway.envoyproxy.io/v1alpha1"},
        "kind": {"const": "EnvoyProxy"},
        "metadata": _OBJECT,
        "spec": _closed(
            {
                "provider": _closed(
                    {"type": {"enum": ["Kubernetes"]}, "kubernetes": _KUBERNETES_PROVIDER},
                    required=["type"],
                ),
                # Other EnvoyProxySpec fields the program does not set (yet).
                "logging": _OBJECT,
                "telemetry": _OBJECT,
                "shutdown": _OBJECT,
                "concurrency": {"type": "integer"},
                "extraArgs": _ARRAY,
                "mergeGateways": {"type": "boolean"},
            }
        ),
    },
    required=["apiVersion", "kind", "spec"],
)


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def check_envoy_proxy(
    body: Mapping[str, Any], validate_builtin: Callable[[Mapping[str, Any]], list[str]]
) -> list[str]:
    """Errors in an EnvoyProxy; `validate_builtin` checks a core object strictly."""
    validator = jsonschema.Draft7Validator(ENVOY_PROXY_SCHEMA)
    errors = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(dict(body)), key=lambda e: list(e.absolute_path))
    ]
    if errors:
        return errors
    kubernetes = _get(body, "spec", "provider", "kubernetes") or {}
    deployment = kubernetes.get("envoyDeployment") or {}
    pod = deployment.get("pod") or {}
    container = {"name": "envoy", "image": "envoyproxy/envoy:check"}
    container.update(deployment.get("container") or {})
    pod_spec = {k: v for k, v in pod.items() if k not in ("annotations", "labels")}
    core: list[tuple[str, dict[str, Any]]] = [
        (
            "envoyDeployment",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "envoy", "labels": dict(pod.get("labels") or {})},
                "spec": {**pod_spec, "containers": [container]},
            },
        )
    ]
    service = kubernetes.get("envoyService")
    if service:
        spec = {k: service[k] for k in ("type", "externalTrafficPolicy") if k in service}
        core.append(
            (
                "envoyService",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "envoy", "annotations": service.get("annotations", {})},
                    "spec": {**spec, "ports": [{"port": 80}]},
                },
            )
        )
    budget = kubernetes.get("envoyPDB")
    if budget:
        core.append(
            (
                "envoyPDB",
                {
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {"name": "envoy"},
                    "spec": {**budget, "selector": {"matchLabels": {"app": "envoy"}}},
                },
            )
        )
    return [f"{where}: {error}" for where, obj in core for error in validate_builtin(obj)]
