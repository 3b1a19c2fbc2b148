"""Secret redaction in logs and the app-token check."""

from __future__ import annotations

import pytest

from apps.shared.app_token import check_app_token
from apps.shared.errors import ApiError
from apps.shared.logs import REDACTED, redact_secrets


def test_secret_keys_and_url_passwords_are_redacted() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "connecting",
            "authorization": "Bearer abc",
            "AUTH_JWT_SECRET": "s3cret",
            "api_key": "k",
            "url": "postgresql://todo:hunter2@db:5432/todo",
            "title": "not a secret",
        },
    )
    assert event["authorization"] == event["AUTH_JWT_SECRET"] == event["api_key"] == REDACTED
    assert event["url"] == f"postgresql://todo:{REDACTED}@db:5432/todo"
    assert event["title"] == "not a secret"


@pytest.mark.parametrize(
    ("presented", "expected", "error_type"),
    [
        (None, "t0ken", "app_token_missing"),
        ("wrong", "t0ken", "app_token_invalid"),
        ("t0ken", None, "app_token_unconfigured"),
    ],
)
def test_app_token_refusals(presented: str | None, expected: str | None, error_type: str) -> None:
    with pytest.raises(ApiError) as raised:
        check_app_token(presented, expected)
    assert raised.value.status_code == 401
    assert raised.value.item.type == error_type
    assert raised.value.item.loc == ["header", "dapr-api-token"]


def test_app_token_accepts_the_configured_token() -> None:
    check_app_token("t0ken", "t0ken")
