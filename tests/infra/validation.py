"""Offline validation of rendered objects: built-in kinds, custom resources, Helm values.

- Built-in kinds: kubernetes-validate's bundled OpenAPI schemas in strict mode (unknown
  fields are errors), for the stack's Kubernetes minor version.
- Custom resources: the CRD's `openAPIV3Schema` for the object's version, from
  k8s-reference, made strict the way `kubectl --validate=strict` is: an object schema
  that lists its properties rejects others unless it says
  `x-kubernetes-preserve-unknown-fields`. (The API server would silently prune them,
  which is how a misspelt field goes unnoticed.) A kind with no CRD is an error.
- Helm values: every key path must exist in the chart's default values (with subcharts'
  defaults under their names); Helm ignores unknown keys, so a typo silently changes
  nothing. Where a default is an empty map or a list, or the chart declares free-form
  maps, the keys below are the user's and are not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils

from infra.tooling.plan.reference import crd_documents
from tests.infra.cilium_policy_check import check_cilium_policy
from tests.infra.envoy_proxy_check import check_envoy_proxy

# Group/version pairs served by the API server itself (everything else needs a CRD).
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "certificates.k8s.io",
        "discovery.k8s.io",
        "node.k8s.io",
    }
)
# Custom resource kinds the program uses whose CRDs are not in k8s-reference: why, and
# what is checked instead of the CRD schema. Every other kind without a CRD fails.
# `test_allowed_gaps_in_the_reference_are_still_gaps` fails once the reference gains one
# of them, so that the exception is removed and the full check applies.
CRDS_MISSING_FROM_REFERENCE: dict[tuple[str, str, str], tuple[str, str]] = {
    ("gateway.envoyproxy.io", "v1alpha1", "EnvoyProxy"): (
        "Envoy Gateway's own CRDs (gateway-crds-helm) are not in k8s-reference",
        "the fields we set against Envoy Gateway's v1alpha1 API types, closed at every "
        "level, and their core/v1 parts with kubernetes-validate --strict "
        "(tests/infra/envoy_proxy_check.py)",
    ),
    ("cilium.io", "v2", "CiliumNetworkPolicy"): (
        "Cilium's agent registers its CRDs itself (no chart ships them) and DOKS runs its "
        "own Cilium version",
        "the fields we set against Cilium's v2 API types, closed at every level "
        "(tests/infra/cilium_policy_check.py); the proving ground applies the real CRD",
    ),
}
_CHECKS_WITHOUT_CRD: dict[tuple[str, str, str], Callable[..., list[str]]] = {
    ("gateway.envoyproxy.io", "v1alpha1", "EnvoyProxy"): check_envoy_proxy,
    ("cilium.io", "v2", "CiliumNetworkPolicy"): check_cilium_policy,
}
# Charts (by name) whose values k8s-reference does not have, with the reason.
CHARTS_MISSING_FROM_REFERENCE = {
    "gateway-crds-helm": "k8s-reference has gateway-helm's values, not gateway-crds-helm's",
}
# Subcharts whose default values are not in k8s-reference (the parent chart's
# values.yaml lists only the few keys it overrides).
SUBCHARTS_MISSING_FROM_REFERENCE = {
    "kube-prometheus-stack": frozenset(
        {
            "grafana",
            "kube-state-metrics",
            "prometheus-node-exporter",
            "prometheus-windows-exporter",
            "crds",
        }
    ),
}
# The keys the program sets below those subcharts that the parent's defaults do not have,
# each with where it was checked by hand (the subchart's own values.yaml). Any other key
# there is reported like a misspelt one: add it here only after checking it the same way.
SUBCHART_KEYS_CHECKED_BY_HAND: dict[str, dict[str, str]] = {
    "kube-prometheus-stack": {
        "grafana.resources": "grafana chart values.yaml `resources`: the Grafana container",
        "grafana.sidecar.resources": (
            "grafana chart values.yaml `sidecar.resources`: every k8s-sidecar container"
        ),
        "grafana.testFramework": "grafana chart values.yaml `testFramework.enabled`",
        "grafana.rbac.namespaced": "grafana chart values.yaml `rbac.namespaced` (a Role)",
        "grafana.grafana.ini": "grafana chart values.yaml `grafana.ini` (free-form INI sections)",
        "kube-state-metrics.resources": "kube-state-metrics chart values.yaml `resources`",
    },
}

# Helm values whose keys are free-form by design (maps of user-chosen names).
FREE_FORM_VALUE_KEYS = frozenset(
    {
        "annotations",
        "podAnnotations",
        "labels",
        "podLabels",
        "commonLabels",
        "nodeSelector",
        "extraArgs",
        "extraEnv",
        "env",
        "additionalLabels",
        "matchLabels",
        "data",
        "stringData",
        "grafana.ini",
        "datasources",
        "dashboards",
        "dashboardProviders",
        "additionalPrometheusRulesMap",
        "ruleSelector",
        "serviceMonitorSelector",
        "podMonitorSelector",
        "probeSelector",
        "scrapeConfigSelector",
        "ruleNamespaceSelector",
        "serviceMonitorNamespaceSelector",
        "podMonitorNamespaceSelector",
        "resources",
        "requests",
        "limits",
        "securityContext",
        "containerSecurityContext",
        "podSecurityContext",
        "affinity",
        "storageSpec",
        "volumeClaimTemplate",
        "config",
    }
)


def api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def is_builtin(body: Mapping[str, Any]) -> bool:
    return api_group(str(body.get("apiVersion", ""))) in BUILTIN_GROUPS


def validate_builtin(body: Mapping[str, Any], kubernetes_version: str) -> list[str]:
    """kubernetes-validate --strict on one object; messages with the failing path."""
    try:
        kubernetes_validate.validate(dict(body), kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return [f"{path or '<root>'}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"no schema: {error.message}"]
    return []


def supported_kubernetes_versions() -> list[str]:
    return list(kubernetes_validate.utils.all_versions())


@dataclass(frozen=True)
class CrdVersion:
    group: str
    kind: str
    version: str
    schema: dict[str, Any]


@cache
def crd_index() -> dict[tuple[str, str, str], CrdVersion]:
    """(group, version, kind) → schema, for every served version in k8s-reference."""
    index: dict[tuple[str, str, str], CrdVersion] = {}
    for crd in crd_documents():
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            schema = strict_schema(version["schema"]["openAPIV3Schema"])
            key = (spec["group"], version["name"], spec["names"]["kind"])
            index[key] = CrdVersion(spec["group"], spec["names"]["kind"], version["name"], schema)
    return index


def strict_schema(schema: Any) -> Any:
    """The schema with `additionalProperties: false` wherever properties are closed."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    result = {key: strict_schema(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        # `metadata` of the CR is the API server's ObjectMeta, not the CRD's to close.
        result["additionalProperties"] = False
    return result


def validate_custom(body: Mapping[str, Any], kubernetes_version: str = "1.34") -> list[str]:
    """The object against its CRD's schema; an unknown kind is itself an error.

    Kinds in CRDS_MISSING_FROM_REFERENCE get their stand-in check instead (core/v1 parts
    validated for `kubernetes_version`).
    """
    api_version = str(body.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    key = (group, version, str(body.get("kind")))
    crd = crd_index().get(key)
    if crd is None:
        if key in _CHECKS_WITHOUT_CRD:
            return _CHECKS_WITHOUT_CRD[key](
                body, lambda obj: validate_builtin(obj, kubernetes_version)
            )
        return [f"no CRD in k8s-reference for {api_version} {body.get('kind')}"]
    document = {k: v for k, v in body.items() if k != "metadata"}
    schema = dict(crd.schema)
    properties = dict(schema.get("properties") or {})
    properties.pop("metadata", None)  # ObjectMeta: validated by the API server, not the CRD
    schema["properties"] = properties
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def unknown_value_keys(
    values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    prefix: str = "",
    *,
    unchecked: frozenset[str] = frozenset(),
) -> Iterator[str]:
    """Key paths in `values` that the chart's defaults do not have.

    `unchecked`: top-level keys (subcharts) whose defaults are not known; their own
    keys are taken as they are.
    """
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if not prefix and key in unchecked:
            continue
        if key not in defaults:
            yield path
            continue
        default = defaults[key]
        if key in FREE_FORM_VALUE_KEYS or not isinstance(default, Mapping) or not default:
            continue  # free-form, a list, a scalar, or an empty map the user fills
        if isinstance(value, Mapping):
            yield from unknown_value_keys(value, default, path)
