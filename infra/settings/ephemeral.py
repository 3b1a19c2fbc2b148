"""`todo:ephemeral`: where a `dev-<name>`/`pr-<n>` stack lives and when it may be reaped."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    StringConstraints,
    field_validator,
)

from infra.settings.types import SettingsModel


class EphemeralSettings(SettingsModel):
    """Where an ephemeral stack lives and when it may be reaped."""

    base_stack: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    ]
    """Fully qualified base stack (`<org>/todo/staging`) whose cluster and database are used."""
    owner: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    expires_at: datetime
    """When `todo-infra ephemeral reap` may destroy the stack (RFC 3339, with offset)."""

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-01-04T18:00:00Z")
        return value
