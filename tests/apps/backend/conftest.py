"""Backend fixtures: the real app on a fresh database, and tokens for test users."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import psycopg
import pytest

with warnings.catch_warnings():
    # Starlette 1.x nudges TestClient users towards httpx2; FastAPI documents httpx.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from apps.backend.main import create_app
from apps.backend.settings import BackendSettings

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!"
APP_TOKEN = "test-app-token"


def make_token(sub: str, *, secret: str = JWT_SECRET, ttl: int = 3600, **claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + ttl, **claims}, secret, "HS256")


def bearer(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub)}"}


@pytest.fixture
def backend_settings(database_url: str) -> BackendSettings:
    return BackendSettings(
        database_url=database_url,
        auth_jwt_secret=JWT_SECRET,
        app_api_token=APP_TOKEN,
        app_env="test",
        log_level="WARNING",
        db_pool_size=4,
        # No sidecar in these tests; tests/apps/shared/test_readiness.py runs with one.
        dapr_sidecar_required=False,
    )


@pytest.fixture
def client(backend_settings: BackendSettings) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a bug must show up as the 500 a client would get.
    with TestClient(create_app(backend_settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def alice() -> dict[str, str]:
    return bearer("alice")


@pytest.fixture
def bob() -> dict[str, str]:
    return bearer("bob")


@pytest.fixture
def db(database_url: str) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """Run a query against the test database and return all rows (for assertions)."""
    with psycopg.connect(database_url, autocommit=True) as connection:

        def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
            return connection.execute(sql, params).fetchall()

        yield query
