"""The `plan` and `cost` commands' console output (rich)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from infra.policy.rules import Violation
from infra.settings import ConnectionBudget
from infra.tooling.plan.build import Plan
from infra.tooling.plan.cost import CostEstimate
from infra.tooling.plan.durations import estimate_minutes
from infra.tooling.plan.footprint import Footprint
from infra.tooling.plan.graph import short_type
from infra.tooling.plan.quantities import GIB, MIB
from infra.tooling.plan.release_images import PLACEHOLDER_REGISTRY, uses_placeholder_images


def _components(plan: Plan) -> Counter[str]:
    """Resources per top-level component (or `(stack)` for top-level resources)."""
    resources = plan.run.resources
    counts: Counter[str] = Counter()
    for resource in resources.values():
        top = resource
        while top.parent in resources:
            top = resources[top.parent or ""]
        if top is resource and not resource.custom:
            continue  # the component itself
        label = f"{short_type(top.type)} {top.name}" if not top.custom else "(stack)"
        counts[label] += 1
    return counts


def print_plan(
    console: Console,
    plan: Plan,
    *,
    out_dir: Path,
    total_seconds: float,
    footprint: Footprint,
    cost: CostEstimate,
    violations: list[Violation],
    connections: ConnectionBudget | None = None,
) -> None:
    console.rule(f"[bold]todo-infra plan: {plan.stack}")
    by_type = Counter(short_type(r.type) for r in plan.run.resources.values())
    types = Table(title="Resources by type", show_edge=False)
    types.add_column("type")
    types.add_column("count", justify="right")
    for type_name, count in sorted(by_type.items(), key=lambda item: (-item[1], item[0])):
        types.add_row(type_name, str(count))
    console.print(types)
    components = Table(title="Resources by component", show_edge=False)
    components.add_column("component")
    components.add_column("resources", justify="right")
    for label, count in sorted(_components(plan).items(), key=lambda item: (-item[1], item[0])):
        components.add_row(label, str(count))
    console.print(components)
    _print_critical_path(console, plan)
    _print_footprint(console, footprint)
    if plan.base is not None:
        console.print(
            f"(Runs on the {plan.base.stack} stack's cluster, next to {plan.base.stack}'s own "
            "pods: the headroom above is before those.)"
        )
    if connections is not None:
        print_connections(console, connections)
    _print_policy(console, violations)
    if uses_placeholder_images(plan.config.values):
        console.print(
            f"Images: {plan.stack}'s stack file names none (the release pins them by digest: "
            f"deploy.yml, .github/scripts/release-images.sh); planned with placeholders under "
            f"{PLACEHOLDER_REGISTRY}, which never resolve."
        )
    releases = sum(o.is_helm_release for o in plan.objects)
    console.print(
        f"Files: {out_dir}/resources.json, manifests/ ({len(plan.objects) - releases} objects), "
        f"helm-releases/ ({releases} records: the charts' own objects need helm to render), "
        "graph.mmd, cost.json"
    )
    console.rule("Figures")
    figures = Table(show_header=False, show_edge=False)
    figures.add_row(
        "plan time",
        f"{total_seconds:.2f} s (this process; program under mocks {plan.seconds:.2f} s)",
    )
    figures.add_row("resources", str(plan.resource_count))
    figures.add_row(
        "critical path",
        f"{plan.critical.length} resources, ~{plan.critical.minutes:g} min (estimated)",
    )
    figures.add_row(
        "footprint (requests)",
        f"{footprint.cpu_m / 1000:.2f} CPU, {footprint.memory / GIB:.2f} GiB "
        f"in {footprint.pods} pods"
        + ("" if footprint.fits() else f"  [red]does not fit {footprint.capacity.label}[/red]"),
    )
    if cost.lines:
        figures.add_row(
            "monthly cost",
            f"${cost.monthly_min:,.2f} - ${cost.monthly_max:,.2f} (list prices as of {cost.as_of})",
        )
    else:
        figures.add_row("monthly cost", "$0 on DigitalOcean (no cloud resources)")
    figures.add_row("policy", f"{len(violations)} violation(s)")
    console.print(figures)


def _print_critical_path(console: Console, plan: Plan) -> None:
    table = Table(
        title=f"Critical path: {plan.critical.length} resources, ~{plan.critical.minutes:g} min",
        show_edge=False,
    )
    table.add_column("#", justify="right")
    table.add_column("resource")
    table.add_column("min", justify="right")
    for index, urn in enumerate(plan.critical.urns, start=1):
        resource = plan.run.resources[urn]
        minutes = estimate_minutes(resource)
        table.add_row(str(index), f"{short_type(resource.type)} {resource.name}", f"{minutes:g}")
    console.print(table)


def _print_footprint(console: Console, footprint: Footprint) -> None:
    table = Table(title="Footprint: CPU and memory requests of every pod", show_edge=False)
    table.add_column("pods from")
    table.add_column("pods", justify="right")
    table.add_column("CPU (m)", justify="right")
    table.add_column("memory (Mi)", justify="right")
    for group in footprint.groups:
        count = "1/node" if group.per_node else str(group.replicas)
        note = " (job, transient)" if group.transient else ""
        table.add_row(
            group.source + note,
            count,
            str(group.per_pod.cpu_m),
            str(group.per_pod.memory // MIB),
        )
    console.print(table)
    capacity = footprint.capacity
    surge = footprint.surge
    console.print(
        f"Steady total: {footprint.cpu_m}m CPU, {footprint.memory // MIB} Mi "
        f"in {footprint.pods} pods; with the system's own {capacity.system_cpu_m}m / "
        f"{capacity.system_memory // MIB} Mi and a rolling update's extra pod "
        f"({surge.cpu_m}m / {surge.memory // MIB} Mi), "
        f"{'fits' if footprint.fits() else 'does NOT fit'} {capacity.label} "
        f"(headroom {footprint.headroom_cpu_m}m CPU, {footprint.headroom_memory // MIB} Mi "
        "before that pod)."
    )
    console.print(f"Capacity model: {capacity.source}.")
    unplaced = footprint.unplaced()
    if unplaced:
        console.print(f"[red]Pods that find no node:[/red] {', '.join(unplaced)}")
    if capacity.nodes > 1:
        cpu_m, memory = footprint.one_node_down()
        stateful = footprint.stateful_requests()
        if cpu_m >= 0 and memory >= 0 and not footprint.unplaced(capacity.nodes - 1):
            console.print("One node down: every pod still fits on the others.")
        else:
            short = [f"{-cpu_m}m CPU"] if cpu_m < 0 else []
            short += [f"{-memory // MIB} Mi"] if memory < 0 else []
            console.print(
                f"One node down: the other {capacity.nodes - 1} are short by "
                f"{' and '.join(short) or 'room for the largest pods'}; pods wait for a "
                "replacement node (autoscaler, node auto-repair). Stateful pods (Kafka nodes, "
                f"StatefulSets, Prometheus, Alertmanager: {stateful.cpu_m}m / "
                f"{stateful.memory // MIB} Mi) keep one replica per node where replicated."
            )
    unrequested = footprint.unrequested
    if unrequested:
        console.print(
            f"[yellow]{len(unrequested)} container(s) request nothing "
            "(not reserved, not counted):[/yellow] " + "; ".join(unrequested)
        )
    for note in footprint.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


def print_connections(console: Console, budget: ConnectionBudget) -> None:
    """Each service's database connections at max replicas, their sum, the connection
    pool's size and what the database accepts."""
    pooled = budget.pool_size is not None
    table = Table(
        title="Database connections at max replicas"
        + (" (services through the connection pool)" if pooled else ""),
        show_edge=False,
    )
    table.add_column("from")
    table.add_column("max replicas", justify="right")
    table.add_column("pooled/pod", justify="right")
    table.add_column("pooled", justify="right")
    table.add_column("direct/pod", justify="right")
    table.add_column("direct", justify="right")
    for service in budget.services:
        table.add_row(
            service.app,
            str(service.max_replicas),
            str(service.pooled_per_pod),
            str(service.pooled),
            str(service.direct_per_pod),
            str(service.direct),
        )
    table.add_row("jobs", "", "", "", "", str(budget.one_off))
    table.add_section()
    table.add_row("total", "", "", str(budget.pooled), "", str(budget.direct))
    console.print(table)
    console.print(
        "Pooled per pod: the SQLAlchemy pool (dbPoolSize) and as many again as overflow"
        + (", through the connection pool" if pooled else "")
        + "; direct: the Dapr sidecar's state store (1) and sessions of its own, if any "
        "(App.session_connections); jobs: migrations and grants."
    )
    if budget.pool_size is not None:
        console.print(
            f"Connection pool: size {budget.pool_size}; the services may open "
            f"{budget.pooled} through it."
        )
    through = (
        f"pool {budget.pool_size} + direct {budget.direct}"
        if budget.pool_size is not None
        else f"pools {budget.pooled} + direct {budget.direct}"
    )
    if budget.limit is None:
        console.print(
            f"Database: {through} = {budget.database}; its limit is {budget.limit_source}."
        )
        return
    left = "" if budget.headroom is None else f"; {budget.headroom} left"
    checked = "" if budget.enforced else " (shown, not checked)"
    console.print(
        f"Database: {through} = {budget.database} of {budget.limit} "
        f"({budget.limit_source}){checked}{left}."
    )


def _print_policy(console: Console, violations: list[Violation]) -> None:
    if not violations:
        console.print("Policy: every rule passes.")
        return
    table = Table(title=f"Policy: {len(violations)} violation(s)", show_edge=False)
    table.add_column("rule")
    table.add_column("resource")
    table.add_column("problem")
    for violation in violations:
        table.add_row(violation.rule, violation.resource, violation.message)
    console.print(table)


def print_cost(console: Console, stack: str, cost: CostEstimate, sources: dict[str, str]) -> None:
    table = Table(
        title=f"Monthly cost estimate: {stack} (DigitalOcean list prices as of {cost.as_of})"
    )
    table.add_column("item")
    table.add_column("detail")
    table.add_column("min $/month", justify="right")
    table.add_column("max $/month", justify="right")
    for line in cost.lines:
        table.add_row(
            line.item, line.detail, f"{line.monthly_min:,.2f}", f"{line.monthly_max:,.2f}"
        )
    table.add_section()
    table.add_row(
        "[bold]total", "", f"[bold]{cost.monthly_min:,.2f}", f"[bold]{cost.monthly_max:,.2f}"
    )
    console.print(table)
    if cost.lines:
        drivers = ", ".join(f"{line.item} (${line.monthly_min:,.2f})" for line in cost.drivers())
        console.print(f"Main drivers at the minimum: {drivers}.")
    for note in cost.notes:
        console.print(f"note: {note}")
    console.print("Prices from: " + ", ".join(sorted(set(sources.values()))))
