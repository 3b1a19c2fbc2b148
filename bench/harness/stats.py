"""Figures of a closed-loop load run: request rate and latency percentiles.

A scenario runs in several phases (the API and its baseline alternate, so drift in the
machine's load hits both alike); `Sample.merge` pools the phases of one side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ascending `ordered`: the smallest value that at least
    `fraction` of the values do not exceed (NaN when there are none)."""
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    if not ordered:
        return math.nan
    rank = math.ceil(fraction * len(ordered) - 1e-9)  # 1-based; tolerate float noise
    return ordered[max(rank, 1) - 1]


@dataclass
class Sample:
    """What one side (API or baseline) did in one scenario."""

    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    seconds: float = 0.0  # wall time the workers ran
    errors: int = 0
    notes: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used, by process

    def cpu_ms_per_request(self, process: str) -> float:
        if process not in self.cpu or not self.latencies:
            return math.nan
        return self.cpu[process] / len(self.latencies) * 1000

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        """Successful requests per second of wall time."""
        return self.requests / self.seconds if self.seconds > 0 else math.nan

    def latency_ms(self, fraction: float) -> float:
        return percentile(sorted(self.latencies), fraction) * 1000

    @classmethod
    def merge(cls, parts: Iterable[Sample]) -> Sample:
        merged = cls()
        for part in parts:
            merged.latencies.extend(part.latencies)
            merged.seconds += part.seconds
            merged.errors += part.errors
            merged.notes.extend(part.notes)
            for process, seconds in part.cpu.items():
                merged.cpu[process] = merged.cpu.get(process, 0.0) + seconds
        return merged


def ratio(value: float, base: float) -> float:
    """`value / base`, NaN when the base is zero or missing."""
    if base == 0 or math.isnan(base) or math.isnan(value):
        return math.nan
    return value / base
