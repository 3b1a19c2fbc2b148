"""The traces `todo-local` collects: every service appends its finished spans to one
JSON-lines file (`TODO_TRACES_FILE`, apps.shared.tracing.JsonLinesSpanExporter), and
`todo-local trace <trace_id>` prints one trace as an indented tree.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from apps.shared.tracing import rotated

TRACES_FILE = "traces.jsonl"
# Finished spans leave each service in batches; locally, every half second rather than
# the SDK's five (OTEL_BSP_SCHEDULE_DELAY, milliseconds), so a trace is there at once.
LOCAL_TRACING_ENV = {"OTEL_BSP_SCHEDULE_DELAY": "500"}

Span = Mapping[str, Any]


def tracing_env(home: Path) -> dict[str, str]:
    """What the services need to append their spans under `home`."""
    return {"TODO_TRACES_FILE": str(home / TRACES_FILE), **LOCAL_TRACING_ENV}


def read_spans(path: Path, trace_id: str | None = None) -> list[dict[str, Any]]:
    """The spans in `path` and its rotated predecessor (of one trace, if given);
    unreadable lines are skipped."""
    wanted = trace_id.lower() if trace_id else None
    spans = []
    for source in (rotated(path), path):
        if not source.exists():
            continue
        with source.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    span = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a process killed mid-write
                if isinstance(span, dict) and (wanted is None or span.get("trace_id") == wanted):
                    spans.append(span)
    return spans


def tree(spans: Iterable[Span]) -> Iterator[tuple[int, Span]]:
    """(depth, span) in tree order, children by start time; spans whose parent is not
    in the set (the trace's root, or a parent not exported yet) start at depth 0."""
    spans = sorted(spans, key=lambda s: int(s.get("start_ns") or 0))
    ids = {s.get("span_id") for s in spans}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in spans:
        parent = span.get("parent_id")
        children[parent if parent in ids else None].append(span)

    def walk(parent: str | None, depth: int) -> Iterator[tuple[int, Span]]:
        for span in children.get(parent, []):
            yield depth, span
            yield from walk(span.get("span_id"), depth + 1)

    yield from walk(None, 0)


def render(spans: Iterable[Span]) -> list[str]:
    """One line per span: indentation for depth, service, span name, duration."""
    return [
        f"{'  ' * depth}{span.get('service') or '?'}: {span.get('name')} "
        f"({float(span.get('duration_ms') or 0):.1f} ms)"
        + ("" if span.get("status") in (None, "UNSET", "OK") else f" [{span['status']}]")
        for depth, span in tree(spans)
    ]
