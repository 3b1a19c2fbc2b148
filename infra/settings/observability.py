"""`todo:observability`: Prometheus, Grafana and Alertmanager; traces (an OpenTelemetry
Collector and Tempo) and logs (Loki and Alloy)."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    model_validator,
)

from infra.settings.types import MemoryQuantity, Resources, SettingsModel

PrometheusDuration = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(h|d|w|y)$")]
PrometheusByteSize = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(M|G|T)i?B$")]
StorageClassName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
]
_BINARY_UNITS = {"M": 2**20, "G": 2**30, "T": 2**40}
HoursDuration = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*h$")]
"""A whole number of hours (`72h`): what Tempo's block retention and Loki's retention
period both read as a Go/Prometheus duration."""
_MIN_RETENTION_HOURS = 24


def _at_least_a_day(duration: str) -> str:
    if int(duration.removesuffix("h")) < _MIN_RETENTION_HOURS:
        raise ValueError(
            f"must be at least {_MIN_RETENTION_HOURS}h: a shorter window loses the "
            "traces and logs of an incident before anyone looks"
        )
    return duration


RetentionHours = Annotated[HoursDuration, AfterValidator(_at_least_a_day)]
"""How long traces or logs are kept: whole hours, at least a day."""


class TracingSettings(SettingsModel):
    """`todo:observability.tracing`: the OpenTelemetry Collector and Grafana Tempo.

    The apps and the Dapr sidecars send OTLP to the collector, which exports to Tempo. The
    sampling ratio is `todo:dapr.tracingSamplingRate`, for the sidecars and the apps alike.
    """

    enabled: bool = True
    """Deploy the collector and Tempo, and point the apps and sidecars at them."""
    retention: RetentionHours = "24h"
    """How long Tempo keeps traces (`72h`); at least 24h."""
    storage_size: MemoryQuantity | None = None
    """Size of Tempo's volume (`10Gi`); unset keeps traces in an emptyDir."""
    collector_replicas: int = Field(default=1, ge=1, le=5)
    """Collector pods (stateless); two keep spans flowing while one restarts."""
    collector: Resources = Resources(
        cpu_request="50m", memory_request="64Mi", cpu_limit="500m", memory_limit="256Mi"
    )
    tempo: Resources = Resources(
        cpu_request="50m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi"
    )


class LogsSettings(SettingsModel):
    """`todo:observability.logs`: central logs, Grafana Loki fed by Grafana Alloy.

    Loki runs as one binary on a volume (or an emptyDir); Alloy runs on every node and
    ships the logs of that node's pods, read through the API server (no host paths, so
    it passes the `restricted` Pod Security profile). Off unless a stack turns it on.
    """

    enabled: bool = False
    """Deploy Loki and Alloy, and give Grafana the Loki data source."""
    retention: RetentionHours = "72h"
    """How long Loki keeps logs (`168h`); at least 24h."""
    storage_size: MemoryQuantity | None = None
    """Size of Loki's volume (`10Gi`); unset keeps logs in an emptyDir."""
    loki: Resources = Resources(
        cpu_request="50m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi"
    )
    alloy: Resources = Resources(
        cpu_request="20m", memory_request="64Mi", cpu_limit="250m", memory_limit="192Mi"
    )
    """Per node: Alloy runs on every node."""


def _byte_size(value: str) -> int:
    """`18GiB`/`18GB` (Prometheus: powers of 2) or a Kubernetes `20Gi`, in bytes."""
    match = re.fullmatch(r"([0-9]+)([MGT])(i|iB|B)?", value)
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    return int(match.group(1)) * _BINARY_UNITS[match.group(2)]


class ObservabilitySettings(SettingsModel):
    """kube-prometheus-stack: how long and where Prometheus keeps data, and its footprint.

    The defaults suit minikube (two days in an emptyDir, no Alertmanager, small requests);
    cloud stacks set a volume, a longer retention and Alertmanager in their stack file.
    """

    retention: PrometheusDuration = "2d"
    """How long Prometheus keeps samples (`2d`, `15d`, `4w`)."""
    retention_size: PrometheusByteSize | None = None
    """Size cap of the TSDB (`18GiB`); at most 90% of storageSize, which must hold the WAL too."""
    storage_size: MemoryQuantity | None = None
    """Size of Prometheus's volume (`20Gi`); unset keeps its data in an emptyDir."""
    storage_class: StorageClassName | None = None
    """StorageClass of that volume (`do-block-storage`); unset for the cluster default."""
    alertmanager: bool = False
    """Run Alertmanager (the alert rules are evaluated either way)."""
    prometheus: Resources = Resources(
        cpu_request="100m", memory_request="384Mi", cpu_limit="1", memory_limit="1Gi"
    )
    grafana: Resources = Resources(
        cpu_request="50m", memory_request="160Mi", cpu_limit="500m", memory_limit="384Mi"
    )
    tracing: TracingSettings = TracingSettings()
    """Traces: the collector and Tempo (`todo:observability.tracing`)."""
    logs: LogsSettings = LogsSettings()
    """Central logs: Loki and Alloy (`todo:observability.logs`)."""

    @model_validator(mode="after")
    def _volume(self) -> Self:
        if self.storage_class is not None and self.storage_size is None:
            raise ValueError(
                f"storageClass ({self.storage_class!r}) needs storageSize: without it "
                "Prometheus keeps its data in an emptyDir"
            )
        if self.retention_size is not None and self.storage_size is not None:
            if _byte_size(self.retention_size) * 10 > _byte_size(self.storage_size) * 9:
                raise ValueError(
                    f"retentionSize ({self.retention_size}) must be at most 90% of "
                    f"storageSize ({self.storage_size}): the volume also holds the WAL"
                )
        return self
