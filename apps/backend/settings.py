"""The backend's configuration, read once from the environment at startup."""

from __future__ import annotations

from apps.shared.settings import AuthSettings


class BackendSettings(AuthSettings):
    """Database, logging, app token (ServiceSettings) and bearer-token verification."""
