"""`todo-infra`: offline plans, cost estimates, and the delivery commands.

Adding a command from another module (e.g. `todo-infra diff` in `infra/tooling/commands/diff.py`):
define `register(app: typer.Typer) -> None` in that module, which adds its commands
with `@app.command()`, and list the module in `COMMAND_MODULES` below. Keep heavy
imports (pulumi, the Automation API) inside the command functions so that
`todo-infra --help` and the other commands stay fast. Exit with code 2 (`typer.Exit(2)`)
for a user's mistake, after printing what to fix.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from infra.tooling.plan import bytecode_cache

# Before typer, rich and click are imported: with PYTHONDONTWRITEBYTECODE set (and uv
# installing no .pyc files) they were compiled from source on every run, ~0.5 s of a plan.
bytecode_cache.enable()

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

if TYPE_CHECKING:
    from infra.tooling.plan.build import Plan

_STARTED = time.perf_counter()
_skip_interpreter_teardown = False
"""Set by commands that loaded the Pulumi SDKs (see `main`)."""

COMMAND_MODULES: tuple[str, ...] = (
    "infra.tooling.commands.diff",
    "infra.tooling.commands.ephemeral",
    "infra.tooling.commands.reference",
    "infra.tooling.delivery.proving",
)
"""Modules that add commands through `register(app)`."""

app = typer.Typer(
    name="todo-infra",
    help="Offline plans, cost estimates and delivery tools for the Todo platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack name, e.g. minikube.")]
# For tests and for trying a change to the program or a stack file in a copy.
ProgramOption = Annotated[Path | None, typer.Option("--program", hidden=True)]
StacksDirOption = Annotated[Path | None, typer.Option("--stacks-dir", hidden=True)]


def _execute(stack: str, program: Path | None, stacks_dir: Path | None) -> Plan:
    """Plan `stack`, or exit 2 with the config problem named."""
    from infra.tooling.plan.build import PlanUserError, execute, execute_ephemeral, is_ephemeral
    from infra.tooling.repo import PROGRAM, STACKS_DIR

    stacks_dir = stacks_dir or STACKS_DIR
    try:
        if is_ephemeral(stack, stacks_dir):
            # dev-<name>/pr-<n>: planned on top of staging's planned outputs.
            return execute_ephemeral(stack, program=program or PROGRAM, stacks_dir=stacks_dir)
        return execute(stack, program=program or PROGRAM, stacks_dir=stacks_dir)
    except PlanUserError as error:
        errors.print(f"[red]error:[/red] stack {stack!r}: {error}")
        raise typer.Exit(2) from None


@contextmanager
def _reference_data_errors() -> Iterator[None]:
    """A missing or broken k8s reference folder: one red line and exit 2, no traceback."""
    from infra.tooling.plan.reference import ReferenceDataError

    try:
        yield
    except ReferenceDataError as error:
        errors.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


def _process_seconds() -> float:
    """Seconds since this process started (interpreter start-up included), if known."""
    try:
        with open("/proc/self/stat") as stat_file:
            start_ticks = int(stat_file.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as uptime_file:
            uptime = float(uptime_file.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _STARTED


def _prepare_imports() -> None:
    """Make the Pulumi SDKs cheap to import before anything imports them."""
    global _skip_interpreter_teardown
    from infra.tooling.plan import lazy_sdk

    _skip_interpreter_teardown = True

    bytecode_cache.enable()  # already on (module import); kept for callers of plan()
    lazy_sdk.install()


@app.command()
def plan(
    stack: StackOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default: build/plan/<stack>)."),
    ] = None,
    program: ProgramOption = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Run the real program offline under mocks; write resources.json, manifests/, graph.mmd,
    cost.json."""
    _prepare_imports()
    from infra.tooling.plan.artifacts import write_plan
    from infra.tooling.plan.build import default_out_dir
    from infra.tooling.plan.checks import policy_violations
    from infra.tooling.plan.connections import planned_budget
    from infra.tooling.plan.cost import estimate, write_cost
    from infra.tooling.plan.footprint import compute_footprint
    from infra.tooling.plan.summary import print_plan

    result = _execute(stack, program, stacks_dir)
    out_dir = out or default_out_dir(stack)
    write_plan(result.run, result.objects, result.critical, out_dir)
    # An ephemeral stack's pods run on its base stack's cluster.
    cluster_source = result.base or result
    with _reference_data_errors():  # chart defaults: the footprint and the volumes' cost
        footprint = compute_footprint(result.objects, cluster_source.run.resources.values())
        cost = estimate(result.run.resources, result.objects)
    # For `todo-infra diff`: each plan's cost as its own code and prices computed it.
    write_cost(cost, out_dir)
    violations = policy_violations(result)
    print_plan(
        console,
        result,
        out_dir=out_dir,
        total_seconds=_process_seconds(),
        footprint=footprint,
        cost=cost,
        violations=violations,
        connections=planned_budget(result.stack, result.config),
    )
    if violations:
        raise typer.Exit(1)


@app.command()
def cost(
    stack: StackOption, program: ProgramOption = None, stacks_dir: StacksDirOption = None
) -> None:
    """Monthly cost estimate of a stack from DigitalOcean's list prices (planned offline)."""
    _prepare_imports()
    from infra.tooling.plan.cost import estimate, load_prices
    from infra.tooling.plan.summary import print_cost

    result = _execute(stack, program, stacks_dir)
    prices = load_prices()
    with _reference_data_errors():
        estimated = estimate(result.run.resources, result.objects, prices)
    print_cost(console, stack, estimated, prices.sources)


def _register_commands() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)


_register_commands()


def main() -> None:
    """The `todo-infra` console script."""
    try:
        app()
        code: int | str | None = 0
    except SystemExit as exit_:
        code = exit_.code
    if not _skip_interpreter_teardown:
        sys.exit(code)
    # Tearing down the tens of thousands of objects the Pulumi SDKs define takes about a
    # second after the work is done; plan and cost have written and flushed everything,
    # so run the exit handlers and leave without it.
    if isinstance(code, str):
        print(code, file=sys.stderr)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    main()
