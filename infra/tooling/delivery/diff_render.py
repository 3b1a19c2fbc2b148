"""Show a plan diff to people: in the terminal (rich), in a PR comment (Markdown), as JSON.

Secret fields carry only the mask by the time they reach this module (see
`infra.tooling.delivery.plan_diff`); the renderers show a lock and what is known about the change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from infra.tooling.delivery.cost_diff import CostDiff, CostLineChange
from infra.tooling.delivery.plan_diff import (
    Action,
    FieldChange,
    PlanDiff,
    ResourceChange,
    SecretState,
)
from infra.tooling.plan.cost import CostEstimate, CostLine
from infra.tooling.plan.field_paths import ABSENT

GITHUB_COMMENT_LIMIT = 65_536
"""GitHub rejects longer comment bodies."""
_MARKDOWN_BUDGET = 60_000
_VALUE_WIDTH = 80

_ORDER = (Action.REPLACE, Action.DELETE, Action.CREATE, Action.UPDATE)
_ICON = {Action.CREATE: "🟢", Action.DELETE: "🔴", Action.REPLACE: "🟣", Action.UPDATE: "🟡"}
_STYLE = {
    Action.CREATE: "green",
    Action.DELETE: "red",
    Action.REPLACE: "magenta",
    Action.UPDATE: "yellow",
}
_VERB = {
    Action.CREATE: "to create",
    Action.DELETE: "to delete",
    Action.REPLACE: "to replace",
    Action.UPDATE: "to update",
}

DISCLAIMER = (
    "Computed offline: the Pulumi program ran under mocks for both revisions. Replacements "
    "are estimated from fields known to be immutable; `pulumi preview` on the real stack is "
    "authoritative. Secret values are never shown."
)


def _ordered(diff: PlanDiff) -> list[ResourceChange]:
    return [change for action in _ORDER for change in diff.of(action)]


def summary_line(diff: PlanDiff) -> str:
    """`1 to replace · 2 to create · 0 to update · 0 to delete · 140 unchanged`."""
    parts = [f"{diff.count(action)} {_VERB[action]}" for action in _ORDER]
    return " · ".join([*parts, f"{diff.unchanged} unchanged"])


def _plain(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    text = " ".join(text.split())  # newlines and runs of blanks would break a table row
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _secret_label(change: FieldChange, side: str) -> str:
    """What a secret field shows on one side: never the value, only what is known."""
    value = change.before if side == "before" else change.after
    if value is ABSENT:
        return "(absent)"
    state = change.secret
    if side == "before":
        return "(hidden)" if state is SecretState.BECAME_SECRET else "🔒 secret"
    if state is SecretState.NO_LONGER_SECRET:
        return "(hidden: no longer secret)"
    assert state is not None
    return f"🔒 secret ({state.value})"


# ----------------------------------------------------------------------------- cost


def _money(low: float, high: float) -> str:
    return f"${low:,.2f}" if abs(high - low) < 0.005 else f"${low:,.2f} – ${high:,.2f}"


def _total(cost: CostEstimate) -> str:
    return _money(cost.monthly_min, cost.monthly_max)


def _line_amount(line: CostLine | None) -> str:
    return "—" if line is None else _money(line.monthly_min, line.monthly_max)


def _signed(amount: float) -> str:
    sign = "+" if amount >= 0 else "−"
    return f"{sign}${abs(amount):,.2f}"


def delta_text(delta_min: float, delta_max: float) -> str:
    """`+$24.00`, or `+$24.00 at the minimum, +$48.00 at the maximum`."""
    if abs(delta_max - delta_min) < 0.005:
        return f"{_signed(delta_min)}/month"
    return f"{_signed(delta_min)}/month at the minimum, {_signed(delta_max)} at the maximum"


def cost_headline(cost: CostDiff) -> str:
    """`Monthly cost: $241.50 – $289.50 → $265.50 – $313.50 (+$24.00/month)`, or
    `Monthly cost: $241.50 – $289.50, no cost change`."""
    if not cost.has_changes:
        return f"Monthly cost: {_total(cost.after)}, no cost change"
    return (
        f"Monthly cost: {_total(cost.before)} → {_total(cost.after)} "
        f"({delta_text(cost.delta_min, cost.delta_max)})"
    )


def cost_drivers(cost: CostDiff) -> str:
    """`driven by node pool todo-prod-pool (+$24.00/month)`."""
    return "driven by " + "; ".join(
        f"{line.item} ({delta_text(line.delta_min, line.delta_max)})" for line in cost.drivers
    )


def _detail_change(line: CostLineChange) -> str:
    before = line.before.detail if line.before else "—"
    after = line.after.detail if line.after else "—"
    return after if before == after else f"{before} → {after}"


def _md_cost(cost: CostDiff) -> list[str]:
    lines = [f"**{cost_headline(cost)}**", ""]
    if cost.has_changes:
        lines += [
            f"_{cost_drivers(cost)}_",
            "",
            "| line item | before | after | change | what |",
            "|---|---|---|---|---|",
        ]
        for line in cost.drivers:
            lines.append(
                f"| {line.item} | {_line_amount(line.before)} | {_line_amount(line.after)} "
                f"| {delta_text(line.delta_min, line.delta_max)} "
                f"| {_md_code(_plain(_detail_change(line)))} |"
            )
        lines.append("")
    lines += [f"> {note}" for note in cost.notes]
    if cost.notes:
        lines.append("")
    return lines


def _text_cost(cost: CostDiff, console: Console) -> None:
    console.print(Text(cost_headline(cost), style="bold"))
    for note in cost.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if not cost.has_changes:
        return
    console.print(cost_drivers(cost))
    table = Table(show_edge=False, pad_edge=False)
    for column in ("line item", "before", "after", "change", "what"):
        table.add_column(column, overflow="fold")
    for line in cost.drivers:
        table.add_row(
            line.item,
            _line_amount(line.before),
            _line_amount(line.after),
            delta_text(line.delta_min, line.delta_max),
            _detail_change(line),
        )
    console.print(table)


def _json_cost(cost: CostDiff) -> dict[str, Any]:
    def amounts(line: CostLine | None) -> dict[str, float] | None:
        return None if line is None else {"min": line.monthly_min, "max": line.monthly_max}

    return {
        "before": {"min": cost.before.monthly_min, "max": cost.before.monthly_max},
        "after": {"min": cost.after.monthly_min, "max": cost.after.monthly_max},
        "delta": {"min": cost.delta_min, "max": cost.delta_max},
        "changed": cost.has_changes,
        "drivers": [
            {
                "item": line.item,
                "before": amounts(line.before),
                "after": amounts(line.after),
                "delta": {"min": line.delta_min, "max": line.delta_max},
                "detail": _detail_change(line),
            }
            for line in cost.drivers
        ],
        "notes": list(cost.notes),
    }


def cost_summary_markdown(diffs: Mapping[str, PlanDiff]) -> list[str]:
    """One row per stack: the monthly cost before → after and what drives it."""
    rows = ["| stack | before | after | change |", "|---|---|---|---|"]
    for stack, diff in diffs.items():
        cost = diff.cost
        if cost is None:
            continue
        change = "no cost change"
        if cost.has_changes:
            change = f"{delta_text(cost.delta_min, cost.delta_max)}, {cost_drivers(cost)}"
        rows.append(
            f"| {_md_code(stack or 'plan')} | {_total(cost.before)} | {_total(cost.after)} "
            f"| {change} |"
        )
    return ["#### Monthly cost (DigitalOcean list prices)", "", *rows, ""] if len(rows) > 2 else []


# ----------------------------------------------------------------------------- Markdown


def _md_code(text: str) -> str:
    text = text.replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_value(change: FieldChange, side: str) -> str:
    value = change.before if side == "before" else change.after
    if change.secret is not None:
        return _secret_label(change, side)
    if value is ABSENT:
        return "_(absent)_"
    return _md_code(_plain(value))


def _md_fields(change: ResourceChange) -> list[str]:
    lines = [
        f"**{_ICON[change.action]} {_md_code(change.name)}** {_md_code(change.short_type)}"
        f" — {change.action.value}",
        "",
    ]
    lines += [f"- {note}" for note in change.notes]
    if change.notes:
        lines.append("")
    lines += ["| field | before | after | |", "|---|---|---|---|"]
    for field in change.fields:
        forces = "forces replacement" if field.replaces else ""
        lines.append(
            f"| {_md_code(field.path)} | {_md_value(field, 'before')} "
            f"| {_md_value(field, 'after')} | {forces} |"
        )
    lines.append("")
    return lines


def render_markdown(diff: PlanDiff, *, title: str, marker: str | None = None) -> str:
    """A PR comment body; `marker` (an HTML comment) lets a bot find and edit it later."""
    head = [f"<!-- {marker} -->"] if marker else []
    head += [f"### {title}", "", f"**{summary_line(diff)}**", ""]
    if diff.cost is not None:
        head += _md_cost(diff.cost)
    if not diff.has_changes:
        body = ["No changes: both revisions plan the same resources with the same inputs.", ""]
        return "\n".join([*head, *body, f"<sub>{DISCLAIMER}</sub>", ""])

    table = ["| | resource | type | why |", "|---|---|---|---|"]
    for change in _ordered(diff):
        why = "; ".join(change.replace_reasons) if change.replace_reasons else ""
        if change.action is Action.UPDATE:
            why = f"{len(change.fields)} field{'s' if len(change.fields) != 1 else ''}"
        if change.notes and change.action is Action.CREATE:
            why = change.notes[0]
        table.append(
            f"| {_ICON[change.action]} {change.action.value} | {_md_code(change.name)} "
            f"| {_md_code(change.short_type)} | {why} |"
        )
    notes = [f"> ⚠️ {note}" for note in diff.notes]
    footer = ["", f"<sub>{DISCLAIMER}</sub>", ""]

    detailed = [c for c in _ordered(diff) if c.fields]
    details: list[str] = []
    budget = _MARKDOWN_BUDGET - sum(len(line) + 1 for line in [*head, *table, *notes, *footer])
    shown = 0
    for change in detailed:
        block = _md_fields(change)
        size = sum(len(line) + 1 for line in block)
        if size > budget - 400:
            break
        details += block
        budget -= size
        shown += 1
    if detailed:
        summary = f"Field changes ({len(detailed)} resource{'s' if len(detailed) != 1 else ''})"
        details = [f"<details><summary>{summary}</summary>", "", *details]
        if shown < len(detailed):
            details += [
                f"_…and {len(detailed) - shown} more, cut to fit a comment; run "
                "`uv run todo-infra diff` locally for all of them._",
                "",
            ]
        details.append("</details>")
    return "\n".join([*head, *table, "", *notes, *details, *footer])


# ----------------------------------------------------------------------------- terminal


def _text_value(change: FieldChange, side: str) -> Text:
    value = change.before if side == "before" else change.after
    if change.secret is not None:
        return Text(_secret_label(change, side), style="bold")
    if value is ABSENT:
        return Text("(absent)", style="dim")
    return Text(_plain(value))


def render_text(diff: PlanDiff, console: Console, *, title: str) -> None:
    """Print the diff: a table of resources, then a tree of field changes."""
    console.print(Text(title, style="bold"))
    console.print(summary_line(diff))
    if diff.cost is not None:
        _text_cost(diff.cost, console)
    for note in diff.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if not diff.has_changes:
        console.print("No changes.")
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("", "resource", "type", "why"):
        table.add_column(column, overflow="fold")
    for change in _ordered(diff):
        why = "; ".join(change.replace_reasons)
        if change.action is Action.UPDATE:
            why = f"{len(change.fields)} field(s)"
        if change.notes and change.action is Action.CREATE:
            why = change.notes[0]
        table.add_row(
            Text(change.action.value, style=_STYLE[change.action]),
            change.name,
            change.short_type,
            why,
        )
    console.print(table)
    for change in _ordered(diff):
        if not change.fields:
            continue
        tree = Tree(
            Text.assemble(
                (f"{change.action.value} ", _STYLE[change.action]),
                (change.name, "bold"),
                f"  {change.short_type}",
            )
        )
        for note in change.notes:
            tree.add(Text(note, style="italic"))
        for field in change.fields:
            line = Text.assemble(
                (field.path, "cyan"),
                ": ",
                _text_value(field, "before"),
                " → ",
                _text_value(field, "after"),
            )
            if field.replaces:
                line.append("  (forces replacement)", style="magenta")
            tree.add(line)
        console.print(tree)
    console.print(Text(DISCLAIMER, style="dim"))


# ----------------------------------------------------------------------------- JSON


def _json_field(change: FieldChange) -> dict[str, Any]:
    out: dict[str, Any] = {"path": change.path}
    if change.before is not ABSENT:
        out["before"] = change.before
    if change.after is not ABSENT:
        out["after"] = change.after
    if change.secret is not None:
        out["secret"] = change.secret.value
    if change.replaces is not None:
        out["forcesReplacement"] = change.replaces.reason
    return out


def render_json(diff: PlanDiff) -> str:
    """Machine-readable diff (for scripts and tests); secrets carry only their mask."""
    document = {
        "base": diff.base,
        "head": diff.head,
        "summary": {action.value: diff.count(action) for action in Action}
        | {"unchanged": diff.unchanged},
        "secretDigests": diff.secret_digests,
        "notes": list(diff.notes),
        "cost": _json_cost(diff.cost) if diff.cost is not None else None,
        "changes": [
            {
                "action": change.action.value,
                "urn": change.key,
                "type": change.type,
                "name": change.name,
                "replaceReasons": list(change.replace_reasons),
                "notes": list(change.notes),
                "fields": [_json_field(field) for field in change.fields],
            }
            for change in _ordered(diff)
        ],
    }
    return json.dumps(document, indent=2, default=str)
