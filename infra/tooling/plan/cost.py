"""Monthly cost of a planned stack from DigitalOcean's list prices.

Every line is computed from the planned resources, never from the stack's name: the
DOKS cluster's node pools (at their minimum and maximum node counts when autoscaling),
the HA control plane, managed database clusters (primary plus standby nodes) and
read-only replicas, load balancers (Services of type LoadBalancer, Gateways that Envoy
Gateway backs with a DigitalOcean load balancer, and load balancer resources), block
storage volumes (every persistent volume the plan claims, see
`infra.tooling.plan.volumes`) and the container registry tier.

Prices come from `digitalocean_prices.yaml` next to this file, dated, with its sources.

`todo-infra plan --out DIR` writes the estimate to `DIR/cost.json` (`write_cost`), so
that `todo-infra diff` compares two plans' costs as each side's code and price table
computed them, without planning again (`read_cost`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import KubernetesObject
from infra.tooling.plan.volumes import planned_volume_claims

PRICES_FILE = Path(__file__).with_name("digitalocean_prices.yaml")
COST_FILE = "cost.json"

CLUSTER_TYPE = "digitalocean:index/kubernetesCluster:KubernetesCluster"
NODE_POOL_TYPE = "digitalocean:index/kubernetesNodePool:KubernetesNodePool"
DATABASE_TYPE = "digitalocean:index/databaseCluster:DatabaseCluster"
REPLICA_TYPE = "digitalocean:index/databaseReplica:DatabaseReplica"
LOAD_BALANCER_TYPE = "digitalocean:index/loadBalancer:LoadBalancer"
REGISTRY_TYPE = "digitalocean:index/containerRegistry:ContainerRegistry"
LB_SIZE_ANNOTATION = "service.beta.kubernetes.io/do-loadbalancer-size-unit"
# DOKS' own Gateway class is implemented by Cilium; the program must not use it, and a
# Gateway of that class would not be an Envoy Gateway load balancer.
DOKS_GATEWAY_CLASSES = frozenset({"cilium"})


class UnknownPriceError(KeyError):
    """A planned size has no price in the table."""


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    sources: dict[str, str]
    data: dict[str, Any]

    def price(self, section: str, key: str) -> float:
        try:
            return float(self.data[section][key])
        except KeyError as error:
            raise UnknownPriceError(
                f"no {section} price for {key!r} in {PRICES_FILE.name} (as of {self.as_of}); "
                "add it from the source page"
            ) from error


@cache
def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    data = yaml.safe_load(path.read_text())
    return PriceTable(as_of=str(data["as_of"]), sources=dict(data["sources"]), data=data)


@dataclass(frozen=True)
class CostLine:
    item: str
    detail: str
    monthly_min: float
    monthly_max: float


@dataclass
class CostEstimate:
    lines: list[CostLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    as_of: str = ""

    @property
    def monthly_min(self) -> float:
        return round(sum(line.monthly_min for line in self.lines), 2)

    @property
    def monthly_max(self) -> float:
        return round(sum(line.monthly_max for line in self.lines), 2)

    def drivers(self, top: int = 3) -> list[CostLine]:
        """The lines that weigh most at the minimum."""
        return sorted(self.lines, key=lambda line: line.monthly_min, reverse=True)[:top]

    def document(self) -> dict[str, Any]:
        """The estimate as `cost.json` holds it."""
        return {
            "currency": "USD",
            "asOf": self.as_of,
            "monthlyMin": self.monthly_min,
            "monthlyMax": self.monthly_max,
            "lines": [
                {
                    "item": line.item,
                    "detail": line.detail,
                    "monthlyMin": round(line.monthly_min, 2),
                    "monthlyMax": round(line.monthly_max, 2),
                }
                for line in self.lines
            ],
            "notes": list(self.notes),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> CostEstimate:
        """The estimate a `cost.json` holds (KeyError/TypeError/ValueError if malformed)."""
        lines = [
            CostLine(
                str(line["item"]),
                str(line["detail"]),
                float(line["monthlyMin"]),
                float(line["monthlyMax"]),
            )
            for line in document["lines"]
        ]
        return cls(
            lines=lines,
            notes=[str(note) for note in document.get("notes", [])],
            as_of=str(document.get("asOf", "")),
        )


def write_cost(estimate: CostEstimate, out_dir: Path) -> Path:
    """Write `OUT_DIR/cost.json`."""
    path = out_dir / COST_FILE
    path.write_text(json.dumps(estimate.document(), indent=2, sort_keys=True) + "\n")
    return path


def read_cost(directory: Path) -> CostEstimate | None:
    """The estimate in `DIRECTORY/cost.json`; None when the plan has none (written by a
    `todo-infra` before cost.json existed)."""
    path = directory / COST_FILE
    if not path.is_file():
        return None
    return CostEstimate.from_document(json.loads(path.read_text(encoding="utf-8")))


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) else default


def _node_pool_line(prices: PriceTable, owner: str, pool: Mapping[str, Any]) -> CostLine:
    size = str(pool.get("size"))
    each = prices.price("droplets", size)
    if pool.get("autoScale"):
        low, high = _int(pool.get("minNodes"), 1), _int(pool.get("maxNodes"), 1)
    else:
        low = high = _int(pool.get("nodeCount"), 1)
    nodes = f"{low}" if low == high else f"{low}-{high}"
    return CostLine(
        f"node pool {pool.get('name', owner)}",
        f"{nodes} × {size} @ ${each:.2f}",
        low * each,
        high * each,
    )


def _cluster_lines(prices: PriceTable, resource: RecordedResource) -> list[CostLine]:
    inputs = resource.inputs
    lines = [_node_pool_line(prices, resource.name, inputs.get("nodePool") or {})]
    if inputs.get("ha"):
        ha = prices.price("kubernetes", "ha_control_plane")
        lines.append(
            CostLine("HA control plane", f"cluster {inputs.get('name', resource.name)}", ha, ha)
        )
    return lines


def _database_lines(
    prices: PriceTable, resource: RecordedResource, notes: list[str]
) -> list[CostLine]:
    inputs = resource.inputs
    size = str(inputs.get("size"))
    nodes = _int(inputs.get("nodeCount"), 1)
    each = prices.price("managed_databases", size)
    if nodes > 1 and size == "db-s-1vcpu-1gb":
        notes.append(f"database {resource.name}: standby nodes need a size with 2 GB RAM or more")
    standby = f" + {nodes - 1} standby" if nodes > 1 else ""
    detail = f"1 primary{standby} × {size} @ ${each:.2f}"
    return [
        CostLine(
            f"managed {inputs.get('engine', 'db')} {resource.name}",
            detail,
            nodes * each,
            nodes * each,
        )
    ]


def _load_balancer_count(
    objects: Iterable[KubernetesObject], resources: Iterable[RecordedResource]
) -> list[tuple[str, int]]:
    """(what, size units) for every load balancer the plan leads to."""
    balancers: list[tuple[str, int]] = []
    for obj in objects:
        annotations = (obj.body.get("metadata") or {}).get("annotations") or {}
        raw_units = str(annotations.get(LB_SIZE_ANNOTATION, "1"))
        units = int(raw_units) if raw_units.isdigit() else 1
        if obj.kind == "Service" and (obj.body.get("spec") or {}).get("type") == "LoadBalancer":
            balancers.append((f"Service {obj.namespace}/{obj.name}", units))
        elif obj.kind == "Gateway" and obj.group == "gateway.networking.k8s.io":
            gateway_class = (obj.body.get("spec") or {}).get("gatewayClassName")
            if gateway_class not in DOKS_GATEWAY_CLASSES:
                balancers.append((f"Gateway {obj.namespace}/{obj.name}", units))
    for resource in resources:
        if resource.type == LOAD_BALANCER_TYPE:
            balancers.append(
                (f"load balancer {resource.name}", _int(resource.inputs.get("sizeUnit"), 1))
            )
    return balancers


def estimate(
    resources: Mapping[str, RecordedResource],
    objects: list[KubernetesObject],
    prices: PriceTable | None = None,
) -> CostEstimate:
    """The monthly estimate for a planned stack (min: autoscalers at minimum).

    Lines and details come in URN order, not registration order (which varies from run to
    run): the same plan always gives the same cost.json."""
    table = prices or load_prices()
    result = CostEstimate(as_of=table.as_of)
    for resource in sorted(resources.values(), key=lambda r: r.urn):
        if resource.type == CLUSTER_TYPE:
            result.lines.extend(_cluster_lines(table, resource))
        elif resource.type == NODE_POOL_TYPE:
            result.lines.append(_node_pool_line(table, resource.name, resource.inputs))
        elif resource.type == DATABASE_TYPE:
            result.lines.extend(_database_lines(table, resource, result.notes))
        elif resource.type == REPLICA_TYPE:
            size = str(resource.inputs.get("size"))
            each = table.price("managed_databases", size)
            result.lines.append(CostLine(f"read-only node {resource.name}", size, each, each))
        elif resource.type == REGISTRY_TYPE:
            tier = str(resource.inputs.get("subscriptionTierSlug", "starter"))
            each = table.price("container_registry", tier)
            result.lines.append(CostLine("container registry", tier, each, each))
    has_cloud_cluster = any(r.type == CLUSTER_TYPE for r in resources.values())
    if not has_cloud_cluster:
        result.notes.append(
            "no DigitalOcean cluster in this stack: in-cluster items cost nothing here"
        )
        return result
    balancers = sorted(_load_balancer_count(objects, resources.values()))
    if balancers:
        per_node = table.price("load_balancers", "per_node")
        units = sum(unit for _, unit in balancers)
        names = ", ".join(name for name, _ in balancers)
        result.lines.append(
            CostLine(
                "load balancers", f"{units} node(s): {names}", units * per_node, units * per_node
            )
        )
    claims = sorted(planned_volume_claims(objects), key=lambda c: (c.source, c.size_gib))
    if claims:
        per_gib = table.price("volumes", "per_gib")
        total = sum(claim.total_gib for claim in claims)
        detail = ", ".join(f"{c.source} {c.count}×{c.size_gib:g}Gi" for c in claims)
        result.lines.append(
            CostLine("volumes", f"{total:g} GiB: {detail}", total * per_gib, total * per_gib)
        )
    if not any(r.type == REGISTRY_TYPE for r in resources.values()):
        result.notes.append(
            "no DigitalOcean container registry planned (images come from elsewhere)"
        )
    return result
