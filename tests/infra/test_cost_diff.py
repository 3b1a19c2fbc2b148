"""Cost where the change is reviewed: `todo-infra diff` shows each stack's monthly cost
before → after and the line items that drive the change.

The first group plans prod for real with `todo-infra plan --out` (which writes cost.json
next to resources.json) from the committed stack file and from a copy with one node more
in its pool, and diffs the directories as the PR workflow does. The second pins the
rules on hand-made estimates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from infra.tooling.cli import app
from infra.tooling.commands.diff import OutputFormat, render
from infra.tooling.delivery.cost_diff import PlanCost, diff_costs, load_cost
from infra.tooling.delivery.plan_diff import diff_plan_dirs
from infra.tooling.plan.build import Plan
from infra.tooling.plan.cost import COST_FILE, CostEstimate, CostLine, estimate, load_prices
from infra.tooling.repo import PROJECT_ROOT, STACKS_DIR

runner = CliRunner()
NODE_POOL = "node pool todo-prod-default"


@pytest.fixture(autouse=True)
def _no_bytecode_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TODO_INFRA_BYTECODE_CACHE", "off")


@pytest.fixture(scope="module")
def prod_plans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`plan --out` of prod as committed (base) and with one node more (head), each under
    a `<root>/prod` directory as the preview workflow lays them out."""
    root = tmp_path_factory.mktemp("cost-plans")
    stacks = root / "stacks"
    shutil.copytree(STACKS_DIR, stacks)
    path = stacks / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    pool = document["config"]["todo:cluster"]["nodePool"]
    pool["minNodes"] += 1
    pool["maxNodes"] += 1
    path.write_text(yaml.safe_dump(document))
    for side, extra in (("base", []), ("head", ["--stacks-dir", str(stacks)])):
        out = root / side / "prod"
        result = runner.invoke(app, ["plan", "--stack", "prod", "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
    return root / "base", root / "head"


def _diff(base: Path, head: Path, fmt: str) -> str:
    result = runner.invoke(
        app, ["diff", str(base), str(head), "--stack", "prod", "--format", fmt], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_plan_out_writes_the_estimate_the_cost_command_computes(
    prod_plans: tuple[Path, Path], planned: Any
) -> None:
    base, _ = prod_plans
    document = json.loads((base / "prod" / COST_FILE).read_text())
    plan: Plan = planned("prod")
    expected = estimate(plan.run.resources, plan.objects, load_prices())
    assert document == expected.document()
    assert document["asOf"] == load_prices().as_of and document["currency"] == "USD"


def test_a_node_more_shows_the_increase_and_names_the_node_pool(
    prod_plans: tuple[Path, Path],
) -> None:
    base, head = prod_plans
    each = load_prices().price("droplets", "s-2vcpu-4gb")

    text = " ".join(_diff(base, head, "text").split())
    assert (
        f"Monthly cost: $267.50 – $315.50 → ${267.50 + each:,.2f} – ${315.50 + each:,.2f} "
        f"(+${each:,.2f}/month)"
    ) in text
    assert f"driven by {NODE_POOL} (+${each:,.2f}/month)" in text

    markdown = _diff(base, head, "markdown")
    assert markdown.startswith("<!-- todo-infra-offline-diff -->")
    assert f"_driven by {NODE_POOL} (+${each:,.2f}/month)_" in markdown
    assert (
        f"| {NODE_POOL} | $144.00 – $192.00 | $168.00 – $216.00 | +${each:,.2f}/month "
        "| `6-8 × s-2vcpu-4gb @ $24.00 → 7-9 × s-2vcpu-4gb @ $24.00` |"
    ) in markdown
    # Only the node pool moved: no other line item is listed as a driver.
    assert markdown.count("/month |") == 1

    document = json.loads(_diff(base, head, "json"))["prod"]["cost"]
    assert document["changed"] is True
    assert document["delta"] == {"min": each, "max": each}
    assert [driver["item"] for driver in document["drivers"]] == [NODE_POOL]


def test_an_unchanged_plan_shows_no_cost_change(prod_plans: tuple[Path, Path]) -> None:
    base, _ = prod_plans
    text = " ".join(_diff(base, base, "text").split())
    assert "Monthly cost: $267.50 – $315.50, no cost change" in text
    markdown = _diff(base, base, "markdown")
    assert "**Monthly cost: $267.50 – $315.50, no cost change**" in markdown
    assert "driven by" not in markdown and "| line item |" not in markdown


def test_a_plan_without_cost_json_is_estimated_from_its_resources(
    prod_plans: tuple[Path, Path], tmp_path: Path
) -> None:
    """A base planned by a todo-infra from before cost.json: same figures, and a note."""
    base, head = prod_plans
    old = tmp_path / "prod"
    shutil.copytree(base / "prod", old)
    (old / COST_FILE).unlink()
    estimated = load_cost(old)
    assert not estimated.recorded
    assert estimated.estimate.document() == load_cost(base / "prod").estimate.document()
    diff = diff_plan_dirs(old, head / "prod")
    assert diff.cost is not None and [d.item for d in diff.cost.drivers] == [NODE_POOL]
    assert diff.cost.notes == (
        "the base plan has no cost.json: its cost was estimated from its resources.json "
        "with this checkout's cost model and prices",
    )


# ----------------------------------------------------------------------------- rules


def _estimate(*lines: tuple[str, str, float, float], as_of: str = "2026-11-27") -> PlanCost:
    return PlanCost(
        CostEstimate(lines=[CostLine(*line) for line in lines], as_of=as_of), recorded=True
    )


DATABASE = ("managed pg database-pg", "1 primary × db-s-1vcpu-2gb @ $30.00", 30.0, 30.0)
NODES = ("node pool p", "2-4 × s-2vcpu-4gb @ $24.00", 48.0, 96.0)


def test_lines_are_matched_by_item_and_the_largest_move_drives() -> None:
    before = _estimate(NODES, DATABASE, ("volumes", "20 GiB: a 2×10Gi", 2.0, 2.0))
    after = _estimate(
        ("node pool p", "3-4 × s-2vcpu-4gb @ $24.00", 72.0, 96.0),
        ("managed pg database-pg", "1 primary + 1 standby × db-s-1vcpu-2gb", 60.0, 60.0),
        ("volumes", "20 GiB: a 1×20Gi", 2.0, 2.0),  # reworded, same amount: no change
        ("load balancers", "1 node(s)", 12.0, 12.0),  # new
    )
    cost = diff_costs(before, after)
    assert cost.has_changes and (cost.delta_min, cost.delta_max) == (66.0, 42.0)
    assert [line.item for line in cost.drivers] == [
        "managed pg database-pg",  # 30 + 30
        "node pool p",  # 24 + 0
        "load balancers",  # 12 + 12
    ]
    assert "volumes" not in [line.item for line in cost.drivers]
    removed = diff_costs(after, before)
    (balancer,) = [line for line in removed.drivers if line.item == "load balancers"]
    assert balancer.after is None and balancer.delta_min == -12.0


def test_a_new_price_table_is_called_out() -> None:
    cost = diff_costs(_estimate(NODES), _estimate(NODES, as_of="2027-01-01"))
    assert not cost.has_changes
    assert cost.notes == (
        "list prices as of 2026-11-27 → 2027-01-01: part of the change may be the price table's",
    )


def test_the_comment_opens_with_every_stacks_cost() -> None:
    from infra.tooling.delivery.plan_diff import PlanDiff

    def stack(before: PlanCost, after: PlanCost) -> PlanDiff:
        return PlanDiff("b", "h", (), 1, True, cost=diff_costs(before, after))

    diffs = {
        "prod": stack(_estimate(NODES), _estimate(("node pool p", "3-4", 72.0, 96.0))),
        "staging": stack(_estimate(DATABASE), _estimate(DATABASE)),
    }
    body = render(diffs, OutputFormat.MARKDOWN, "base", "head", Console())
    assert body is not None
    assert body.splitlines()[0] == "<!-- todo-infra-offline-diff -->"
    assert "#### Monthly cost (DigitalOcean list prices)" in body
    assert (
        "| `prod` | $48.00 – $96.00 | $72.00 – $96.00 | +$24.00/month at the minimum, +$0.00 at "
        "the maximum, driven by node pool p (+$24.00/month at the minimum, +$0.00 at the "
        "maximum) |"
    ) in body
    assert "| `staging` | $30.00 | $30.00 | no cost change |" in body


# ----------------------------------------------------------------------------- the workflow

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "preview.yml"
UV_SHIM = """#!/bin/sh
# `uv run todo-infra ARGS`, as the workflow calls it, on this checkout's interpreter.
[ "$1" = run ] && shift
[ "$1" = todo-infra ] && shift
exec "$TEST_PYTHON" -c 'import sys; from infra.tooling.cli import main; \\
sys.argv = ["todo-infra", *sys.argv[1:]]; main()' "$@"
"""


def _step(job: str, name: str) -> str:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]
    (step,) = [s for s in steps if s.get("name") == name]
    script: str = step["run"]
    return script


def test_the_preview_workflows_diff_step_puts_the_cost_in_the_comment(
    prod_plans: tuple[Path, Path], tmp_path: Path
) -> None:
    """The `Diff` step's own script, run as Actions runs it (bash -eo pipefail) on plans
    laid out as its `Plan both sides` step writes them, and the checks preview-comment.yml
    makes before posting."""
    base, head = prod_plans
    assert '--out "../plans/$side/$stack"' in _step("offline-diff", "Plan both sides")
    for side, source in (("base", base), ("head", head)):
        shutil.copytree(source / "prod", tmp_path / "plans" / side / "prod")
    (tmp_path / "head").mkdir()
    shim = tmp_path / "bin" / "uv"
    shim.parent.mkdir()
    shim.write_text(UV_SHIM)
    shim.chmod(0o755)
    summary = tmp_path / "summary.md"
    env = {
        **os.environ,
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(PROJECT_ROOT),
        "TEST_PYTHON": sys.executable,
        "TODO_INFRA_BYTECODE_CACHE": "off",
        "PR_NUMBER": "42",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _step("offline-diff", "Diff")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    comment = (tmp_path / "comment" / "comment.md").read_text()
    # preview-comment.yml posts only a body whose first line is the marker, under 65000 bytes.
    assert comment.splitlines()[0] == "<!-- todo-infra-offline-diff -->"
    assert len(comment.encode()) <= 65000
    assert "**Monthly cost: $267.50 – $315.50 → $291.50 – $339.50 (+$24.00/month)**" in comment
    assert f"_driven by {NODE_POOL} (+$24.00/month)_" in comment
    assert (tmp_path / "comment" / "pr-number.txt").read_text() == "42\n"
    assert summary.read_text() == comment
