"""The config of a `dev-<name>`/`pr-<n>` stack, generated for `todo-infra ephemeral up`
and for the plans of ephemeral stacks, and validated by the program's own settings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.contracts import ephemeral as ephemeral_contract
from apps.contracts.services import APP_IDS
from infra.settings.loading import parse_settings
from infra.settings.types import CONFIG_NAMESPACE, AppEnv, SettingsError, StackKind


def ephemeral_stack_config(
    stack: str,
    *,
    owner: str,
    base_stack: str,
    image_tag: str,
    ttl: timedelta,
    image_registry: str = "",
    digests: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The config of a `dev-<name>`/`pr-<n>` stack, validated, as a stack file holds it.

    Used by `todo-infra ephemeral up`: write it with `pulumi config set --path` or as
    `stacks/Pulumi.<stack>.yaml`'s `config:` mapping.
    """
    if not ephemeral_contract.MIN_TTL <= ttl <= ephemeral_contract.MAX_TTL:
        raise SettingsError(
            f"ttl: got {ttl}; must be between {ephemeral_contract.MIN_TTL.seconds // 60} "
            f"minutes and {ephemeral_contract.MAX_TTL.days} days"
        )
    expires = (now or datetime.now(UTC)) + ttl
    raw: dict[str, Any] = {
        "kind": StackKind.EPHEMERAL.value,
        "environment": AppEnv.DEV.value,
        "ephemeral": {
            "baseStack": base_stack,
            "owner": owner,
            "expiresAt": expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "database": {"mode": "shared"},
        "kafka": {
            "mode": "strimzi",
            "storage": {"type": "ephemeral"},
            "resources": {
                "cpuRequest": "200m",
                "memoryRequest": "768Mi",
                "cpuLimit": "1",
                "memoryLimit": "768Mi",
            },
            "topics": {"partitions": 1, "retentionHours": 24, "dlqRetentionHours": 24},
        },
        "apps": {
            "images": {
                "registry": image_registry,
                "tag": image_tag,
                "digests": dict(digests or {}),
            },
            # One pod each, small pools: they share the base stack's database server.
            **{app: {"minReplicas": 1, "maxReplicas": 1, "dbPoolSize": 1} for app in APP_IDS},
        },
    }
    parse_settings(stack, raw)
    return {f"{CONFIG_NAMESPACE}:{key}": value for key, value in raw.items()}
