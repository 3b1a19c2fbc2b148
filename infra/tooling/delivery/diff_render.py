"""Show a plan diff to people: in the terminal (rich), in a PR comment (Markdown), as JSON.

Secret fields carry only the mask by the time they reach this module (see
`infra.tooling.delivery.plan_diff`); the renderers show a lock and what is known about the change.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from infra.tooling.delivery.plan_diff import (
    Action,
    FieldChange,
    PlanDiff,
    ResourceChange,
    SecretState,
)
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
