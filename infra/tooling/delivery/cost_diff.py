"""What a change does to a stack's monthly cost: before → after, line by line.

Each side's estimate is the one its own `todo-infra plan --out` wrote (`cost.json`: that
revision's cost model and price table), so the diff needs no new plan. A plan directory
without one (written before cost.json existed, or the empty side of a stack that a change
adds or removes) is estimated here from its `resources.json` with this checkout's model
and prices, and the diff says so.

Lines are matched by their item (`node pool todo-prod-pool`, `managed pg database-pg`,
`load balancers`, `volumes`, ...). What drives the change: the lines whose amounts moved,
largest move first. A line whose wording changed but whose amounts did not is no cost
change (two 10 GiB volumes becoming one of 20 GiB, say).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.tooling.delivery.plan_files import RESOURCES_FILE, PlanFileError
from infra.tooling.plan.cost import CostEstimate, CostLine, estimate, read_cost
from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import kubernetes_objects

_CENT = 0.005


@dataclass(frozen=True)
class PlanCost:
    """One side's estimate and where it came from."""

    estimate: CostEstimate
    recorded: bool
    """True: the plan's own cost.json; False: estimated here from its resources.json."""


@dataclass(frozen=True)
class CostLineChange:
    """One line item before and after (None: the item is not on that side)."""

    item: str
    before: CostLine | None
    after: CostLine | None

    @property
    def delta_min(self) -> float:
        return round(_min(self.after) - _min(self.before), 2)

    @property
    def delta_max(self) -> float:
        return round(_max(self.after) - _max(self.before), 2)

    @property
    def changed(self) -> bool:
        return abs(self.delta_min) > _CENT or abs(self.delta_max) > _CENT


@dataclass(frozen=True)
class CostDiff:
    """The monthly cost of a stack before and after a change."""

    before: CostEstimate
    after: CostEstimate
    lines: tuple[CostLineChange, ...]
    """Every line item of either side, in the order the plans list them."""
    notes: tuple[str, ...] = ()

    @property
    def delta_min(self) -> float:
        return round(self.after.monthly_min - self.before.monthly_min, 2)

    @property
    def delta_max(self) -> float:
        return round(self.after.monthly_max - self.before.monthly_max, 2)

    @property
    def has_changes(self) -> bool:
        return any(line.changed for line in self.lines)

    @property
    def drivers(self) -> list[CostLineChange]:
        """The lines whose amounts moved, the largest move first."""
        moved = [line for line in self.lines if line.changed]
        return sorted(moved, key=lambda c: abs(c.delta_min) + abs(c.delta_max), reverse=True)


def _min(line: CostLine | None) -> float:
    return line.monthly_min if line is not None else 0.0


def _max(line: CostLine | None) -> float:
    return line.monthly_max if line is not None else 0.0


def diff_costs(
    before: PlanCost, after: PlanCost, *, side_names: tuple[str, str] = ("base", "head")
) -> CostDiff:
    """Line by line, matched by item."""
    old = {line.item: line for line in before.estimate.lines}
    new = {line.item: line for line in after.estimate.lines}
    items = [*old, *(item for item in new if item not in old)]
    notes: list[str] = []
    for name, side in zip(side_names, (before, after), strict=True):
        if not side.recorded:
            notes.append(
                f"the {name} plan has no cost.json: its cost was estimated from its "
                "resources.json with this checkout's cost model and prices"
            )
    if before.estimate.as_of and after.estimate.as_of != before.estimate.as_of:
        notes.append(
            f"list prices as of {before.estimate.as_of} → {after.estimate.as_of}: part of "
            "the change may be the price table's"
        )
    return CostDiff(
        before=before.estimate,
        after=after.estimate,
        lines=tuple(CostLineChange(item, old.get(item), new.get(item)) for item in items),
        notes=tuple(notes),
    )


def load_cost(directory: Path) -> PlanCost:
    """A plan directory's estimate: its cost.json, else estimated from its resources.json."""
    try:
        recorded = read_cost(directory)
    except (ValueError, KeyError, TypeError) as error:
        raise PlanFileError(f"{directory / 'cost.json'}: not a cost estimate ({error})") from error
    if recorded is not None:
        return PlanCost(recorded, recorded=True)
    return PlanCost(_estimate_from_resources(directory), recorded=False)


def _estimate_from_resources(directory: Path) -> CostEstimate:
    """The estimate of the resources a resources.json lists (secrets are masked there,
    and no cost input is a secret)."""
    path = directory / RESOURCES_FILE
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise PlanFileError(f"{path}: cannot estimate its cost ({error})") from error
    entries = document.get("resources", []) if isinstance(document, Mapping) else document
    resources = {
        str(entry.get("urn") or index): _recorded(entry, index)
        for index, entry in enumerate(entries)
        if isinstance(entry, Mapping)
    }
    return estimate(resources, kubernetes_objects(resources.values()))


def _recorded(entry: Mapping[str, Any], index: int) -> RecordedResource:
    inputs = dict(entry.get("inputs") or {})
    return RecordedResource(
        urn=str(entry.get("urn") or index),
        type=str(entry.get("type", "")),
        name=str(entry.get("name", "")),
        parent=entry.get("parent") or None,
        provider=entry.get("provider") or None,
        dependencies=tuple(entry.get("dependencies") or ()),
        custom=bool(entry.get("custom", True)),
        inputs=inputs,
        has_secrets=bool(entry.get("secretDigests")),
        raw_inputs=inputs,
        read=bool(entry.get("read", False)),
    )
