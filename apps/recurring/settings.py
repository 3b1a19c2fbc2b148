"""The recurring service's configuration, read once from the environment at startup."""

from __future__ import annotations

from pydantic import Field

from apps.contracts.services import AppId
from apps.shared.settings import AuthSettings


class RecurringSettings(AuthSettings):
    backend_app_id: str = Field(
        default=AppId.BACKEND.value,
        description="Dapr app id the next occurrences are created through",
    )
    rule_budget_seconds: float = Field(
        default=2.0, gt=0, le=30, description="CPU time one rule evaluation may take"
    )
