"""Revision 0004 (webhook secret rotation) keeps the settings rows it finds, in both
directions, and holds the previous secret and its expiry together."""

from __future__ import annotations

import psycopg
import pytest
from alembic import command

from tests.conftest import alembic_config


def _settings(database_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as connection:
        return connection.execute(
            "SELECT user_id, webhook_url, webhook_secret FROM notification_settings"
        ).fetchall()


def _columns(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'notification_settings'"
        ).fetchall()
    return {str(row[0]) for row in rows}


def test_0004_keeps_existing_settings_up_and_down(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0003")
    with psycopg.connect(empty_database_url) as connection:
        connection.execute(
            "INSERT INTO notification_settings (user_id, webhook_url, webhook_secret, "
            "updated_at) VALUES ('alice', 'https://hooks.example.com/x', "
            "'a-plain-secret-from-before', now())"
        )
    before = _settings(empty_database_url)

    command.upgrade(config, "0004")
    assert {"webhook_secret_previous", "webhook_secret_previous_expires_at"} <= _columns(
        empty_database_url
    )
    assert _settings(empty_database_url) == before
    with (
        psycopg.connect(empty_database_url) as connection,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        connection.execute(
            "UPDATE notification_settings SET webhook_secret_previous = 'x' WHERE user_id = 'alice'"
        )

    command.downgrade(config, "0003")
    assert "webhook_secret_previous" not in _columns(empty_database_url)
    assert _settings(empty_database_url) == before
