"""Which pod may talk to which, by the NetworkPolicies a plan renders.

A small evaluator of `networking.k8s.io/v1` semantics for pod-to-pod traffic: a
connection needs the source's egress and the destination's ingress to allow it. A side
no policy selects (for that direction) is open; otherwise one rule of one selecting
policy must match the peer and the port. Peers are matched by namespace labels (the
rendered Namespaces' labels plus `kubernetes.io/metadata.name`) and pod labels.
`ipBlock` peers never match pods: CNIs such as Cilium (DOKS) do not apply CIDR rules to
pod traffic, so a path that only an ipBlock opens is treated as closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.plan.objects import KubernetesObject


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it."""

    namespace: str
    labels: Mapping[str, str]
    name: str = ""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    egress_by: tuple[str, ...] = ()
    """Policies that selected the source for egress (empty: egress not fenced)."""
    ingress_by: tuple[str, ...] = ()
    """Policies that selected the destination for ingress."""


@dataclass
class Policies:
    policies: list[Mapping[str, Any]] = field(default_factory=list)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, objects: Iterable[KubernetesObject]) -> Policies:
        result = cls()
        for obj in objects:
            if obj.kind == "NetworkPolicy":
                result.policies.append(obj.body)
            elif obj.kind == "Namespace":
                labels = dict(obj.body["metadata"].get("labels") or {})
                labels["kubernetes.io/metadata.name"] = obj.name
                result.namespace_labels[obj.name] = labels
        return result

    def _namespace(self, name: str) -> dict[str, str]:
        return self.namespace_labels.get(name, {"kubernetes.io/metadata.name": name})

    def _peer(self, peer: Mapping[str, Any], pod: Pod, policy_namespace: str) -> bool:
        if "ipBlock" in peer:
            return False
        namespaces, pods = peer.get("namespaceSelector"), peer.get("podSelector")
        in_namespace = (
            selects(namespaces, self._namespace(pod.namespace))
            if namespaces is not None
            else pod.namespace == policy_namespace
        )
        return in_namespace and (pods is None or selects(pods, pod.labels))

    def _side(self, pod: Pod, other: Pod, port: int, direction: str) -> tuple[bool, list[str]]:
        rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        selecting = [
            policy
            for policy in self.policies
            if policy["metadata"]["namespace"] == pod.namespace
            and direction in policy["spec"].get("policyTypes", [])
            and selects(policy["spec"].get("podSelector") or {}, pod.labels)
        ]
        names = [str(policy["metadata"]["name"]) for policy in selecting]
        if not selecting:
            return True, names
        for policy in selecting:
            for rule in policy["spec"].get(rules_key) or []:
                peers = rule.get(peers_key)
                peer_ok = peers is None or any(
                    self._peer(peer, other, pod.namespace) for peer in peers
                )
                if peer_ok and _port(rule.get("ports"), port):
                    return True, names
        return False, names

    def verdict(self, source: Pod, destination: Pod, port: int) -> Verdict:
        egress, egress_by = self._side(source, destination, port, "Egress")
        ingress, ingress_by = self._side(destination, source, port, "Ingress")
        return Verdict(egress and ingress, tuple(egress_by), tuple(ingress_by))


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector (`{}` selects everything)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and labels.get(key) in values)
            or (operator == "Exists" and key not in labels)
            or (operator == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def _port(ports: list[Mapping[str, Any]] | None, port: int) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        low = entry.get("port")
        high = entry.get("endPort", low)
        if low is None or (isinstance(low, int) and low <= port <= int(high)):
            return True
    return False
