"""Compare two offline plans: what would be created, deleted, replaced or updated.

Resources are matched by URN. For a resource in both plans the inputs are compared field
by field; lists whose items all carry a unique `name` (containers, env vars, ports,
volumes) are matched by that name, so inserting one env var shows as one change rather than
a shifted list. Secret inputs are compared through their digests (see
`infra.tooling.plan.secret_digest`) and their values are never carried into the result.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from infra.policy.rules import SECRET_MASK
from infra.tooling.delivery.cost_diff import CostDiff, diff_costs, load_cost
from infra.tooling.delivery.plan_files import Plan, PlannedResource, load_plan
from infra.tooling.delivery.replacement import (
    ReplaceRule,
    kubernetes_kind,
    replacing_rule,
    rules_for,
)
from infra.tooling.plan.field_paths import (
    ABSENT,
    Named,
    PathPart,
    format_path,
    named_items,
    paths_to,
    value_at,
)


class Action(StrEnum):
    CREATE = "create"
    DELETE = "delete"
    REPLACE = "replace"
    UPDATE = "update"


class SecretState(StrEnum):
    """What can be said about a secret input without looking at it."""

    CHANGED = "changed"
    """Its digest differs between the plans."""
    MAY_CHANGE = "may change"
    """No digests to compare, but something it depends on changes."""
    BECAME_SECRET = "became secret"
    NO_LONGER_SECRET = "no longer secret"


@dataclass(frozen=True)
class FieldChange:
    """One changed input field. For secret fields `before`/`after` are the mask only."""

    path: str
    before: Any
    after: Any
    secret: SecretState | None = None
    replaces: ReplaceRule | None = None


@dataclass(frozen=True)
class ResourceChange:
    """What the diff expects to happen to one resource."""

    action: Action
    key: str
    type: str
    name: str
    fields: tuple[FieldChange, ...] = ()
    replace_reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def short_type(self) -> str:
        return short_type(self.type)


@dataclass(frozen=True)
class PlanDiff:
    """The difference between two plans of the same stack."""

    base: str
    head: str
    changes: tuple[ResourceChange, ...]
    unchanged: int
    secret_digests: bool
    """Whether both plans carry secret digests (else secret config changes are invisible)."""
    notes: tuple[str, ...] = ()
    cost: CostDiff | None = None
    """The monthly cost before and after (`with_cost`); None when not compared."""

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def of(self, action: Action) -> list[ResourceChange]:
        return [change for change in self.changes if change.action is action]

    def count(self, action: Action) -> int:
        return len(self.of(action))


def short_type(type_token: str) -> str:
    """`kubernetes:apps/v1:Deployment` → `apps/v1:Deployment`; `index/` modules are dropped."""
    provider, _, rest = type_token.partition(":")
    module, _, name = rest.rpartition(":")
    if not rest or not module:
        return type_token
    if provider == "kubernetes":
        return f"{module}:{name}"
    if module == "index" or module.startswith("index/"):
        return f"{provider}:{name}"
    return type_token


def _is_secret(value: Any) -> bool:
    return bool(value == SECRET_MASK)


# ----------------------------------------------------------------------------- fields


def _walk(
    before: Any, after: Any, path: tuple[PathPart, ...]
) -> Iterator[tuple[tuple[PathPart, ...], Any, Any]]:
    """(path, before, after) for every leaf-level difference; ABSENT marks a missing side."""
    if before == after:
        return
    if _is_secret(before) or _is_secret(after):
        yield path, before, after
    elif isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in [*before, *(k for k in after if k not in before)]:
            yield from _walk(before.get(key, ABSENT), after.get(key, ABSENT), (*path, str(key)))
    elif isinstance(before, list) and isinstance(after, list):
        old, new = named_items(before), named_items(after)
        if old is not None and new is not None:
            for name in [*old, *(n for n in new if n not in old)]:
                yield from _walk(old.get(name, ABSENT), new.get(name, ABSENT), (*path, Named(name)))
        else:
            for index in range(max(len(before), len(after))):
                yield from _walk(
                    before[index] if index < len(before) else ABSENT,
                    after[index] if index < len(after) else ABSENT,
                    (*path, index),
                )
    else:
        yield path, before, after


def _secret_state(
    path: str, before: Any, after: Any, base: PlannedResource, head: PlannedResource, upstream: bool
) -> SecretState | None:
    """What to report for a field where either side is secret; None means unchanged."""
    if before is ABSENT or after is ABSENT:
        return SecretState.CHANGED  # a secret input added or removed
    if _is_secret(before) and not _is_secret(after):
        return SecretState.NO_LONGER_SECRET
    if _is_secret(after) and not _is_secret(before):
        return SecretState.BECAME_SECRET
    old, new = base.secret_digests.get(path), head.secret_digests.get(path)
    if old is not None and new is not None and old != new:
        return SecretState.CHANGED
    # Equal or unknown digests: a secret generated by (or read from) a resource that is
    # created or replaced still changes with it, e.g. a password from a RandomPassword.
    return SecretState.MAY_CHANGE if upstream else None


def field_changes(
    base: PlannedResource, head: PlannedResource, rules: Sequence[ReplaceRule], upstream: bool
) -> list[FieldChange]:
    """Every input that differs between two versions of one resource.

    `upstream` says whether something this resource depends on is created or replaced:
    then a secret whose digest did not change is still reported as one that may change.
    """
    changes: list[FieldChange] = []
    for parts, before, after in _walk(base.inputs, head.inputs, ()):
        path, state = format_path(parts), None
        if _is_secret(before) or _is_secret(after):
            state = _secret_state(path, before, after, base, head, upstream)
            if state is None:
                continue
            # Only the masks travel on: a value that is secret on one side stays unseen.
            before = SECRET_MASK if before is not ABSENT else ABSENT
            after = SECRET_MASK if after is not ABSENT else ABSENT
        changes.append(FieldChange(path, before, after, state, replacing_rule(parts, rules)))
    # Masked on both sides: the masks are equal, but the secrets behind them may differ.
    for parts in paths_to(head.inputs, _is_secret):
        if not _is_secret(value_at(base.inputs, parts)):
            continue
        path = format_path(parts)
        state = _secret_state(path, SECRET_MASK, SECRET_MASK, base, head, upstream)
        if state is not None:
            changes.append(
                FieldChange(path, SECRET_MASK, SECRET_MASK, state, replacing_rule(parts, rules))
            )
    return changes


# ----------------------------------------------------------------------------- resources


def _physical_identity(resource: PlannedResource) -> tuple[str, str, str] | None:
    """What names the object in the cluster or the cloud, when the program fixes it."""
    inputs = resource.inputs
    if kubernetes_kind(resource.type, inputs) is not None:
        metadata = inputs.get("metadata")
        if isinstance(metadata, Mapping) and isinstance(metadata.get("name"), str):
            return resource.type, str(metadata.get("namespace") or ""), metadata["name"]
        return None
    name = inputs.get("name")
    if isinstance(name, str) and not resource.is_component and name != SECRET_MASK:
        return resource.type, str(inputs.get("namespace") or ""), name
    return None


def _rules(plan: Plan, resource: PlannedResource) -> tuple[ReplaceRule, ...]:
    provider = plan.by_urn(resource.provider)
    return rules_for(resource.type, resource.inputs, provider.inputs if provider else None)


def _resource_change(
    base: PlannedResource, head: PlannedResource, fields: list[FieldChange]
) -> ResourceChange:
    reasons = tuple(dict.fromkeys(f.replaces.reason for f in fields if f.replaces))
    notes: list[str] = []
    if base.provider != head.provider:
        notes.append(
            "its provider changes: if the new provider targets another cluster or account, "
            "the resource is replaced"
        )
    renamed = any(f.path in ("metadata.name", "metadata.namespace") for f in fields)
    if (
        reasons
        and kubernetes_kind(head.type, head.inputs)
        and _physical_identity(head)
        and not renamed
    ):
        notes.append(
            "it has a fixed name, so the old object is deleted before the new one is created"
        )
    action = Action.REPLACE if reasons else Action.UPDATE
    return ResourceChange(
        action, head.key, head.type, head.name, tuple(fields), reasons, tuple(notes)
    )


def _renames(base: Plan, head: Plan, created: list[str], deleted: list[str]) -> dict[str, str]:
    """Created resources that name the same physical object as a deleted one."""
    by_identity: dict[tuple[str, str, str], str] = {}
    for key in deleted:
        identity = _physical_identity(base.resources[key])
        if identity is not None:
            by_identity[identity] = key
    return {
        key: by_identity[identity]
        for key in created
        if (identity := _physical_identity(head.resources[key])) in by_identity
    }


def _records_digests(plan: Plan) -> bool:
    """Whether the plan has digests for its secret inputs (trivially so without secrets)."""
    masked = [r for r in plan.resources.values() if any(paths_to(r.inputs, _is_secret))]
    return not masked or any(r.secret_digests for r in masked)


def diff_plans(base: Plan, head: Plan) -> PlanDiff:
    """Everything that would change going from `base` to `head`."""
    created = [key for key in head.resources if key not in base.resources]
    deleted = [key for key in base.resources if key not in head.resources]
    common = [key for key in head.resources if key in base.resources]

    # Pass 1: which resources change by their own inputs (or provider).
    fields: dict[str, list[FieldChange]] = {}
    for key in common:
        old, new = base.resources[key], head.resources[key]
        found = field_changes(old, new, _rules(head, new), upstream=False)
        if found or old.provider != new.provider:
            fields[key] = found
    # Pass 2: secrets "may change" when something they depend on is created or replaced.
    touched = set(created) | {k for k, found in fields.items() if any(f.replaces for f in found)}
    for key in common:
        old, new = base.resources[key], head.resources[key]
        if any(dependency in touched for dependency in new.dependencies):
            found = field_changes(old, new, _rules(head, new), upstream=True)
            if found:
                fields[key] = found

    renamed = _renames(base, head, created, deleted)
    changes: list[ResourceChange] = []
    for key, resource in head.resources.items():
        if key in fields:
            changes.append(_resource_change(base.resources[key], resource, fields[key]))
        elif key in renamed:
            old_name = base.resources[renamed[key]].name
            note = (
                f"renamed from `{old_name}`: it names the same object as the deleted resource, "
                "so Pulumi creates it and then deletes it again; add an alias instead"
            )
            changes.append(
                ResourceChange(Action.CREATE, key, resource.type, resource.name, notes=(note,))
            )
        elif key in created:
            changes.append(ResourceChange(Action.CREATE, key, resource.type, resource.name))
    for key in deleted:
        resource = base.resources[key]
        changes.append(ResourceChange(Action.DELETE, key, resource.type, resource.name))

    digests = _records_digests(base) and _records_digests(head)
    notes: tuple[str, ...] = ()
    if not digests:
        notes = (
            "a plan without secret digests: a changed secret config value is invisible, and "
            "secrets are reported only when something they depend on is replaced",
        )
    return PlanDiff(
        base=base.source,
        head=head.source,
        changes=tuple(changes),
        unchanged=len(common) - len(fields),
        secret_digests=digests,
        notes=notes,
    )


def diff_plan_dirs(base_dir: Path, head_dir: Path) -> PlanDiff:
    """Two `todo-infra plan --out` directories: their resources and their monthly cost."""
    diff = diff_plans(load_plan(base_dir), load_plan(head_dir))
    sides = [path if path.is_dir() else path.parent for path in (base_dir, head_dir)]
    return replace(diff, cost=diff_costs(load_cost(sides[0]), load_cost(sides[1])))
