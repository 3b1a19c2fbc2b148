"""The notification service's configuration, read once from the environment at startup."""

from __future__ import annotations

from pydantic import Field

from apps.shared.settings import AuthSettings


class NotificationServiceSettings(AuthSettings):
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(
        default=6, ge=1, le=50, description="attempts before a webhook delivery is failed"
    )
    webhook_backoff_base_seconds: float = Field(default=2.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=300.0, gt=0)
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="allow webhooks to loopback/private addresses (local runs and tests only)",
    )
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    webhook_secret_rotation_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description="how long a webhook secret replaced by a rotation still signs deliveries",
    )
