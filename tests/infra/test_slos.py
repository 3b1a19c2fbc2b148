"""The SLOs: one file, and the recording rules, alerts and dashboard generated from it.

test_dashboards.py already parses every generated rule and dashboard query and checks
their metrics and labels against the catalogue. Here: that the SLIs measure what the SLO
file says (real bucket boundaries, the public routes), that windows and thresholds follow
from the file (also from a changed copy of it), that the alerts have the shape Prometheus
evaluates as the SRE workbook means (promtool is not available offline), that every
runbook link lands on a heading, and that every stack's PrometheusRule carries the groups
and validates against the CRD.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.utils import floatToGoString
from pydantic import ValidationError

from apps.contracts.services import (
    INTERNAL_TASKS_PREFIX,
    NEXT_OCCURRENCE_PATH,
    PUBLIC_API_PREFIXES,
)
from apps.shared import metrics as app_metrics
from infra.components.observability import load_alert_rules, slo_dashboard
from infra.components.observability.slos import (
    BASE_WINDOW,
    ERROR_RATE_RECORD,
    SLOS_FILE,
    TOTAL_RATE_RECORD,
    Slo,
    SloFile,
    alert_name,
    duration_seconds,
    load_slos,
    ratio_record,
    slo_rule_groups,
)
from infra.tooling.repo import PROJECT_ROOT
from tests.infra.components.plans import one, plan
from tests.infra.test_dashboards import _parse, _selectors
from tests.infra.validation import validate_custom

OPERATIONS_DOC = PROJECT_ROOT / "docs" / "operations.md"
NAMESPACES = ["todo"]
SEVERITIES = {"page", "ticket"}
WORKBOOK_PAIRS = {
    # Google SRE workbook, "Alerting on SLOs", table 5-8: (long, short, burn rate).
    "page": [("1h", "5m", 14.4), ("6h", "30m", 6.0)],
    "ticket": [("1d", "2h", 3.0), ("3d", "6h", 1.0)],
}


@pytest.fixture(scope="module")
def slos() -> SloFile:
    return load_slos()


def _changed_file(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> SloFile:
    """The committed SLO file with `change` applied to its YAML document."""
    document = yaml.safe_load(SLOS_FILE.read_text())
    change(document)
    path = tmp_path / "slos.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_slos(path)


def _rules(slos: SloFile) -> Iterator[tuple[Slo, dict[str, Any]]]:
    groups = slo_rule_groups(slos, NAMESPACES)
    for slo, group in zip(slos.slos, groups, strict=True):
        for rule in group["rules"]:
            yield slo, rule


def _alerts(slos: SloFile) -> dict[str, tuple[Slo, dict[str, Any]]]:
    return {rule["alert"]: (slo, rule) for slo, rule in _rules(slos) if "alert" in rule}


# The SLO file -------------------------------------------------------------------------


def test_the_four_slos_and_their_objectives(slos: SloFile) -> None:
    table = {slo.name: (float(slo.objective), slo.window) for slo in slos.slos}
    assert table == {
        "api-availability": (99.9, "30d"),
        "api-latency": (99.0, "30d"),
        "pipeline-freshness": (99.0, "30d"),
        "reminder-lateness": (99.0, "30d"),
    }
    # Budgets are exact decimals: they are written into the alert expressions.
    assert str(slos.slos[0].error_budget) == "0.001"
    assert str(slos.slos[1].error_budget) == "0.01"


def _sli_selectors(slo: Slo) -> dict[str, promql_parser.VectorSelector]:
    """The SLI's selectors (namespaces filled in), each checked to be one plain selector."""
    selectors: dict[str, promql_parser.VectorSelector] = {}
    for key in ("total", "good", "bad"):
        text = getattr(slo.sli, key)
        if text is None:
            continue
        node = _parse(text.replace("__APPS_NAMESPACES__", "todo"))
        assert isinstance(node, promql_parser.VectorSelector), (slo.name, key)
        selectors[key] = node
    return selectors


def _matchers(selector: promql_parser.VectorSelector) -> dict[str, tuple[str, str]]:
    return {m.name: (str(m.op), m.value) for m in selector.matchers.matchers}


def _histograms() -> dict[str, list[str]]:
    """The apps' histograms and their bucket bounds as the client library writes `le`."""
    bounds: dict[str, list[str]] = {}
    for value in vars(app_metrics).values():
        if isinstance(value, MetricWrapperBase) and value._type == "histogram":
            upper_bounds: list[float] = value._upper_bounds  # type: ignore[attr-defined]
            # The library's own formatting of `le` (untyped in prometheus_client).
            bounds[value._name] = [
                floatToGoString(b)  # type: ignore[no-untyped-call]
                for b in upper_bounds
            ]
    return bounds


def test_good_events_are_real_buckets_of_the_total_events_histogram(slos: SloFile) -> None:
    histograms = _histograms()
    checked = 0
    for slo in slos.slos:
        selectors = _sli_selectors(slo)
        good, total = selectors.get("good"), selectors["total"]
        if good is None:
            continue
        assert good.name is not None and total.name is not None
        histogram = good.name.removesuffix("_bucket")
        assert good.name == f"{histogram}_bucket" and total.name == f"{histogram}_count"
        good_matchers = _matchers(good)
        op, le = good_matchers.pop("le")
        assert op == "MatchOp.Equal", slo.name
        # Prometheus compares le as text: "5" would match nothing where the app writes "5.0".
        assert le in histograms[histogram][:-1], f"{slo.name}: le={le!r} is no bucket bound"
        # The good events are a subset of the total ones: same matchers but le.
        assert good_matchers == _matchers(total), slo.name
        checked += 1
    assert checked == 3


def test_bad_events_are_a_subset_of_the_total_events(slos: SloFile) -> None:
    for slo in slos.slos:
        selectors = _sli_selectors(slo)
        if "bad" not in selectors:
            continue
        bad, total = _matchers(selectors["bad"]), _matchers(selectors["total"])
        assert total.items() <= bad.items(), slo.name
    availability = _sli_selectors(slos.slos[0])
    assert _matchers(availability["bad"])["status"] == ("MatchOp.Re", "5..")


def test_api_slis_select_the_public_routes_only(slos: SloFile) -> None:
    public = [prefix + "/x" for prefixes in PUBLIC_API_PREFIXES.values() for prefix in prefixes]
    private = [
        NEXT_OCCURRENCE_PATH,
        INTERNAL_TASKS_PREFIX,
        "/reminder-scan",
        "/healthz",
        "/readyz",
        "/metrics",
        "/dapr/subscribe",
        app_metrics.UNMATCHED_ROUTE,
    ]
    for slo in slos.slos[:2]:
        for selector in _sli_selectors(slo).values():
            op, regex = _matchers(selector)["route"]
            assert op == "MatchOp.Re"
            # PromQL anchors regular expressions at both ends.
            assert all(re.fullmatch(regex, route) for route in public), slo.name
            assert not any(re.fullmatch(regex, route) for route in private), slo.name


def test_slis_count_the_apps_namespaces_only(slos: SloFile) -> None:
    for slo in slos.slos:
        for key, text in slo.sli.model_dump().items():
            assert text is None or 'namespace=~"__APPS_NAMESPACES__"' in text, (slo.name, key)


def test_the_alerting_policy_is_the_workbooks(slos: SloFile) -> None:
    policy = {
        p.severity: [(w.long, w.short, float(w.burn_rate)) for w in p.windows]
        for p in slos.alerting
    }
    assert policy == WORKBOOK_PAIRS
    assert slos.windows() == ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert slos.burn_windows() == ["1h", "6h", "1d", "3d"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["slos"][0]["sli"].pop("bad"), "needs `good` or `bad`"),
        (lambda d: d["slos"][0].update(objective=100), "less than 100"),
        (lambda d: d["slos"][1].update(name="api-availability"), "SLO names must be unique"),
        (lambda d: d["slos"][0].update(window="2d"), "shorter than an alert's"),
        (lambda d: d["slos"][0].update(description="{{ $labels.x }}"), "must not hold"),
        (lambda d: d["slos"][0].update(objectiv=99), "Extra inputs are not permitted"),
        (lambda d: d["alerting"][0]["windows"][0].update(short="1h"), "must be shorter than"),
        (lambda d: d["alerting"][0]["windows"][0].update(short="1m"), "shorter than the base"),
        (lambda d: d["alerting"][0]["windows"][1].update(long="360m"), "are the same"),
        (lambda d: d["slos"][0]["sli"].update(total="sum(x)"), "should match pattern"),
    ],
)
def test_mistakes_in_the_slo_file_are_refused(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        _changed_file(tmp_path, change)


# Recording rules ----------------------------------------------------------------------


def test_each_slo_records_its_event_rates_and_every_windows_error_ratio(slos: SloFile) -> None:
    groups = slo_rule_groups(slos, NAMESPACES)
    assert [g["name"] for g in groups] == [f"todo-slo-{slo.name}" for slo in slos.slos]
    expected = [ERROR_RATE_RECORD, TOTAL_RATE_RECORD] + [ratio_record(w) for w in slos.windows()]
    for slo, group in zip(slos.slos, groups, strict=True):
        records = [rule for rule in group["rules"] if "record" in rule]
        assert [rule["record"] for rule in records] == expected
        for rule in records:
            assert rule["labels"] == {"slo": slo.name}
            assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["record"])
        ratio_5m = records[2]["expr"]
        assert f"[{BASE_WINDOW}]" not in ratio_5m and "sum_over_time" not in ratio_5m


def _windows_read(expr: str) -> dict[str, set[int]]:
    """Per series name, the range windows (seconds) the expression reads it over."""
    ranges: dict[str, set[int]] = {}

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.MatrixSelector):
            name = node.vector_selector.name or ""
            ranges.setdefault(name, set()).add(int(node.range.total_seconds()))

    promql_parser.walk(_parse(expr), visit)
    return ranges


def _ratio_window(rule: dict[str, Any]) -> str | None:
    record = str(rule.get("record", ""))
    prefix = "slo:sli_error:ratio_rate"
    return record.removeprefix(prefix) if record.startswith(prefix) else None


def test_records_come_before_use_and_are_read_for_this_slo_only(slos: SloFile) -> None:
    for slo, group in zip(slos.slos, slo_rule_groups(slos, NAMESPACES), strict=True):
        recorded: set[str] = set()
        for rule in group["rules"]:
            for name, labels in _selectors(rule["expr"]):
                if name is not None and name.startswith("slo:"):
                    # Same group, earlier rule: read in the same evaluation, not one late.
                    assert name in recorded, (slo.name, rule.get("record"), name)
                    assert labels == ["slo"], (slo.name, name)
            if "record" in rule:
                recorded.add(rule["record"])
            # Every read of a record is narrowed to this SLO.
            assert rule["expr"].count("slo:") == rule["expr"].count(f'{{slo="{slo.name}"}}')


def test_alert_windows_rate_the_raw_series_over_exactly_their_window(slos: SloFile) -> None:
    records = {(slo.name, r["record"]): r["expr"] for slo, r in _rules(slos) if "record" in r}
    checked = set()
    for slo, rule in _rules(slos):
        window = _ratio_window(rule)
        if window is None or window == BASE_WINDOW or window not in slos.alert_windows():
            continue
        read = _windows_read(rule["expr"])
        assert not any(name.startswith("slo:") for name in read), (slo.name, window)
        assert set().union(*read.values()) == {duration_seconds(window)}, (slo.name, window)
        # The same SLI as the five-minute records, over a longer range.
        errors = records[(slo.name, ERROR_RATE_RECORD)]
        total = records[(slo.name, TOTAL_RATE_RECORD)]
        assert rule["expr"].replace(f"[{window}]", f"[{BASE_WINDOW}]") == (
            f"clamp_max(({errors}) / {total}, 1)"
        )
        checked.add(window)
    assert checked == {"30m", "1h", "2h", "6h", "1d", "3d"}


def test_the_slo_window_sums_the_five_minute_rates(slos: SloFile) -> None:
    checked = 0
    for slo, rule in _rules(slos):
        window = _ratio_window(rule)
        if window is None or window in slos.alert_windows():
            continue
        assert window == slo.window
        node = _parse(rule["expr"])
        assert isinstance(node, promql_parser.Call) and node.func.name == "clamp_max"
        ratio = node.args[0]
        assert isinstance(ratio, promql_parser.BinaryExpr) and str(ratio.op) == "/"
        for side, record_name in ((ratio.lhs, ERROR_RATE_RECORD), (ratio.rhs, TOTAL_RATE_RECORD)):
            assert isinstance(side, promql_parser.Call) and side.func.name == "sum_over_time"
            (matrix,) = side.args
            assert isinstance(matrix, promql_parser.MatrixSelector)
            assert matrix.vector_selector.name == record_name
            assert matrix.range.total_seconds() == duration_seconds(window), (slo.name, window)
        checked += 1
    assert checked == len(slos.slos)


# Alerts -------------------------------------------------------------------------------


def _constant(node: Any) -> float:
    """The value of a constant PromQL expression such as `(14.4 * 0.001)`."""
    if isinstance(node, promql_parser.ParenExpr):
        return _constant(node.expr)
    if isinstance(node, promql_parser.NumberLiteral):
        return float(node.val)
    assert isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "*", node
    return _constant(node.lhs) * _constant(node.rhs)


def _unparen(node: Any) -> Any:
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    return node


def _or_terms(node: Any) -> list[Any]:
    node = _unparen(node)
    if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "or":
        return _or_terms(node.lhs) + _or_terms(node.rhs)
    return [node]


def _comparison(node: Any, slo: Slo) -> tuple[str, float]:
    """`slo:sli_error:ratio_rate<w>{slo="<name>"} > <threshold>` → (w, threshold)."""
    node = _unparen(node)
    assert isinstance(node, promql_parser.BinaryExpr) and str(node.op) == ">"
    assert node.modifier is None  # a filter, not `bool`: the alert's value is the ratio
    selector = node.lhs
    assert isinstance(selector, promql_parser.VectorSelector)
    assert selector.name is not None and selector.name.startswith("slo:sli_error:ratio_rate")
    assert _matchers(selector) == {"slo": ("MatchOp.Equal", slo.name)}
    return selector.name.removeprefix("slo:sli_error:ratio_rate"), _constant(node.rhs)


def _window_pairs(expr: str, slo: Slo) -> list[tuple[str, str, float]]:
    """An alert expression as its (long window, short window, threshold) pairs."""
    pairs = []
    for term in _or_terms(_parse(expr)):
        assert isinstance(term, promql_parser.BinaryExpr) and str(term.op) == "and", term
        # Both sides carry only `slo`: matched on all labels, no on()/ignoring().
        assert term.modifier is None or term.modifier.matching is None
        (long, long_threshold), (short, short_threshold) = (
            _comparison(term.lhs, slo),
            _comparison(term.rhs, slo),
        )
        assert long_threshold == short_threshold
        assert duration_seconds(long) > duration_seconds(short)
        pairs.append((long, short, long_threshold))
    return pairs


def _expected_pairs(slo: Slo, severity: str) -> list[tuple[str, str, float]]:
    budget = float(slo.error_budget)
    return [(long, short, rate * budget) for long, short, rate in WORKBOOK_PAIRS[severity]]


def test_every_slo_has_a_page_and_a_ticket_alert_on_workbook_thresholds(
    slos: SloFile,
) -> None:
    alerts = _alerts(slos)
    assert len(alerts) == 2 * len(slos.slos)
    assert "TodoApiAvailabilityFastBurn" in alerts and "TodoApiAvailabilitySlowBurn" in alerts
    for name, (slo, rule) in alerts.items():
        severity = rule["labels"]["severity"]
        pairs = _window_pairs(rule["expr"], slo)
        expected = _expected_pairs(slo, severity)
        assert [p[:2] for p in pairs] == [e[:2] for e in expected], name
        for (_, _, got), (_, _, want) in zip(pairs, expected, strict=True):
            assert math.isclose(got, want), name
    # 99.9 % → page above 14.4 × 0.001 over 1 h and 5 min.
    slo, page = alerts["TodoApiAvailabilityFastBurn"]
    assert "> (14.4 * 0.001)" in page["expr"]
    assert _window_pairs(page["expr"], slo)[0][2] == pytest.approx(0.0144)


def test_thresholds_follow_a_changed_objective_and_policy(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["slos"][0]["objective"] = 99.5
        document["alerting"][0]["windows"][0]["burn_rate"] = 10
        document["alerting"][1]["windows"][1]["long"] = "4d"
        document["alerting"][1]["for"] = "1h"

    changed = _changed_file(tmp_path, change)
    alerts = _alerts(changed)
    slo, page = alerts["TodoApiAvailabilityFastBurn"]
    pairs = _window_pairs(page["expr"], slo)
    assert [p[:2] for p in pairs] == [("1h", "5m"), ("6h", "30m")]
    assert [p[2] for p in pairs] == pytest.approx([10 * 0.005, 6 * 0.005])
    assert "> (10 * 0.005)" in page["expr"]
    slo, ticket = alerts["TodoApiAvailabilitySlowBurn"]
    assert [p[:2] for p in _window_pairs(ticket["expr"], slo)] == [("1d", "2h"), ("4d", "6h")]
    assert ticket["for"] == "1h"
    # The new window is recorded (and the old 3d one no longer), for every SLO.
    assert changed.windows() == ["5m", "30m", "1h", "2h", "6h", "1d", "4d", "30d"]
    records = {rule.get("record") for _, rule in _rules(changed)}
    assert ratio_record("4d") in records and ratio_record("3d") not in records
    # The other SLOs keep their budget.
    slo, latency = alerts["TodoApiLatencyFastBurn"]
    assert _window_pairs(latency["expr"], slo)[0][2] == pytest.approx(10 * 0.01)


def test_alerts_have_the_labels_for_and_annotations_routing_needs(slos: SloFile) -> None:
    policies = {policy.severity: policy for policy in slos.alerting}
    for name, (slo, rule) in _alerts(slos).items():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"] == {"severity": rule["labels"]["severity"], "slo": slo.name}
        severity = rule["labels"]["severity"]
        assert severity in SEVERITIES, name
        policy = policies[severity]
        assert name == alert_name(slo, policy) == f"Todo{slo.camel_name}{policy.alert}"
        # `for` is shorter than the short windows: the short window already smooths, and
        # a longer `for` would delay the page beyond what the workbook's detection times say.
        assert re.fullmatch(r"[0-9]+[smh]", rule["for"]), name
        assert duration_seconds(rule["for"]) < min(
            duration_seconds(w.short) for w in policy.windows
        )
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert all(isinstance(v, str) and v.strip() for v in annotations.values()), name
        # Go templates: only the alert's own value is interpolated.
        templates = re.findall(r"\{\{(.*?)\}\}", " ".join(annotations.values()))
        assert templates == [" $value | humanizePercentage "], name
        assert annotations["description"].count("{{") == annotations["description"].count("}}")
        assert slo.description in annotations["description"]
    assert {policy.for_ for policy in slos.alerting} == {"2m", "15m"}


def _github_anchors(markdown: str) -> list[str]:
    """The anchors GitHub gives the headings of a Markdown file (code blocks skipped)."""
    anchors: list[str] = []
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        match = re.match(r"#{1,6} (.+)", line)
        if match and not in_code:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchor = text.replace(" ", "-")
            count = anchors.count(anchor)
            anchors.append(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def test_every_runbook_url_is_a_heading_of_the_operations_doc(slos: SloFile) -> None:
    anchors = _github_anchors(OPERATIONS_DOC.read_text())
    assert "reading-the-dashboards-and-alerts" in anchors  # the slugger works
    urls = {rule["annotations"]["runbook_url"] for _, rule in _alerts(slos).values()}
    assert len(urls) == len(slos.slos)
    for url in urls:
        path, _, anchor = url.partition("#")
        assert (PROJECT_ROOT / path) == OPERATIONS_DOC
        assert anchor in anchors, f"{url}: no such heading in {OPERATIONS_DOC.name}"


def test_threshold_alerts_on_the_api_slis_metrics_do_not_page() -> None:
    """The page for what users feel of the API is the burn-rate alert; the threshold
    alerts on the same metrics stay as warnings that name the service."""
    api_metrics = {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_count",
    }
    severities = {
        rule["alert"]: rule["labels"]["severity"]
        for group in load_alert_rules(NAMESPACES)
        for rule in group["rules"]
        if {name for name, _ in _selectors(rule["expr"])} & api_metrics
    }
    assert severities == {"TodoApiHighErrorRatio": "warning", "TodoApiHighLatencyP95": "warning"}


# The dashboard ------------------------------------------------------------------------


def test_the_dashboard_file_is_generated_from_the_slo_file(slos: SloFile) -> None:
    assert slo_dashboard.DASHBOARD_FILE.read_text() == slo_dashboard.render(slos), (
        "run: uv run python -m infra.components.observability.slo_dashboard"
    )


def _panel_queries(dashboard: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Per row (SLO) title, each panel's title and its queries."""
    rows: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = rows.setdefault(panel["title"], {})
            continue
        current[panel["title"]] = [target["expr"] for target in panel["targets"]]
    return rows


def test_the_dashboard_shows_sli_budget_and_burn_rates_per_slo(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["slos"][3]["objective"] = 99.5

    for slos in (load_slos(), _changed_file(tmp_path, change)):
        rows = _panel_queries(slo_dashboard.build_dashboard(slos))
        assert len(rows) == len(slos.slos)
        for slo, (title, panels) in zip(slos.slos, rows.items(), strict=True):
            assert title.startswith(slo.title)
            matcher = f'{{slo="{slo.name}"}}'
            budget = float(slo.error_budget)
            assert panels["SLI (30d)"] == [f"1 - {ratio_record('30d')}{matcher}"]
            (left,) = panels["Error budget left (30d)"]
            divisor = _parse(left).rhs.rhs  # 1 - (ratio / budget)
            assert math.isclose(_constant(divisor), budget), left
            burn = panels["Burn rate (× the sustainable rate)"]
            assert burn == [
                f"{ratio_record(window)}{matcher} / {_constant(divisor):g}"
                for window in ("1h", "6h", "1d", "3d")
            ]
    # Threshold lines at the alerts' burn rates.
    dashboard = slo_dashboard.build_dashboard(load_slos())
    (burn_panel, *_) = (p for p in dashboard["panels"] if p["title"].startswith("Burn rate"))
    steps = burn_panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 1.0, 3.0, 6.0, 14.4]


# The program's PrometheusRule ---------------------------------------------------------


@pytest.mark.parametrize("stack", ["minikube", "staging", "prod"])
def test_every_stacks_prometheus_rule_holds_the_slo_groups(stack: str) -> None:
    run = plan(stack)
    rule = one(run, "observability-alerts").raw_inputs
    groups = rule["spec"]["groups"]
    names = [group["name"] for group in groups]
    assert {"todo-api", "todo-events", "todo-pods"} <= set(names)
    slos = load_slos()
    assert [n for n in names if n.startswith("todo-slo-")] == [
        f"todo-slo-{slo.name}" for slo in slos.slos
    ]
    # Exactly the generated rules, for the namespaces the threshold alerts watch too.
    pods = next(r for g in groups for r in g["rules"] if r.get("alert") == "TodoPodsNotReady")
    match = re.search(r'namespace=~"([^"]+)"', pods["expr"])
    assert match
    generated = slo_rule_groups(slos, match.group(1).split("|"))
    assert [g for g in groups if g["name"].startswith("todo-slo-")] == generated
    assert f'namespace=~"{match.group(1)}"' in generated[0]["rules"][0]["expr"]
    assert validate_custom(rule) == []
