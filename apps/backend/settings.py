"""The backend's configuration, read once from the environment at startup.

Besides what every API service reads (ServiceSettings, AuthSettings), the outbox relay
and the reminder scan have settings of their own, each group under its own prefix
(`OUTBOX_RELAY_*`, `REMINDER_SCAN_*`); defaults suit production.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from apps.shared.settings import AuthSettings, SettingsGroup


class RelaySettings(SettingsGroup):
    """Tuning of the outbox relay, from `OUTBOX_RELAY_*` variables."""

    model_config = SettingsConfigDict(env_prefix="OUTBOX_RELAY_")

    enabled: bool = True
    # A round is a transaction and a bulk call per `bulk_max_entries`: large rounds keep
    # a burst (50,000 reminders due in a minute) from queueing behind round trips.
    batch_size: int = Field(default=1000, ge=1, le=5000, description="keys claimed per round")
    max_rows: int = Field(default=2000, ge=1, le=20000, description="rows published per round")
    concurrency: int = Field(
        default=32, ge=1, le=256, description="publish calls in flight at once"
    )
    bulk_publish: bool = Field(default=True, description="Dapr bulk publish, a call per wave")
    bulk_max_entries: int = Field(default=500, ge=1, le=1000, description="events per bulk call")
    poll_seconds: float = Field(default=1.0, gt=0, description="poll when no NOTIFY arrives")
    # Every committed change wakes the relay (NOTIFY); under load a round per wake-up
    # publishes a row or two at the cost of a whole round (a transaction, a claim, a
    # bulk call). Spacing rounds by this much gathers what arrives meanwhile into one;
    # a change arriving after a quiet spell waits for nothing.
    round_interval_seconds: float = Field(
        default=0.025, ge=0, le=1.0, description="least time between two rounds' starts"
    )
    backoff_base_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    gauge_seconds: float = Field(default=5.0, gt=0, description="how often gauges refresh")
    retention_hours: float = Field(default=72.0, ge=0, description="keep published rows")


class ReminderScanSettings(SettingsGroup):
    """How much one cron-triggered scan claims, from `REMINDER_SCAN_*` variables."""

    model_config = SettingsConfigDict(env_prefix="REMINDER_SCAN_")

    batch_size: int = Field(default=500, ge=1, le=5000, description="reminders per transaction")
    max_batches: int = Field(default=40, ge=1, le=1000, description="batches per scan call")


class BackendSettings(AuthSettings):
    """Database, logging, app token (ServiceSettings), bearer-token verification, and the
    groups of the relay and the scan (read with the rest, so a bad value stops startup
    with the same message naming the variable)."""

    outbox_relay: RelaySettings = Field(default_factory=RelaySettings)
    reminder_scan: ReminderScanSettings = Field(default_factory=ReminderScanSettings)
