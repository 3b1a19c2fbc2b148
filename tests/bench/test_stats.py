"""The benchmark's statistics: nearest-rank percentiles, pooled phases, ratios."""

from __future__ import annotations

import math

import pytest

from bench.harness.stats import Sample, percentile, ratio


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.001) == 1


def test_percentile_of_few_values_is_one_of_them() -> None:
    assert percentile([7.0], 0.95) == 7
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2
    assert percentile([1.0, 2.0, 3.0], 0.95) == 3
    assert math.isnan(percentile([], 0.5))


def test_fraction_outside_the_range_is_refused() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_merged_phases_pool_latencies_time_errors_and_cpu() -> None:
    first = Sample(latencies=[0.001, 0.003], seconds=1.0, errors=1, cpu={"server": 0.5})
    second = Sample(latencies=[0.002], seconds=2.0, notes=["x"], cpu={"server": 0.25})
    merged = Sample.merge([first, second])
    assert merged.requests == 3 and merged.seconds == 3.0 and merged.errors == 1
    assert merged.rate == 1.0
    assert merged.latency_ms(0.5) == pytest.approx(2.0)
    assert merged.cpu_ms_per_request("server") == pytest.approx(250.0)
    assert math.isnan(merged.cpu_ms_per_request("postgres"))
    assert merged.notes == ["x"]


def test_empty_sample_and_ratios() -> None:
    empty = Sample()
    assert math.isnan(empty.rate) and math.isnan(empty.latency_ms(0.95))
    assert ratio(1.0, 4.0) == 0.25
    assert math.isnan(ratio(1.0, 0.0)) and math.isnan(ratio(math.nan, 1.0))
