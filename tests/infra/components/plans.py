"""Cached offline runs of the real program, per stack, shared by the infra tests.

Running the program takes a few seconds; each stack runs once per test session.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.tooling.plan.ephemeral_config import ephemeral_stack_config
from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import HELM_CHART_V4_TYPE, HELM_RELEASE_TYPE
from infra.tooling.plan.provider_mocks import CloudWorld, world_after
from infra.tooling.plan.runner import PlanRun, config_from_mapping, load_stack_config, run_program

BASE_STACK = "acme/todo/staging"
EPHEMERAL = "dev-alice"


@functools.cache
def plan(stack: str) -> PlanRun:
    """The program's run for a committed stack, or for the example ephemeral stack."""
    if stack == EPHEMERAL:
        config = ephemeral_stack_config(
            EPHEMERAL,
            owner="alice",
            base_stack=BASE_STACK,
            image_tag="sha-0123abc",
            image_registry="ghcr.io/todo-platform",
            ttl=timedelta(hours=8),
            now=datetime(2026, 1, 4, 10, 0, tzinfo=UTC),
        )
        base = plan("staging")
        return run_program(
            stack,
            config_from_mapping(config),
            stack_outputs={BASE_STACK: base.outputs},
            world=world_after(CloudWorld(), base.resources.values()),
        )
    return run_program(stack, load_stack_config(stack))


def by_type(run: PlanRun, type_: str) -> list[RecordedResource]:
    """Resources of one type, in registration order."""
    return [res for res in run.resources.values() if res.type == type_]


def helm_installs(run: PlanRun) -> list[RecordedResource]:
    """Helm v3 Releases and v4 Charts: every chart the program installs."""
    return by_type(run, HELM_RELEASE_TYPE) + by_type(run, HELM_CHART_V4_TYPE)


RESTRICTED_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""A container securityContext that passes the `restricted` Pod Security profile."""


def release_values(run: PlanRun, name: str) -> dict[str, Any]:
    """The values the program gives Helm release `name`."""
    values: dict[str, Any] = one(run, name).raw_inputs["values"]
    return values


def one(run: PlanRun, name: str) -> RecordedResource:
    """The resource registered under `name`."""
    matches = [res for res in run.resources.values() if res.name == name]
    assert len(matches) == 1, f"{len(matches)} resources named {name!r}"
    return matches[0]


def ancestors(run: PlanRun, res: RecordedResource) -> Iterator[RecordedResource]:
    """Parents up to (not including) the stack."""
    parent = res.parent
    while parent and parent in run.resources:
        yield run.resources[parent]
        parent = run.resources[parent].parent


def depends_on(run: PlanRun, res: RecordedResource, target: RecordedResource) -> bool:
    """Whether `res` waits for `target`, directly or through other dependencies/parents."""
    seen: set[str] = set()
    stack = [res.urn]
    while stack:
        urn = stack.pop()
        if urn in seen:
            continue
        seen.add(urn)
        current = run.resources.get(urn)
        if current is None:
            continue
        if target.urn in current.dependencies:
            return True
        stack.extend(current.dependencies)
    return False


def pod_spec(res: RecordedResource) -> dict[str, Any]:
    """The pod template's spec of a workload (raw inputs)."""
    spec: dict[str, Any] = res.raw_inputs["spec"]["template"]["spec"]
    return spec
