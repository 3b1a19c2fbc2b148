"""The "Todo / SLOs" Grafana dashboard, generated from the SLO file.

Per SLO a row: the SLI over its window, the error budget left, and the burn rate over the
alerts' long windows with the alerts' burn rates as threshold lines. It reads only the
SLO recording rules (slos.py), so it shows exactly what the alerts evaluate.

The dashboard is committed as dashboards/slos.json, next to the hand-written ones, so that
it is reviewed and deployed like them; a test fails when the file and the SLO file
disagree. Rewrite it with:

    uv run python -m infra.components.observability.slo_dashboard
"""

from __future__ import annotations

import json
from typing import Any

from infra.components.observability.datafiles import DASHBOARDS_DIR
from infra.components.observability.slos import (
    SloFile,
    load_slos,
    promql_number,
    ratio_record,
)

DASHBOARD_FILE = DASHBOARDS_DIR / "slos.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_ROW_HEIGHT = 7  # the row header and its 6-high panels
_SEVERITY_COLOURS = ("red", "orange", "yellow", "blue")
"""Threshold-line colours of the alerting policy's severities, in the file's order."""


def _target(ref_id: str, expr: str, legend: str, *, instant: bool) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
    }


def _stat(
    panel_id: int,
    title: str,
    description: str,
    expr: str,
    grid: dict[str, int],
    thresholds: list[dict[str, Any]],
    decimals: int,
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": [_target("A", expr, "", instant=True)],
        "fieldConfig": {
            "defaults": {
                "unit": "percentunit",
                "decimals": decimals,
                "thresholds": {"mode": "absolute", "steps": thresholds},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        },
    }


def _burn_rate_steps(slos: SloFile) -> list[dict[str, Any]]:
    """One threshold line per burn rate the alerts use, coloured by severity."""
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    for policy, colour in zip(slos.alerting, _SEVERITY_COLOURS, strict=False):
        steps += [{"color": colour, "value": float(pair.burn_rate)} for pair in policy.windows]
    return sorted(steps, key=lambda step: -1.0 if step["value"] is None else step["value"])


def _row_panels(slos: SloFile, index: int, first_id: int) -> list[dict[str, Any]]:
    slo = slos.slos[index]
    y = index * _ROW_HEIGHT
    matcher = f'{{slo="{slo.name}"}}'
    budget = promql_number(slo.error_budget)
    over_window = f"{ratio_record(slo.window)}{matcher}"
    retention_note = (
        " Computed from the samples Prometheus still keeps: with a retention shorter than "
        f"{slo.window}, over the retention."
    )
    burn_rate = {
        "id": first_id + 3,
        "type": "timeseries",
        "title": "Burn rate (× the sustainable rate)",
        "description": (
            "Error ratio over each window divided by the error budget: 1 spends the budget "
            f"exactly in {slo.window}. The lines are the alerts' burn rates; an alert "
            "fires when the long window and its short one are both above its line."
        ),
        "datasource": DATASOURCE,
        "gridPos": {"h": 6, "w": 16, "x": 8, "y": y + 1},
        "targets": [
            _target(
                f"burn{window}",
                f"{ratio_record(window)}{matcher} / {budget}",
                window,
                instant=False,
            )
            for window in slos.burn_windows()
        ],
        "fieldConfig": {
            "defaults": {
                "unit": "suffix:×",
                "min": 0,
                "custom": {"thresholdsStyle": {"mode": "line"}},
                "thresholds": {"mode": "absolute", "steps": _burn_rate_steps(slos)},
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }
    return [
        {
            "id": first_id,
            "type": "row",
            "title": f"{slo.title}: {promql_number(slo.objective)}% over {slo.window}",
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            "panels": [],
        },
        _stat(
            first_id + 1,
            f"SLI ({slo.window})",
            slo.description + retention_note,
            f"1 - {over_window}",
            {"h": 6, "w": 4, "x": 0, "y": y + 1},
            [
                {"color": "red", "value": None},
                {"color": "green", "value": float(slo.objective) / 100},
            ],
            decimals=3,
        ),
        _stat(
            first_id + 2,
            f"Error budget left ({slo.window})",
            (
                f"Share of the {slo.window} error budget ({promql_number(slo.error_budget * 100)}% "
                "of events) not yet spent; below zero the SLO is missed." + retention_note
            ),
            f"1 - {over_window} / {budget}",
            {"h": 6, "w": 4, "x": 4, "y": y + 1},
            [
                {"color": "red", "value": None},
                {"color": "orange", "value": 0},
                {"color": "green", "value": 0.25},
            ],
            decimals=1,
        ),
        burn_rate,
    ]


def build_dashboard(slos: SloFile) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    panels: list[dict[str, Any]] = []
    for index in range(len(slos.slos)):
        panels += _row_panels(slos, index, first_id=len(panels) + 1)
    return {
        "uid": "todo-slos",
        "title": "Todo / SLOs",
        "description": (
            "Service level objectives (infra/observability/slos.yaml): SLI, error budget "
            "and burn rates from the SLO recording rules. Generated by "
            "infra/components/observability/slo_dashboard.py: edit the SLO file, not this."
        ),
        "tags": ["todo", "slo"],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "utc",
        "time": {"from": "now-7d", "to": "now"},
        "refresh": "1m",
        "links": [],
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "options": [],
                }
            ]
        },
        "panels": panels,
    }


def render(slos: SloFile) -> str:
    """The dashboard file's text, pretty-printed like the hand-written dashboards."""
    return json.dumps(build_dashboard(slos), indent=2) + "\n"


def main() -> None:
    """Rewrite dashboards/slos.json from the committed SLO file."""
    DASHBOARD_FILE.write_text(render(load_slos()))
    print(f"wrote {DASHBOARD_FILE}")


if __name__ == "__main__":
    main()
