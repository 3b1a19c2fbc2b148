"""`todo-local token`: a bearer token signed with the key the local services use."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from apps.local.cli import app, signing_key


def test_token_is_signed_with_the_persisted_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TODO_LOCAL_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["token", "--user", "bob", "--ttl-hours", "1"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), signing_key(tmp_path), algorithms=["HS256"])
    assert claims["sub"] == "bob" and claims["exp"] - claims["iat"] == 3600
    again = CliRunner().invoke(app, ["token", "--user", "bob"])
    assert jwt.decode(again.output.strip(), signing_key(tmp_path), algorithms=["HS256"])
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600
