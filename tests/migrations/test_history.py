"""The Alembic history builds the schema the models describe, and unwinds completely."""

from __future__ import annotations

import psycopg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from apps.shared.db import create_sync_engine
from apps.shared.model_registry import load_metadata
from tests.conftest import alembic_config


def _table_names(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def _type_names(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = 'public' AND t.typtype = 'e'"
        ).fetchall()
    return {row[0] for row in rows}


def test_history_is_linear_with_numeric_ids() -> None:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/none"))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert all(revision.revision.isdigit() for revision in revisions)


def test_models_and_migrations_agree(database_url: str) -> None:
    """Autogenerate against a database at head finds nothing to change."""
    metadata = load_metadata()
    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_comparison_detects_a_schema_drift(database_url: str) -> None:
    """The agreement check can fail: a dropped index is reported."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("DROP INDEX ix_tasks_user_due")
    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            differences = compare_metadata(context, load_metadata())
    finally:
        engine.dispose()
    assert [diff[0] for diff in differences] == ["add_index"]


def test_upgrade_head_then_downgrade_base(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    assert {"tasks", "tags", "reminders", "outbox", "processed_events"} <= _table_names(
        empty_database_url
    )
    command.downgrade(config, "base")
    assert _table_names(empty_database_url) == {"alembic_version"}
    assert _type_names(empty_database_url) == set()
    # And the history replays cleanly on the emptied database.
    command.upgrade(config, "head")
    assert "tasks" in _table_names(empty_database_url)
