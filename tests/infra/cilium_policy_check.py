"""A closed check of the CiliumNetworkPolicy fields the program sets.

The CRD (`ciliumnetworkpolicies.cilium.io`) is not in k8s-reference: Cilium's agent
registers it at start-up rather than shipping it in a chart, and DOKS runs its own Cilium
version. The fields used here are checked against Cilium's v2 API types instead, closed
at every level so that a misspelt field fails; the proving ground (kind + Cilium) applies
the real thing with a server-side dry run.

Sources (cilium/cilium, pkg/policy/api): `Entity` is an enum (`+kubebuilder:validation:
Enum=all;world;cluster;host;init;ingress;unmanaged;remote-node;health;none;kube-apiserver`,
entity.go); `PortProtocol` an enum of TCP, UDP, SCTP, ICMP, ICMPv6, VRRP, IGMP and ANY
(l4.go); a port is a string, a number 0-65535 or a name (l4.go `PortProtocol.Port`);
`endpointSelector` is a Kubernetes label selector (selector.go).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

ENTITIES = (
    "all",
    "world",
    "cluster",
    "host",
    "init",
    "ingress",
    "unmanaged",
    "remote-node",
    "health",
    "none",
    "kube-apiserver",
)
PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP", "ICMPv6", "VRRP", "IGMP", "ANY")
# l4.go: "+kubebuilder:validation:Pattern=..." a decimal port 0-65535 or an IANA name.
PORT_PATTERN = (
    r"^(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})$"
    r"|^([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*$"
)


def _closed(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": required or [],
    }


_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_SELECTOR = _closed(
    {
        "matchLabels": _STRINGS,
        "matchExpressions": {
            "type": "array",
            "items": _closed(
                {
                    "key": {"type": "string", "minLength": 1},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
                required=["key", "operator"],
            ),
        },
    }
)
_PORTS = {
    "type": "array",
    "minItems": 1,
    "items": _closed(
        {
            "ports": {
                "type": "array",
                "minItems": 1,
                "items": _closed(
                    {
                        "port": {"type": "string", "pattern": PORT_PATTERN},
                        "protocol": {"enum": list(PROTOCOLS)},
                    },
                    required=["port"],
                ),
            }
        },
        required=["ports"],
    ),
}
_ENTITIES = {"type": "array", "minItems": 1, "items": {"enum": list(ENTITIES)}}
CILIUM_POLICY_SCHEMA: dict[str, Any] = _closed(
    {
        "apiVersion": {"const": "cilium.io/v2"},
        "kind": {"const": "CiliumNetworkPolicy"},
        "metadata": {"type": "object"},
        "spec": _closed(
            {
                "endpointSelector": _SELECTOR,
                "egress": {
                    "type": "array",
                    "items": _closed({"toEntities": _ENTITIES, "toPorts": _PORTS}),
                },
                "ingress": {
                    "type": "array",
                    "items": _closed({"fromEntities": _ENTITIES, "toPorts": _PORTS}),
                },
            },
            required=["endpointSelector"],
        ),
    },
    required=["apiVersion", "kind", "metadata", "spec"],
)


def check_cilium_policy(
    body: Mapping[str, Any], validate_builtin: Callable[[Mapping[str, Any]], list[str]]
) -> list[str]:
    """Errors in a CiliumNetworkPolicy (the fields the program uses, closed)."""
    del validate_builtin  # no core/v1 parts inside
    validator = jsonschema.Draft7Validator(CILIUM_POLICY_SCHEMA)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(dict(body)), key=lambda e: list(e.absolute_path))
    ]
