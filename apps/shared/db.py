"""Database access: URL mapping, the async engine, and the request-scoped session.

Kubernetes Secrets and `todo-local` hand out plain `postgresql://` URLs; SQLAlchemy
needs the driver named, and this project's driver is psycopg 3 (async on the request
path, sync for Alembic and tooling).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_PLAIN_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}


def driver_url(database_url: str) -> str:
    """Map `postgresql://` (or `postgres://`) to SQLAlchemy's psycopg 3 dialect URL."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    if url.drivername not in _PLAIN_SCHEMES:
        raise ValueError(f"unsupported database URL scheme {url.drivername!r}")
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_db_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The service's async engine. Sessions pin the time zone to UTC for stable output."""
    return create_async_engine(
        driver_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,  # a broken connection surfaces as an error and is replaced
        connect_args={"options": "-c timezone=UTC"},
    )


def create_sync_engine(database_url: str) -> Engine:
    """A sync engine for Alembic, scripts and tests."""
    return create_engine(driver_url(database_url), connect_args={"options": "-c timezone=UTC"})


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: routes serialise objects after committing them.
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def database_reachable(engine: AsyncEngine) -> bool:
    """True when a trivial query succeeds (readiness probes)."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready"; the probe reports, never raises
        return False
    return True


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, from the factory the app's lifespan put on `app.state`."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
