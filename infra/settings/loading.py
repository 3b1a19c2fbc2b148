"""Reading a stack's config: the keys, secret and plain, and `parse_settings`/`load_settings`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pydantic import (
    ValidationError,
)

from infra.settings.errors import format_errors
from infra.settings.rules import cross_checks
from infra.settings.stack import Settings
from infra.settings.types import CONFIG_NAMESPACE, SettingsError

# Config keys that only hold secrets: read with get_secret, never validated as plain text.
SECRET_KEYS: dict[str, str] = {
    "authJwtSecret": "HS256 key the apps verify JWTs with (generated when unset)",
    "databaseUrl": "postgresql:// URL of an external database (database.mode external)",
    "kafkaPassword": "SASL password of an external Kafka (kafka.mode external)",
    "imagePullToken": "token of apps.images.pullUsername for a private registry (GHCR: a PAT "
    "with read:packages)",
}

# Scalar keys, then object keys (one per area), as written in the stack file.
_SCALAR_KEYS = ("kind", "environment")


def _area_keys() -> dict[str, str]:
    """Config key (camelCase alias) for every object-valued Settings field."""
    keys: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        if name in ("stack", *_SCALAR_KEYS):
            continue
        keys[field.alias or name] = name
    return keys


def parse_settings(
    stack: str, raw: Mapping[str, Any], *, secret_keys: Sequence[str] = ()
) -> Settings:
    """Validate a stack's config (keys without the `todo:` prefix, objects decoded).

    `secret_keys` lists the secret keys that are set (their values are never seen here).
    Raises SettingsError naming every bad key, its value and what is allowed.
    """
    known = set(_SCALAR_KEYS) | set(_area_keys()) | set(SECRET_KEYS)
    errors = [
        f"{CONFIG_NAMESPACE}:{key}: unknown key; allowed keys: {', '.join(sorted(known))}"
        for key in raw
        if key not in known
    ]
    for key in SECRET_KEYS:
        if key in raw and key not in secret_keys:
            errors.append(
                f"{CONFIG_NAMESPACE}:{key}: must be set as a secret "
                f"(pulumi config set --secret {key} ...), not as plain text"
            )
    data: dict[str, Any] = {"stack": stack}
    for key in _SCALAR_KEYS:
        if key in raw:
            data[key] = raw[key]
    for alias, name in _area_keys().items():
        if alias in raw:
            data[name] = raw[alias]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        errors.extend(format_errors(error))
        raise SettingsError(_summary(stack, errors)) from None
    errors.extend(cross_checks(settings, set(secret_keys)))
    if errors:
        raise SettingsError(_summary(stack, errors))
    return settings


def _summary(stack: str, errors: list[str]) -> str:
    lines = "\n".join(f"  - {error}" for error in errors)
    return f"invalid config for stack {stack!r}:\n{lines}"


@dataclass(frozen=True)
class StackSecrets:
    """Secret config values, as Pulumi secret outputs (None when unset)."""

    auth_jwt_secret: pulumi.Output[str] | None
    database_url: pulumi.Output[str] | None
    kafka_password: pulumi.Output[str] | None
    image_pull_token: pulumi.Output[str] | None = None


def load_settings(config: pulumi.Config | None = None) -> tuple[Settings, StackSecrets]:
    """Read and validate the current stack's config; fails the run with SettingsError."""
    config = config or pulumi.Config(CONFIG_NAMESPACE)
    raw: dict[str, Any] = {}
    for key in _SCALAR_KEYS:
        value = config.get(key)
        if value is not None:
            raw[key] = value
    for alias in _area_keys():
        text = config.get(alias)
        if text is not None:
            raw[alias] = _decode_object(alias, text)
    secret_present = [key for key in SECRET_KEYS if config.get_secret(key) is not None]
    raw.update(_unknown_keys(config))
    settings = parse_settings(pulumi.get_stack(), raw, secret_keys=secret_present)
    secrets = StackSecrets(
        auth_jwt_secret=config.get_secret("authJwtSecret"),
        database_url=config.get_secret("databaseUrl"),
        kafka_password=config.get_secret("kafkaPassword"),
        image_pull_token=config.get_secret("imagePullToken"),
    )
    return settings, secrets


def _decode_object(key: str, text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # A scalar where an object is expected: let validation name the key and value.
        return text


def _unknown_keys(config: pulumi.Config) -> dict[str, Any]:
    """Keys in this project's namespace that the program does not know (typos)."""
    from pulumi.runtime import config as runtime_config

    known = set(_SCALAR_KEYS) | set(_area_keys()) | set(SECRET_KEYS)
    unknown: dict[str, Any] = {}
    for full_key in {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}:
        namespace, _, key = str(full_key).partition(":")
        if namespace == config.name and key not in known:
            unknown[key] = "<set>"
    return unknown
