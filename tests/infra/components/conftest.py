"""Fixtures for the component tests: the real program's offline runs."""

from __future__ import annotations

import pytest

from infra.plan.runner import PlanRun
from tests.infra.components.plans import EPHEMERAL, plan

STACKS = ["minikube", "staging", "prod", EPHEMERAL]


@pytest.fixture(params=STACKS)
def any_stack(request: pytest.FixtureRequest) -> PlanRun:
    """Each stack's run in turn."""
    return plan(str(request.param))
