"""The Dapr → app token check for subscription, binding and internal routes.

Dapr sends `APP_API_TOKEN` in the `dapr-api-token` header. A service without a
configured token refuses these calls rather than leaving them open.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from apps.shared.errors import ApiError

APP_TOKEN_HEADER = "dapr-api-token"
_LOC: list[str | int] = ["header", APP_TOKEN_HEADER]


def check_app_token(presented: str | None, expected: str | None) -> None:
    """Raise a 401 `ApiError` unless `presented` equals the configured token."""
    if not expected:
        raise ApiError(401, _LOC, "APP_API_TOKEN is not configured", "app_token_unconfigured")
    if presented is None:
        raise ApiError(401, _LOC, "missing app token", "app_token_missing")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ApiError(401, _LOC, "app token does not match", "app_token_invalid")


async def require_app_token(request: Request) -> None:
    """FastAPI dependency; the expected token is `app.state.app_api_token` (str or None).

    Async though it never awaits: FastAPI runs a plain `def` dependency on a worker
    thread, a hop (and two thread wake-ups) on every delivery, invocation and scan for
    what is a string comparison.
    """
    expected: str | None = getattr(request.app.state, "app_api_token", None)
    check_app_token(request.headers.get(APP_TOKEN_HEADER), expected)
