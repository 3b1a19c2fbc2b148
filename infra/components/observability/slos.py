"""The SLOs (infra/observability/slos.yaml) as Prometheus recording rules and burn-rate alerts.

Per SLO one rule group, `todo-slo-<name>`, evaluated top to bottom (Prometheus evaluates a
group's rules in order, so every rule reads records of the same evaluation):

1. `slo:sli_error:rate5m` and `slo:sli_total:rate5m`: bad and all events per second
   over 5 minutes, summed over the apps' series.
2. `slo:sli_error:ratio_rate<w>`, the error ratio over `w`, for every window the alerting
   policy uses (5m … 3d), from the raw series over `w`: exact, as the SRE workbook's
   detection times assume. Summing the 5-minute records instead would smear every window
   by 5 minutes and delay a page by about half of that.
3. The same for the SLOs' own windows (30d), which only the dashboard reads, as
   sum_over_time of the two 5-minute rates: a rate over 30 days of raw bucket series at
   every evaluation would cost far more than two series' samples. Summing rates rather
   than averaging 5-minute ratios weights each moment by its traffic.
4. The alerts: one per severity of the policy (page, ticket), each the `or` of its window
   pairs, a pair firing when both its long and short error ratios exceed
   burn_rate × error budget.

Label `slo` carries the SLO's name on every record and alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from infra.components.observability.datafiles import DATA_DIR, fill_namespaces

SLOS_FILE = DATA_DIR / "slos.yaml"
BASE_WINDOW = "5m"
"""The rate window of the two per-SLO event rates, which the SLO windows' ratios sum."""
ERROR_RATE_RECORD = f"slo:sli_error:rate{BASE_WINDOW}"
TOTAL_RATE_RECORD = f"slo:sli_total:rate{BASE_WINDOW}"
RUNBOOK_ANCHOR_PREFIX = "slo-"
"""An SLO's runbook is the docs heading `SLO: <name>`, whose anchor is `slo-<name>`."""

Duration = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*[mhdw]$")]
"""A Prometheus duration in one unit (`5m`, `1h`, `3d`): the unit names the record."""
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
Selector = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*\{.*\}$")]
"""One series selector with its matchers; the tests parse it with a real PromQL parser."""
SloName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")]


def duration_seconds(duration: str) -> int:
    """Seconds of a one-unit Prometheus duration (`30m` → 1800)."""
    return int(duration[:-1]) * _UNIT_SECONDS[duration[-1]]


def promql_number(value: Decimal) -> str:
    """A Decimal as PromQL and people write it: `0.001`, `14.4`, `6` (never `1E-3`)."""
    return format(value.normalize(), "f")


def _lasting(seconds: float) -> str:
    """A duration for people: `50h`, `5d`."""
    hours = seconds / 3600
    return f"{hours:g}h" if hours < 72 else f"{hours / 24:g}d"


class _Model(BaseModel):
    # The file is written by hand: a misspelt key is an error, not a silent default.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Sli(_Model):
    """Events as series selectors: bad = total - good (if given) + bad (if given)."""

    total: Selector
    good: Selector | None = None
    bad: Selector | None = None

    @model_validator(mode="after")
    def _bad_events_defined(self) -> Self:
        if self.good is None and self.bad is None:
            raise ValueError("an SLI needs `good` or `bad` next to `total`")
        return self


class Slo(_Model):
    """One objective: the share of good events over a rolling window."""

    name: SloName
    title: str
    objective: Annotated[Decimal, Field(gt=0, lt=100)]
    """Percent of events that must be good."""
    window: Duration
    description: str
    sli: Sli

    @model_validator(mode="after")
    def _plain_text(self) -> Self:
        # Title and description end up in alert annotations, which are Go templates.
        for text in (self.title, self.description):
            if "{{" in text or "}}" in text:
                raise ValueError(f"{self.name}: title and description must not hold {{{{ }}}}")
        return self

    @property
    def error_budget(self) -> Decimal:
        """The share of events allowed to be bad (99.9 → 0.001), exact."""
        return (Decimal(100) - self.objective) / Decimal(100)

    @property
    def camel_name(self) -> str:
        """`api-availability` → `ApiAvailability` (for alert names)."""
        return "".join(part.capitalize() for part in self.name.split("-"))


class WindowPair(_Model):
    """Fire when the error ratio over both windows exceeds burn_rate × the budget."""

    long: Duration
    short: Duration
    burn_rate: Annotated[Decimal, Field(gt=0)]

    @model_validator(mode="after")
    def _short_is_shorter(self) -> Self:
        if duration_seconds(self.short) >= duration_seconds(self.long):
            raise ValueError(f"short window {self.short} must be shorter than {self.long}")
        return self


class AlertPolicy(_Model):
    """One alert per SLO: its severity, name suffix, `for` and window pairs."""

    severity: Annotated[str, StringConstraints(pattern=r"^[a-z]+$")]
    alert: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]*$")]
    for_: Annotated[Duration, Field(alias="for")]
    windows: Annotated[list[WindowPair], Field(min_length=1)]


class SloFile(_Model):
    """The whole file: where runbooks are, the alerting policy, the SLOs."""

    runbooks: str
    alerting: Annotated[list[AlertPolicy], Field(min_length=1)]
    slos: Annotated[list[Slo], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for values, what in (
            ([slo.name for slo in self.slos], "SLO names"),
            ([policy.severity for policy in self.alerting], "severities"),
            ([policy.alert for policy in self.alerting], "alert names"),
        ):
            if len(values) != len(set(values)):
                raise ValueError(f"{what} must be unique: {values}")
        by_seconds: dict[int, str] = {}
        for window in self.windows():
            if duration_seconds(window) < duration_seconds(BASE_WINDOW):
                raise ValueError(f"window {window} is shorter than the base {BASE_WINDOW}")
            other = by_seconds.setdefault(duration_seconds(window), window)
            if other != window:
                raise ValueError(f"windows {other} and {window} are the same: write one")
        longest = max(duration_seconds(pair.long) for pair in self.pairs())
        for slo in self.slos:
            if duration_seconds(slo.window) < longest:
                raise ValueError(f"{slo.name}: window {slo.window} is shorter than an alert's")
        return self

    def pairs(self) -> list[WindowPair]:
        """Every window pair of every severity."""
        return [pair for policy in self.alerting for pair in policy.windows]

    def burn_windows(self) -> list[str]:
        """The alerts' long windows, shortest first: the burn rates worth watching."""
        return _by_length({pair.long for pair in self.pairs()})

    def alert_windows(self) -> list[str]:
        """The windows the alerts read (and the base one), shortest first."""
        windows = {BASE_WINDOW}
        for pair in self.pairs():
            windows |= {pair.long, pair.short}
        return _by_length(windows)

    def windows(self) -> list[str]:
        """Every window recorded as an error ratio, shortest first."""
        return _by_length(set(self.alert_windows()) | {slo.window for slo in self.slos})

    def runbook_url(self, slo: Slo) -> str:
        return f"{self.runbooks}#{RUNBOOK_ANCHOR_PREFIX}{slo.name}"


def _by_length(windows: set[str]) -> list[str]:
    return sorted(windows, key=duration_seconds)


def ratio_record(window: str) -> str:
    """The recorded error ratio over `window`."""
    return f"slo:sli_error:ratio_rate{window}"


def load_slos(path: Path = SLOS_FILE) -> SloFile:
    """The SLO file, validated."""
    return SloFile.model_validate(yaml.safe_load(path.read_text()))


def _rate(selector: str, window: str) -> str:
    return f"sum(rate({selector}[{window}]))"


def _error_rate(sli: Sli, window: str) -> str:
    """Bad events per second. A `bad` selector matches nothing until the first bad event
    (counters with that label value appear only then): `or vector(0)` keeps the result."""
    parts = []
    if sli.good is not None:
        parts.append(f"({_rate(sli.total, window)} - {_rate(sli.good, window)})")
    if sli.bad is not None:
        parts.append(f"({_rate(sli.bad, window)} or vector(0))")
    return " + ".join(parts)


def _ratio(slos: SloFile, slo: Slo, sli: Sli, window: str) -> str:
    matcher = f'{{slo="{slo.name}"}}'
    if window == BASE_WINDOW:  # the two records above are exactly its rates
        ratio = f"{ERROR_RATE_RECORD}{matcher} / {TOTAL_RATE_RECORD}{matcher}"
    elif window in slos.alert_windows():
        ratio = f"({_error_rate(sli, window)}) / {_rate(sli.total, window)}"
    else:
        ratio = (
            f"sum_over_time({ERROR_RATE_RECORD}{matcher}[{window}])"
            f" / sum_over_time({TOTAL_RATE_RECORD}{matcher}[{window}])"
        )
    # Capped at 1: an SLI with both `good` and `bad` may count an event twice.
    return f"clamp_max({ratio}, 1)"


def threshold(slo: Slo, pair: WindowPair) -> str:
    """The error-ratio threshold of a window pair, as PromQL: `14.4 * 0.001`."""
    return f"{promql_number(pair.burn_rate)} * {promql_number(slo.error_budget)}"


def alert_name(slo: Slo, policy: AlertPolicy) -> str:
    return f"Todo{slo.camel_name}{policy.alert}"


def _alert(slos: SloFile, slo: Slo, policy: AlertPolicy) -> dict[str, Any]:
    matcher = f'{{slo="{slo.name}"}}'
    conditions = [
        "(\n"
        f"  {ratio_record(pair.long)}{matcher} > ({threshold(slo, pair)})\n"
        "  and\n"
        f"  {ratio_record(pair.short)}{matcher} > ({threshold(slo, pair)})\n"
        ")"
        for pair in policy.windows
    ]
    budget = slo.error_budget
    window_seconds = duration_seconds(slo.window)
    slowest = min(pair.burn_rate for pair in policy.windows)
    explained = ", or ".join(
        f"{promql_number(pair.burn_rate * budget * 100)}% over both {pair.long} and {pair.short} "
        f"({promql_number(pair.burn_rate)}× the budget, which would then last "
        f"{_lasting(window_seconds / float(pair.burn_rate))})"
        for pair in policy.windows
    )
    return {
        "alert": alert_name(slo, policy),
        "expr": "\nor\n".join(conditions) + "\n",
        "for": policy.for_,
        "labels": {"severity": policy.severity, "slo": slo.name},
        "annotations": {
            "summary": (
                f"{slo.title}: the {slo.window} error budget burns at "
                f"{promql_number(slowest)}× the sustainable rate or faster"
            ),
            "description": (
                f"{slo.description} Objective {promql_number(slo.objective)}% over {slo.window} "
                f"(error budget {promql_number(budget * 100)}%). Error ratio over the long window: "
                "{{ $value | humanizePercentage }}. Fires when the error ratio exceeds "
                f"{explained}."
            ),
            "runbook_url": slos.runbook_url(slo),
        },
    }


def _record(slo: Slo, name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr, "labels": {"slo": slo.name}}


def _group(slos: SloFile, slo: Slo, apps_namespaces: Sequence[str]) -> dict[str, Any]:
    sli = slo.sli.model_copy(
        update={
            key: fill_namespaces(value, apps_namespaces)
            for key, value in slo.sli.model_dump().items()
            if value is not None
        }
    )
    rules: list[dict[str, Any]] = [
        _record(slo, ERROR_RATE_RECORD, _error_rate(sli, BASE_WINDOW)),
        _record(slo, TOTAL_RATE_RECORD, _rate(sli.total, BASE_WINDOW)),
    ]
    rules += [
        _record(slo, ratio_record(window), _ratio(slos, slo, sli, window))
        for window in slos.windows()
    ]
    rules += [_alert(slos, slo, policy) for policy in slos.alerting]
    return {"name": f"todo-slo-{slo.name}", "rules": rules}


def slo_rule_groups(slos: SloFile, apps_namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """One rule group per SLO: its event rates, error ratios and burn-rate alerts."""
    return [_group(slos, slo, apps_namespaces) for slo in slos.slos]


def load_slo_rules(apps_namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """The SLO rule groups of the Todo PrometheusRule, from the committed SLO file."""
    return slo_rule_groups(load_slos(), apps_namespaces)
