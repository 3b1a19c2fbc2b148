"""`todo:dapr`: the Dapr control plane."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    StringConstraints,
)

from infra.settings.types import Resources, SettingsModel


class DaprSettings(SettingsModel):
    """The Dapr control plane and the sidecars."""

    ha: bool = False
    """Three replicas of every control-plane service."""
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    tracing_sampling_rate: Annotated[str, StringConstraints(pattern=r"^(0(\.[0-9]+)?|1)$")] = "0"
    otel_endpoint: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")] | None
    ) = None
    """OTLP/gRPC collector (`host:port`); traces are only propagated when unset."""
    sidecar: Resources = Resources(
        cpu_request="50m", memory_request="64Mi", cpu_limit="500m", memory_limit="256Mi"
    )
