"""What the backend's routes depend on, as annotated types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from apps.backend.settings import BackendSettings
from apps.shared.auth import CurrentUser
from apps.shared.db import SessionDep

__all__ = ["CurrentUser", "SessionDep", "SettingsDep"]


async def _settings(request: Request) -> BackendSettings:
    # Async though it never awaits: FastAPI runs a plain `def` dependency on a worker
    # thread, a hop on every request for reading an attribute.
    settings: BackendSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[BackendSettings, Depends(_settings)]
"""The settings the lifespan loaded (`app.state.settings`)."""
