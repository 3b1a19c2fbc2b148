"""Persistent volumes the planned system will claim (on DOKS: DigitalOcean volumes).

Found from the plan, not from a list: PersistentVolumeClaims, StatefulSets'
`volumeClaimTemplates` × replicas, Strimzi node pools' persistent storage × replicas,
and the Helm releases whose values ask for storage (Dapr's scheduler where it runs,
Prometheus, Alertmanager, Grafana, Tempo, Loki).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.tooling.plan.footprint import dapr_component_enabled, release_values
from infra.tooling.plan.objects import KubernetesObject
from infra.tooling.plan.quantities import GIB, QuantityError, bytes_of


@dataclass(frozen=True)
class VolumeClaim:
    source: str
    count: int
    size_gib: float

    @property
    def total_gib(self) -> float:
        return self.count * self.size_gib


def _get(values: Any, path: str, default: Any = None) -> Any:
    current = values
    for key in path.split("."):
        if not isinstance(current, Mapping) or key not in current:
            return default
        current = current[key]
    return current


def _gib(size: Any) -> float:
    try:
        return bytes_of(size) / GIB
    except QuantityError:
        return 0.0


def _claim_template_gib(template: Any) -> float:
    return _gib(_get(template, "spec.resources.requests.storage", "0"))


def _kafka_storage_gib(storage: Any) -> float:
    if not isinstance(storage, Mapping):
        return 0.0
    if storage.get("type") == "persistent-claim":
        return _gib(storage.get("size", "0"))
    if storage.get("type") == "jbod":
        return sum(_kafka_storage_gib(volume) for volume in storage.get("volumes") or [])
    return 0.0  # ephemeral


def _helm_claims(obj: KubernetesObject) -> list[VolumeClaim]:
    chart = str(obj.body["spec"].get("chart", "")).rsplit("/", 1)[-1]
    values, _ = release_values(obj)
    claims: list[VolumeClaim] = []
    if (
        chart == "dapr"
        and dapr_component_enabled(values, "scheduler")
        and not _get(values, "dapr_scheduler.cluster.inMemoryStorage", False)
    ):
        ha = _get(values, "global.ha.enabled", False)
        replicas = int(_get(values, "global.ha.replicaCount", 3)) if ha else 1
        size = _gib(_get(values, "dapr_scheduler.cluster.storageSize", "0"))
        claims.append(VolumeClaim(f"helm {obj.name}: dapr-scheduler", replicas, size))
    if chart == "kube-prometheus-stack":
        for part, spec_key, storage_key in (
            ("prometheus", "prometheusSpec", "storageSpec"),
            ("alertmanager", "alertmanagerSpec", "storage"),
        ):
            if not _get(values, f"{part}.enabled", True):
                continue
            template = _get(values, f"{part}.{spec_key}.{storage_key}.volumeClaimTemplate")
            if template:
                replicas = int(_get(values, f"{part}.{spec_key}.replicas", 1) or 1)
                claims.append(
                    VolumeClaim(f"helm {obj.name}: {part}", replicas, _claim_template_gib(template))
                )
        if _get(values, "grafana.persistence.enabled", False):
            size = _gib(_get(values, "grafana.persistence.size", "10Gi"))
            claims.append(VolumeClaim(f"helm {obj.name}: grafana", 1, size))
    if chart == "tempo" and _get(values, "persistence.enabled", False):
        # The StatefulSet's `storage` claim template (templates/statefulset.yaml).
        replicas = int(_get(values, "replicas", 1) or 1)
        size = _gib(_get(values, "persistence.size", "10Gi"))
        claims.append(VolumeClaim(f"helm {obj.name}: tempo", replicas, size))
    if (
        chart == "loki"
        and _get(values, "singleBinary.persistence.enabled", False)
        and int(_get(values, "singleBinary.replicas", 0) or 0) > 0
    ):
        # The single binary's StatefulSet `storage` claim template (templates/_workload.tpl).
        replicas = int(_get(values, "singleBinary.replicas", 0))
        size = _gib(_get(values, "singleBinary.persistence.size", "10Gi"))
        claims.append(VolumeClaim(f"helm {obj.name}: loki", replicas, size))
    return claims


def planned_volume_claims(objects: list[KubernetesObject]) -> list[VolumeClaim]:
    claims: list[VolumeClaim] = []
    for obj in objects:
        label = f"{obj.kind} {obj.namespace + '/' if obj.namespace else ''}{obj.name}"
        if obj.kind == "PersistentVolumeClaim":
            claims.append(VolumeClaim(label, 1, _claim_template_gib(obj.body)))
        elif obj.kind == "StatefulSet":
            replicas = int(_get(obj.body, "spec.replicas", 1))
            for template in _get(obj.body, "spec.volumeClaimTemplates", []) or []:
                claims.append(VolumeClaim(label, replicas, _claim_template_gib(template)))
        elif obj.kind == "KafkaNodePool":
            size = _kafka_storage_gib(_get(obj.body, "spec.storage"))
            if size:
                claims.append(VolumeClaim(label, int(_get(obj.body, "spec.replicas", 1)), size))
        elif obj.is_helm_release:
            claims.extend(_helm_claims(obj))
    return [claim for claim in claims if claim.total_gib > 0]
