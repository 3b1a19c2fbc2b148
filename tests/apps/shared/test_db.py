"""The engine behind a transaction-pooling PgBouncer: no server-side prepared statements.

Real PostgreSQL (the session's server): psycopg prepares a statement on the server once
it has run `prepare_threshold` (5) times on a connection; through a transaction pooler
the next transaction may get another server connection, where that statement does not
exist. With DB_TRANSACTION_POOLING the engine turns preparing off, and the server's own
`pg_prepared_statements` (statements prepared in this session, protocol-level ones
included) shows it stays empty while the same engine still reads and writes.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from apps.backend.settings import BackendSettings
from apps.shared.db import connect_args, create_db_engine, make_session_factory
from apps.shared.settings import SettingsError, load_settings

REPEATS = 12
"""More than psycopg's default prepare_threshold (5)."""


async def _prepared_after_repeats(engine: AsyncEngine) -> tuple[int, object, str]:
    """(server-side prepared statements, the driver's prepare_threshold, TimeZone) of one
    connection after running the same parameterised query REPEATS times on it."""
    try:
        async with engine.connect() as connection:
            for value in range(REPEATS):
                result = await connection.execute(text("SELECT CAST(:v AS int) + 1"), {"v": value})
                assert result.scalar_one() == value + 1
            prepared = await connection.execute(text("SELECT count(*) FROM pg_prepared_statements"))
            zone = await connection.execute(text("SHOW TimeZone"))
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            threshold = getattr(driver, "prepare_threshold", "?")
            return int(prepared.scalar_one()), threshold, str(zone.scalar_one())
    finally:
        await engine.dispose()


def test_transaction_pooling_prepares_nothing_on_the_server(database_url: str) -> None:
    engine = create_db_engine(database_url, pool_size=1, transaction_pooling=True)
    prepared, threshold, _ = asyncio.run(_prepared_after_repeats(engine))
    assert threshold is None
    assert prepared == 0
    # No `options` startup parameter through a pooler (old PgBouncers refuse it): the
    # session has the server's own time zone.
    assert "options" not in connect_args(transaction_pooling=True)
    assert connect_args()["options"] == "-c timezone=UTC"


def test_the_check_can_fail_a_direct_engine_prepares(database_url: str) -> None:
    """The control: without the setting psycopg prepares the repeated query."""
    prepared, threshold, zone = asyncio.run(
        _prepared_after_repeats(create_db_engine(database_url, pool_size=1))
    )
    assert threshold == 5
    assert prepared >= 1
    assert zone == "UTC"  # a direct session pins its time zone at startup


def test_a_pooled_engine_reads_and_writes(database_url: str) -> None:
    """Sessions, transactions, rollbacks and row locks work the same without preparing."""

    async def scenario() -> list[tuple[str, int]]:
        engine = create_db_engine(database_url, pool_size=1, transaction_pooling=True)
        factory = make_session_factory(engine)
        try:
            for round_ in range(REPEATS):
                async with factory() as session:
                    await session.execute(
                        text(
                            "INSERT INTO processed_events (consumer, event_id) "
                            "VALUES (:c, gen_random_uuid())"
                        ),
                        {"c": f"pooling-{round_ % 2}"},
                    )
                    if round_ % 3 == 0:
                        await session.rollback()  # a transaction that ends the other way
                    else:
                        await session.commit()
            async with factory() as session, session.begin():
                await session.execute(
                    text("SELECT 1 FROM processed_events WHERE consumer = :c FOR UPDATE"),
                    {"c": "pooling-0"},
                )
                rows = await session.execute(
                    text(
                        "SELECT consumer, count(*) FROM processed_events "
                        "WHERE consumer LIKE 'pooling-%' GROUP BY consumer ORDER BY consumer"
                    )
                )
                return [(str(consumer), int(count)) for consumer, count in rows.all()]
        finally:
            await engine.dispose()

    # 12 rounds alternate consumers; rounds 0, 3, 6, 9 roll back.
    assert asyncio.run(scenario()) == [("pooling-0", 4), ("pooling-1", 4)]


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("DB_TRANSACTION_POOLING", "DATABASE_DIRECT_URL", "AUTH_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://todo:pw@pool.internal:25061/todo-pool")
    monkeypatch.setenv("AUTH_JWT_SECRET", "s" * 40)
    return monkeypatch


def test_pooling_setting_and_where_session_features_connect(
    service_env: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(BackendSettings)
    assert settings.db_transaction_pooling is False
    # Unpooled: LISTEN may use DATABASE_URL itself.
    assert settings.session_database_url() == "postgresql://todo:pw@pool.internal:25061/todo-pool"

    service_env.setenv("DB_TRANSACTION_POOLING", "true")
    settings = load_settings(BackendSettings)
    assert settings.db_transaction_pooling is True
    assert settings.session_database_url() is None  # never LISTEN through the pooler

    direct = "postgresql://todo:pw@db.internal:25060/todo?sslmode=require"
    service_env.setenv("DATABASE_DIRECT_URL", direct)
    assert load_settings(BackendSettings).session_database_url() == direct


def test_a_bad_direct_url_is_named_without_its_value(service_env: pytest.MonkeyPatch) -> None:
    service_env.setenv("DATABASE_DIRECT_URL", "mysql://todo:hunter2@db/todo")
    with pytest.raises(SettingsError) as raised:
        load_settings(BackendSettings)
    message = str(raised.value)
    assert "DATABASE_DIRECT_URL: Value error, must be a postgresql:// URL" in message
    assert "hunter2" not in message
