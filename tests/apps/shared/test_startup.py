"""A service whose environment is incomplete refuses to start and says why in its log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from apps.backend.main import create_app as backend_app
from apps.notification.main import create_app as notification_app
from apps.recurring.main import create_app as recurring_app
from apps.shared.settings import SettingsError

APPS: dict[str, Callable[[], FastAPI]] = {
    "backend": backend_app,
    "notification": notification_app,
    "recurring": recurring_app,
}


@pytest.mark.parametrize("service", sorted(APPS))
def test_missing_database_url_fails_startup_with_one_json_log_line(
    service: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("AUTH_JWT_SECRET", "s" * 40)
    app = APPS[service]()

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pytest.fail("the service started without DATABASE_URL")

    with pytest.raises(SettingsError, match="DATABASE_URL"):
        asyncio.run(start())

    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    failures = [record for record in records if record.get("event") == "startup failed"]
    assert len(failures) == 1, records
    assert failures[0]["service"] == service
    assert failures[0]["level"] == "error"
    assert "DATABASE_URL: is required but not set" in failures[0]["reason"]
