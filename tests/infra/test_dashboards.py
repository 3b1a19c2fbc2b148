"""Dashboards and alert rules query only metrics that exist.

Every PromQL expression in every dashboard and alert rule, and in every rule generated from
the SLO file, is parsed with a real PromQL parser; every metric it selects must be in
infra/observability/metric-catalogue.yaml (histograms as their _bucket/_count/_sum series)
or be recorded by one of the SLO rules, and every label it matches on must be a label of
that metric (or one Prometheus adds to every target, or one the recording rule sets). The
catalogue's `apps` entries, and what apps/shared registers, are checked against the metrics
contract (docs/contracts/metrics.yaml, the repository's copy of architecture §10's table).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from apps.shared import metrics as app_metrics
from infra.components import observability as obs
from infra.tooling.repo import PROJECT_ROOT

CATALOGUE_FILE = obs.DATA_DIR / "metric-catalogue.yaml"
METRICS_CONTRACT = PROJECT_ROOT / "docs" / "contracts" / "metrics.yaml"
SOURCES = {"apps", "dapr", "kafka-exporter", "kube-state-metrics", "prometheus"}
KINDS = {"counter", "gauge", "histogram"}
# Labels Prometheus (through the operator's monitors) attaches to every scraped series.
TARGET_LABELS = {"namespace", "pod", "container", "job", "instance", "endpoint"}
# Grafana's built-in interval variables, replaced by a duration before parsing.
GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _catalogue() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(CATALOGUE_FILE.read_text())
    metrics: dict[str, dict[str, Any]] = document["metrics"]
    return metrics


def _series_names() -> dict[str, str]:
    """Every queryable series name, mapped to its catalogue entry."""
    names: dict[str, str] = {}
    for name, entry in _catalogue().items():
        if entry["kind"] == "histogram":
            for suffix in ("_bucket", "_count", "_sum"):
                names[name + suffix] = name
        else:
            names[name] = name
    return names


def _dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted(obs.DASHBOARDS_DIR.glob("*.json"))
    }


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _rules() -> list[dict[str, Any]]:
    return [
        rule for group in obs.load_alert_rules(["todo", "todo-dev-x"]) for rule in group["rules"]
    ]


def _slo_groups() -> list[dict[str, Any]]:
    return obs.load_slo_rules(["todo", "todo-dev-x"])


def _recorded_series() -> dict[str, set[str]]:
    """Every series an SLO recording rule writes, with the labels it sets."""
    recorded: dict[str, set[str]] = {}
    for group in _slo_groups():
        for rule in group["rules"]:
            if "record" in rule:
                recorded.setdefault(rule["record"], set()).update(rule.get("labels", {}))
    return recorded


def _queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every expression in every dashboard and rule."""
    for stem, dashboard in _dashboards().items():
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                yield f"{stem}/{panel['title']}/{target['refId']}", target["expr"]
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]["query"]
            match = re.fullmatch(r"label_values\((.+),\s*([a-zA-Z_]\w*)\)", query)
            assert match, f"{stem}: variable {variable['name']}: unexpected query {query!r}"
            yield f"{stem}/${variable['name']}", match.group(1)
    for rule in _rules():
        yield f"rule {rule['alert']}", rule["expr"]
    for group in _slo_groups():
        for rule in group["rules"]:
            yield f"{group['name']}/{rule.get('alert') or rule['record']}", rule["expr"]


def _parse(expr: str) -> Any:
    for variable, duration in GRAFANA_INTERVALS.items():
        expr = expr.replace(variable, duration)
    return promql_parser.parse(expr)


def _selectors(expr: str) -> list[tuple[str | None, list[str]]]:
    found: list[tuple[str | None, list[str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, [m.name for m in node.matchers.matchers]))

    promql_parser.walk(_parse(expr), visit)
    return found


QUERIES = list(_queries())


def test_there_is_something_to_check() -> None:
    assert len(QUERIES) >= 40
    assert {"api-red", "event-pipeline", "kafka", "dapr", "slos"} <= set(_dashboards())
    assert sum(where.startswith("todo-slo-") for where, _ in QUERIES) >= 4 * 12


@pytest.mark.parametrize(("where", "expr"), QUERIES, ids=[w for w, _ in QUERIES])
def test_query_uses_catalogued_metrics_and_labels(where: str, expr: str) -> None:
    series = _series_names()
    catalogue = _catalogue()
    recorded = _recorded_series()
    selectors = _selectors(expr)
    assert selectors, f"{where}: selects no metric"
    for name, labels in selectors:
        assert name is not None, f"{where}: selector without a metric name"
        if name in recorded:
            unknown = set(labels) - recorded[name]
            assert not unknown, f"{where}: recorded {name} has no label(s) {sorted(unknown)}"
            continue
        assert name in series, f"{where}: metric {name!r} is not in {CATALOGUE_FILE.name}"
        known = set(catalogue[series[name]]["labels"]) | TARGET_LABELS
        if name.endswith("_bucket"):
            known.add("le")
        unknown = set(labels) - known
        assert not unknown, f"{where}: {name} has no label(s) {sorted(unknown)}"


def test_the_check_catches_unknown_metrics_and_labels() -> None:
    assert _selectors('sum(rate(http_requests_totl{status="500"}[5m]))') == [
        ("http_requests_totl", ["status"])
    ]
    assert "http_requests_totl" not in _series_names()
    with pytest.raises(ValueError):
        _parse("sum(rate(http_requests_total[5m])")


def test_every_catalogued_metric_is_used() -> None:
    series = _series_names()
    used = {series[name] for _, expr in QUERIES for name, _ in _selectors(expr) if name in series}
    assert set(_catalogue()) - used == set(), "remove unused entries from the catalogue"


def test_catalogue_entries_are_well_formed() -> None:
    document = yaml.safe_load(CATALOGUE_FILE.read_text())
    assert set(document["sources"]) == SOURCES
    for name, entry in _catalogue().items():
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name), name
        assert entry["source"] in SOURCES, name
        assert entry["kind"] in KINDS, name
        assert isinstance(entry["labels"], list), name
        if entry["kind"] == "histogram":
            assert not name.endswith(("_bucket", "_count", "_sum", "_total")), name


def _contract() -> dict[str, tuple[str, set[str]]]:
    """The metrics contract (architecture §10's table): name -> (kind, labels)."""
    document = yaml.safe_load(METRICS_CONTRACT.read_text())
    return {
        name: (entry["kind"], set(entry["labels"])) for name, entry in document["metrics"].items()
    }


def _catalogued_apps_metrics() -> dict[str, tuple[str, set[str]]]:
    return {
        name: (entry["kind"], set(entry["labels"]))
        for name, entry in _catalogue().items()
        if entry["source"] == "apps"
    }


def test_the_metrics_contract_is_well_formed() -> None:
    contract = _contract()
    assert contract
    for name, (kind, labels) in contract.items():
        assert re.fullmatch(r"[a-z_]+", name), name
        assert kind in KINDS, name
        assert all(re.fullmatch(r"[a-z_]+", label) for label in labels), name
        # Prometheus naming: counters end in _total; histograms carry a unit, not a suffix.
        assert name.endswith("_total") == (kind == "counter"), name


def test_apps_entries_are_exactly_the_contracts_metrics() -> None:
    assert _catalogued_apps_metrics() == _contract()


def test_apps_register_exactly_the_contracts_metrics() -> None:
    registered: dict[str, tuple[str, set[str]]] = {}
    for value in vars(app_metrics).values():
        if isinstance(value, MetricWrapperBase):
            (family,) = value.describe()
            labels = set(getattr(value, "_labelnames", ()))
            # Counters' families drop the _total that their series (and queries) carry.
            name = f"{family.name}_total" if family.type == "counter" else family.name
            registered[name] = (family.type, labels)
    assert registered == _contract()
    # And they are in the registry that GET /metrics serves.
    exposed = {family.name for family in REGISTRY.collect()}
    for name, (kind, _) in registered.items():
        assert (name.removesuffix("_total") if kind == "counter" else name) in exposed


def test_dashboards_are_valid_grafana_json() -> None:
    uids = set()
    for stem, dashboard in _dashboards().items():
        assert dashboard["uid"].startswith("todo-") and dashboard["uid"] not in uids, stem
        uids.add(dashboard["uid"])
        assert dashboard["title"].startswith("Todo / "), stem
        assert dashboard["schemaVersion"] >= 36, stem
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        ids = [panel["id"] for panel in _panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{stem}: duplicate panel ids"
        for panel in _panels(dashboard):
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, (stem, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], (stem, panel["title"])
            for target in panel["targets"]:
                for used in re.findall(r"\$(\w+)", target["expr"]):
                    assert used.startswith("__") or used in variables, (stem, used)


def test_alert_rules_are_complete() -> None:
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    required = {
        "TodoApiHighErrorRatio",
        "TodoApiHighLatencyP95",
        "TodoOutboxLagging",
        "TodoConsumerLagHigh",
        "TodoDeadLetterEvents",
        "TodoPodsNotReady",
    }
    assert required <= set(names)
    for rule in rules:
        assert re.fullmatch(r"[0-9]+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        for key in ("summary", "description", "runbook"):
            assert annotations.get(key, "").strip(), (rule["alert"], key)


def test_dashboard_files_are_pretty_printed_for_review() -> None:
    for path in Path(obs.DASHBOARDS_DIR).glob("*.json"):
        text = path.read_text()
        assert text == json.dumps(json.loads(text), indent=2) + "\n", path.name
