"""`todo-infra diff`: what changes between two offline plans, for people and PR comments:
the resources, and each stack's monthly cost before → after with what drives the change
(from the cost.json each `todo-infra plan --out` writes; infra/tooling/delivery/cost_diff.py).

todo-infra diff build/plan/base build/plan/head        # two `todo-infra plan` outputs
todo-infra diff --base origin/main                      # plan REF and the working tree
todo-infra diff --base origin/main --stack staging --format markdown --output diff.md
"""

from __future__ import annotations

import json
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infra.tooling.delivery.diff_render import (
    cost_summary_markdown,
    render_json,
    render_markdown,
    render_text,
)
from infra.tooling.delivery.plan_diff import PlanDiff, diff_plan_dirs
from infra.tooling.delivery.plan_files import PlanFileError
from infra.tooling.delivery.revision_plans import (
    RevisionPlanError,
    exported_revision,
    plan_tree,
    resolve_revision,
    stacks_in,
)
from infra.tooling.repo import PROJECT_ROOT

COMMENT_MARKER = "todo-infra-offline-diff"
"""Hidden marker that lets the PR workflow find and update its own comment."""


class OutputFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


def _title(stack: str | None, base: str, head: str) -> str:
    what = f"`{stack}`" if stack else "plan"
    return f"Offline plan diff for {what}: {base} → {head}"


def diff_revision(
    ref: str, stacks: list[str], *, repo: Path = PROJECT_ROOT, keep: Path | None = None
) -> dict[str, PlanDiff]:
    """Plan `ref` and the working tree for each stack, and diff them."""
    diffs: dict[str, PlanDiff] = {}
    with exported_revision(repo, ref) as base_tree, tempfile.TemporaryDirectory() as tmp:
        out = keep or Path(tmp)
        for stack in stacks or sorted(set(stacks_in(repo)) | set(stacks_in(base_tree))):
            base_dir = out / "base" / stack
            head_dir = out / "head" / stack
            if (base_tree / "stacks" / f"Pulumi.{stack}.yaml").is_file():
                plan_tree(base_tree, stack, base_dir)
            else:
                _write_empty_plan(base_dir)  # a stack that the change introduces
            if (repo / "stacks" / f"Pulumi.{stack}.yaml").is_file():
                plan_tree(repo, stack, head_dir)
            else:
                _write_empty_plan(head_dir)  # a stack that the change removes
            diffs[stack] = diff_plan_dirs(base_dir, head_dir)
    return diffs


def _write_empty_plan(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "resources.json").write_text("[]\n")


def diff_stack_dirs(
    base_root: Path, head_root: Path, stacks: list[str]
) -> tuple[dict[str, PlanDiff], dict[str, str]]:
    """Diff `BASE_ROOT/<stack>` with `HEAD_ROOT/<stack>` for each stack.

    When a side has no plan, planning failed there (or the stack exists on one side only):
    that is reported instead of a diff, since an empty plan would read as "delete all".
    """
    diffs: dict[str, PlanDiff] = {}
    missing: dict[str, str] = {}
    for stack in dict.fromkeys(stacks):
        sides = {"base": base_root / stack, "head": head_root / stack}
        absent = [side for side, path in sides.items() if not (path / "resources.json").is_file()]
        if absent:
            missing[stack] = f"no plan on the {' and '.join(absent)} side (see the job log)"
            continue
        diffs[stack] = diff_plan_dirs(sides["base"], sides["head"])
    return diffs, missing


def render(
    diffs: dict[str, PlanDiff],
    fmt: OutputFormat,
    base: str,
    head: str,
    console: Console,
    missing: dict[str, str] | None = None,
) -> str | None:
    """Print (text) or return (Markdown, JSON) the diffs of one or more stacks."""
    missing = missing or {}
    if fmt is OutputFormat.TEXT:
        for stack, diff in diffs.items():
            render_text(diff, console, title=_title(stack or None, base, head))
            console.print()
        for stack, reason in missing.items():
            console.print(f"[yellow]{stack}: {reason}[/yellow]")
        return None
    if fmt is OutputFormat.JSON:
        if list(diffs) == [""] and not missing:
            return render_json(diffs[""])
        parts = [f"{json.dumps(s)}: {render_json(d)}" for s, d in diffs.items()]
        parts += [f"{json.dumps(s)}: {json.dumps({'error': r})}" for s, r in missing.items()]
        return "{\n" + ",\n".join(parts) + "\n}\n"
    sections = [
        render_markdown(diff, title=_title(stack or None, base, head))
        for stack, diff in diffs.items()
    ]
    sections += [f"### ⚠️ `{stack}`: {reason}\n" for stack, reason in missing.items()]
    costs = cost_summary_markdown(diffs) if len(diffs) > 1 else []
    overview = "\n".join(costs) + "\n---\n\n" if costs else ""
    return f"<!-- {COMMENT_MARKER} -->\n" + overview + "\n---\n\n".join(sections)


def diff_command(
    base_dir: Annotated[
        Path | None, typer.Argument(help="Plan directory of the base (holds resources.json).")
    ] = None,
    head_dir: Annotated[Path | None, typer.Argument(help="Plan directory of the head.")] = None,
    base: Annotated[
        str | None,
        typer.Option("--base", help="Git ref to plan as the base; the head is the working tree."),
    ] = None,
    stack: Annotated[
        list[str] | None,
        typer.Option(
            "--stack",
            "-s",
            help="Stack(s): with --base, plan these (default: all); with directories, "
            "compare BASE_DIR/<stack> with HEAD_DIR/<stack>.",
        ),
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TEXT,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write Markdown/JSON here.")
    ] = None,
    keep_plans: Annotated[
        Path | None, typer.Option("--keep-plans", help="Keep the plans made for --base here.")
    ] = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 2 when the plans differ (like git diff).")
    ] = False,
) -> None:
    """Compare two offline plans: resources added, removed, replaced and changed, and the
    monthly cost before and after."""
    console = Console()
    err = Console(stderr=True)
    missing: dict[str, str] = {}
    try:
        if base is not None:
            if base_dir or head_dir:
                raise typer.BadParameter("give either BASE_DIR HEAD_DIR or --base REF, not both")
            commit = resolve_revision(PROJECT_ROOT, base)[:12]
            diffs = diff_revision(base, stack or [], keep=keep_plans)
            base_label, head_label = f"`{base}` ({commit})", "working tree"
        elif base_dir and head_dir and stack:
            diffs, missing = diff_stack_dirs(base_dir, head_dir, stack)
            base_label, head_label = "base", "head"
        elif base_dir and head_dir:
            diffs = {"": diff_plan_dirs(base_dir, head_dir)}
            base_label, head_label = f"`{base_dir}`", f"`{head_dir}`"
        else:
            raise typer.BadParameter("give BASE_DIR and HEAD_DIR, or --base REF")
    except PlanFileError as error:  # a wrong directory: the user's to fix
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    except RevisionPlanError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None

    text = render(diffs, fmt, base_label, head_label, console, missing)
    if text is not None:
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
            err.print(f"wrote {output}")
        else:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
    if exit_code and any(d.has_changes for d in diffs.values()):
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add `todo-infra diff` to the CLI (see infra/tooling/cli.py)."""
    app.command("diff")(diff_command)
