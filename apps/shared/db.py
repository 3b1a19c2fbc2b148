"""Database access: URL mapping, the async engine, and the request-scoped session.

Kubernetes Secrets and `todo-local` hand out plain `postgresql://` URLs; SQLAlchemy
needs the driver named, and this project's driver is psycopg 3 (async on the request
path, sync for Alembic and tooling).

Behind a transaction-pooling PgBouncer (DigitalOcean's connection pools, mode
`transaction`) consecutive transactions of one client connection may run on different
server connections, so nothing may outlive a transaction on the server: psycopg 3
prepares a statement server-side once it has run `prepare_threshold` (5) times on a
connection, and such a statement would be missing, or another client's, on the next
server connection. `prepare_threshold=None` turns that off ("You can disable the use of
prepared statements on a connection by setting its prepare_threshold attribute to None",
https://www.psycopg.org/psycopg3/docs/advanced/prepare.html; a `connect()` keyword since
psycopg 3.1). SQLAlchemy hands `connect_args` to the driver's `connect()` unchanged
(https://docs.sqlalchemy.org/en/21/core/engines.html#sqlalchemy.create_engine.params.connect_args);
its psycopg dialect page has no PgBouncer section (only the asyncpg dialect's "Prepared
Statement Name with PGBouncer"), so this is the driver's switch, set here. Session-level
features (LISTEN, session advisory locks, plain SET) also break under transaction pooling
(https://www.pgbouncer.org/features.html): the apps use transaction-scoped ones only, and
the outbox relay's LISTEN connects straight to the database (`database_direct_url`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import psycopg
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


def connect_args(*, transaction_pooling: bool = False) -> dict[str, Any]:
    """psycopg's `connect()` keywords: the session's time zone pinned to UTC, or, when a
    transaction pooler sits in between, no server-side prepared statements.

    Behind PgBouncer the `options` startup parameter is left out: PgBouncer before 1.20
    refuses any connection that sends it ("unsupported startup parameter: options",
    pgbouncer/pgbouncer#875, #907), and DigitalOcean does not say which version its pools
    run. The session then has the server's time zone (UTC on DigitalOcean's managed
    PostgreSQL); values stay the same instants either way, only their offset could differ.
    """
    if transaction_pooling:
        return {"prepare_threshold": None}
    return {"options": "-c timezone=UTC"}


def create_db_engine(
    database_url: str, *, pool_size: int = 10, transaction_pooling: bool = False
) -> AsyncEngine:
    """The service's async engine: `pool_size` connections and as many again as overflow.
    Sessions pin the time zone to UTC for stable output."""
    return create_async_engine(
        driver_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,  # a broken connection surfaces as an error and is replaced
        connect_args=connect_args(transaction_pooling=transaction_pooling),
    )


def create_sync_engine(database_url: str) -> Engine:
    """A sync engine for Alembic, scripts and tests. The migration Job is given the
    direct URL, never a pooled one: a revision's DDL runs as one session of its own."""
    return create_engine(driver_url(database_url), connect_args=connect_args())


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


@asynccontextmanager
async def driver_connection(
    engine: AsyncEngine, *, autocommit: bool = True
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of the engine's pool as psycopg's own, for the hot paths that send
    prebuilt SQL text (apps.backend.store.driver): SQLAlchemy's execution around each
    statement (a greenlet switch, its execution context and result objects) cost more
    CPU than the driver's own work for a list page.

    In autocommit mode by default: each statement is its own transaction, and a
    transaction is opened with `connection.transaction()`. The connection goes back to
    the pool as it came (autocommit off), or is invalidated if the driver lost it, so
    the pool never hands out a broken one.
    """
    async with engine.connect() as connection:
        pooled = await connection.get_raw_connection()
        driver = pooled.driver_connection
        assert isinstance(driver, psycopg.AsyncConnection), "the engine's driver is psycopg"
        if autocommit:
            await driver.set_autocommit(True)
        try:
            yield driver
        finally:
            try:
                if autocommit:
                    await driver.set_autocommit(False)  # raises unless idle and alive
            except psycopg.Error:
                await connection.invalidate()
            else:
                if driver.broken:
                    await connection.invalidate()
