"""Shared fixtures for the infrastructure tests: each stack is planned once per session.

`planned(stack)` runs the real program offline under mocks the first time a stack is
asked for and hands every later caller the same `Plan` (read-only by convention), so
the manifest, policy, cost and CLI tests all check one plan per stack without paying
for it again. Under pytest-xdist each worker plans the stacks its tests need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.tooling.plan.build import EPHEMERAL_BASE, Plan, execute, execute_ephemeral, is_ephemeral
from infra.tooling.plan.runner import config_from_mapping
from infra.tooling.repo import PROGRAM

SAMPLE_PROGRAM = Path(__file__).parent / "sample_program" / "__main__.py"
STACKS = ("minikube", "staging", "prod")
EPHEMERAL_STACK = "dev-alice"
"""A developer's stack: generated config, planned on top of staging's planned outputs."""


@pytest.fixture(scope="session")
def planned() -> Iterator[Callable[[str], Plan]]:
    """`planned(stack)`: the offline plan of a stack of the real program, cached."""
    cache: dict[str, Plan] = {}

    def plan(stack: str) -> Plan:
        if stack not in cache:
            if is_ephemeral(stack):
                cache[stack] = execute_ephemeral(stack, base=plan(EPHEMERAL_BASE))
            else:
                cache[stack] = execute(stack, program=PROGRAM)
        return cache[stack]

    yield plan
    cache.clear()


@pytest.fixture(scope="session")
def sample_plan() -> Plan:
    """The sample program (tests/infra/sample_program) planned once, HA on."""
    config = config_from_mapping({"replicas": 2, "ha": True})
    return execute("sample", config=config, program=SAMPLE_PROGRAM)
