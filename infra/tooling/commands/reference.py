"""`todo-infra reference`: the vendored Kubernetes reference data (infra/k8s-reference).

    todo-infra reference refresh     # helm pull the pinned charts, rewrite the folder + lock
    todo-infra reference check       # offline: files match the lock, versions match the pins

The data (CRD schemas, chart default values) is what the plan's footprint and the
manifest tests read; infra/k8s-reference/README.md describes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infra.tooling.plan.reference import DEFAULT_REFERENCE_DIR, ENV_VAR, ReferenceDataError

app = typer.Typer(
    help="The vendored Kubernetes reference data: CRD schemas and chart default values.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)


@app.command()
def refresh(
    target: Annotated[
        Path,
        typer.Option("--target", help="Folder to rewrite (default: infra/k8s-reference)."),
    ] = DEFAULT_REFERENCE_DIR,
) -> None:
    """Pull every pinned chart (helm) and manifest, and rewrite the folder and its lock file."""
    from infra.tooling.plan.reference_refresh import RefreshError
    from infra.tooling.plan.reference_refresh import refresh as run_refresh

    try:
        report = run_refresh(target)
    except (RefreshError, ReferenceDataError) as error:
        err.print(f"[red]error:[/red] {error}")
        err.print("Nothing was changed.")
        raise typer.Exit(1) from None
    for source in report.sources:
        console.print(f"{source.name} {source.version}: {len(source.files)} file(s)")
    for label, paths in (
        ("added", report.added),
        ("changed", report.changed),
        ("removed", report.removed),
    ):
        for path in paths:
            console.print(f"  {label} {path}")
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"Wrote {target}; run the tests: uv run pytest tests/infra")


@app.command()
def check(
    folder: Annotated[
        Path,
        typer.Option("--dir", envvar=ENV_VAR, help="Folder to check (default: the vendored one)."),
    ] = DEFAULT_REFERENCE_DIR,
) -> None:
    """Offline: every file matches the lock file, and the lock the versions the components pin."""
    from infra.tooling.plan.reference_lock import lock_problems
    from infra.tooling.plan.reference_refresh import RefreshError, vendoring_problems

    try:
        problems = lock_problems(folder) + vendoring_problems(folder)
    except (ReferenceDataError, RefreshError) as error:
        problems = [str(error)]
    for problem in problems:
        err.print(f"[red]problem:[/red] {problem}")
    if problems:
        raise typer.Exit(1)
    console.print(f"{folder}: every file matches its lock, every pinned version is there")


def register(root: typer.Typer) -> None:
    """Add `todo-infra reference ...` to the CLI (see infra/tooling/cli.py)."""
    root.add_typer(app, name="reference")
