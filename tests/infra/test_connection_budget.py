"""The connection budget `todo-infra plan` prints, per committed stack, read back from the
config the plan ran with (the program itself refuses a budget that does not fit)."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from infra.settings import ConnectionBudget
from infra.tooling.plan.connections import planned_budget
from infra.tooling.plan.runner import load_stack_config
from infra.tooling.plan.summary import print_connections


def _budget(stack: str) -> ConnectionBudget:
    budget = planned_budget(stack, load_stack_config(stack))
    assert budget is not None
    return budget


def _printed(stack: str) -> str:
    console = Console(record=True, width=120)
    print_connections(console, _budget(stack))
    return console.export_text()


def _rows(text: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃]", line)]
        if cells and cells[0] in ("backend", "notification", "recurring", "jobs", "total"):
            rows[cells[0]] = cells[1:]
    return rows


# from: max replicas, pooled/pod, pooled, direct/pod, direct
BUDGETS = {
    "prod": (
        {
            "backend": ["4", "4", "16", "1", "4"],
            "notification": ["3", "2", "6", "1", "3"],
            "recurring": ["3", "2", "6", "1", "3"],
            "jobs": ["", "", "", "", "2"],
            "total": ["", "", "28", "", "12"],
        },
        [
            "Connection pool: size 28; the services may open 28 through it.",
            "Database: pool 28 + direct 12 = 40 of 47 (DigitalOcean: 25 per GB of RAM, 3 "
            "reserved); 7 left.",
        ],
    ),
    "staging": (
        {
            "backend": ["3", "4", "12", "1", "3"],
            "notification": ["2", "2", "4", "1", "2"],
            "recurring": ["2", "2", "4", "1", "2"],
            "jobs": ["", "", "", "", "2"],
            "total": ["", "", "20", "", "9"],
        },
        [
            "Connection pool: size 20; the services may open 20 through it.",
            "Database: pool 20 + direct 9 = 29 of 47 (DigitalOcean: 25 per GB of RAM, 3 "
            "reserved); 18 left.",
        ],
    ),
}


@pytest.mark.parametrize("stack", sorted(BUDGETS))
def test_cloud_stacks_budget_table(stack: str) -> None:
    text = _printed(stack)
    rows, lines = BUDGETS[stack]
    assert _rows(text) == rows
    flat = " ".join(text.split())
    assert "Database connections at max replicas (services through the connection pool)" in flat
    for line in lines:
        assert line in flat


@pytest.mark.parametrize("stack", ["minikube", "kind"])
def test_in_cluster_stacks_have_no_pool_and_their_limit_is_only_shown(stack: str) -> None:
    budget = _budget(stack)
    assert budget.pool_size is None and not budget.enforced and budget.errors() == []
    flat = " ".join(_printed(stack).split())
    assert "Connection pool:" not in flat
    assert f"Database: pools {budget.pooled} + direct {budget.direct} = " in flat
    assert "(shown, not checked)" in flat
