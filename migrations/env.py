"""Alembic environment: one history for every service's tables.

The database comes from `DATABASE_URL` (plain postgresql://), or from
`config.attributes["database_url"]` when Alembic is driven from Python (tests).
Every models module is listed in `apps.shared.model_registry`, so autogenerate compares
the whole schema.
"""

from __future__ import annotations

import os

from alembic import context

from apps.shared.db import create_sync_engine, driver_url
from apps.shared.model_registry import load_metadata

target_metadata = load_metadata()


def _database_url() -> str:
    # No alembic.ini: pyproject.toml holds the source layout, the URL is deployment config.
    url = context.config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is required to run migrations")
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=driver_url(_database_url()),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_sync_engine(_database_url())
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
