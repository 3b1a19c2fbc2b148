"""Startup fails with a message naming each missing or malformed variable, never its value."""

from __future__ import annotations

import pytest

from apps.backend.settings import BackendSettings
from apps.shared.db import driver_url
from apps.shared.settings import SettingsError, load_settings

SECRET = "s" * 40


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "AUTH_JWT_SECRET", "AUTH_JWKS_URL", "LOG_LEVEL", "APP_ENV"):
        monkeypatch.delenv(name, raising=False)


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/todo")
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings(BackendSettings)
    assert settings.log_level == "DEBUG" and settings.app_env == "dev"
    assert settings.database_url.get_secret_value() == "postgresql://u:p@db:5432/todo"


def test_missing_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    with pytest.raises(SettingsError, match="DATABASE_URL: is required but not set"):
        load_settings(BackendSettings)


def test_malformed_variables_are_named_without_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://u:hunter2@db/todo")
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(SettingsError) as raised:
        load_settings(BackendSettings)
    message = str(raised.value)
    assert "DATABASE_URL: Value error, must be a postgresql:// URL" in message
    assert "APP_ENV:" in message
    assert "hunter2" not in message


def test_auth_method_must_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/todo")
    with pytest.raises(SettingsError, match="AUTH_JWT_SECRET or AUTH_JWKS_URL"):
        load_settings(BackendSettings)
    monkeypatch.setenv("AUTH_JWT_SECRET", "short")
    with pytest.raises(SettingsError, match="at least 32 characters"):
        load_settings(BackendSettings)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgres://u:p@h/d?sslmode=require", "postgresql+psycopg://u:p@h/d?sslmode=require"),
        (
            "postgresql://postgres:@/d?host=/tmp/sock",
            "postgresql+psycopg://postgres:@/d?host=%2Ftmp%2Fsock",
        ),
    ],
)
def test_driver_url_maps_to_psycopg(url: str, expected: str) -> None:
    assert driver_url(url) == expected


def test_driver_url_rejects_other_databases() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        driver_url("mysql://u:p@h/d")


def test_the_relay_and_scan_groups_keep_their_variable_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/todo")
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("OUTBOX_RELAY_ENABLED", "false")
    monkeypatch.setenv("OUTBOX_RELAY_POLL_SECONDS", "0.5")
    monkeypatch.setenv("REMINDER_SCAN_BATCH_SIZE", "7")
    settings = load_settings(BackendSettings)
    assert settings.outbox_relay.enabled is False and settings.outbox_relay.poll_seconds == 0.5
    assert settings.outbox_relay.batch_size == 1000  # the default
    assert (settings.reminder_scan.batch_size, settings.reminder_scan.max_batches) == (7, 40)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("OUTBOX_RELAY_BATCH_SIZE", "0", "OUTBOX_RELAY_BATCH_SIZE: Input should be greater"),
        ("REMINDER_SCAN_MAX_BATCHES", "many", "REMINDER_SCAN_MAX_BATCHES: Input should be a"),
    ],
)
def test_a_malformed_group_variable_is_named_with_its_prefix(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, reason: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/todo")
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=reason):
        load_settings(BackendSettings)
