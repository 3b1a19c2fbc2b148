"""A planned stack's database connection budget, from the settings the program validated.

The program refuses a budget that does not fit (`infra.settings.connections`, through the
settings' cross-area rules), so a plan that got this far fits; this module reads the same
settings back from the plan's config so that `todo-infra plan` can show the figures.
"""

from __future__ import annotations

import json

from infra.settings import (
    ConnectionBudget,
    Settings,
    SettingsError,
    connection_budget,
    parse_settings,
)
from infra.settings.types import CONFIG_NAMESPACE
from infra.tooling.plan.runner import StackConfig


def stack_settings(stack: str, config: StackConfig) -> Settings:
    """The stack's settings as the program read them (secret values never needed)."""
    prefix = f"{CONFIG_NAMESPACE}:"
    raw = {
        key.removeprefix(prefix): json.loads(value) if value.startswith(("{", "[")) else value
        for key, value in config.values.items()
        if key.startswith(prefix) and key not in config.secret_keys
    }
    secret_keys = [key.removeprefix(prefix) for key in config.secret_keys]
    return parse_settings(stack, raw, secret_keys=secret_keys)


def planned_budget(stack: str, config: StackConfig) -> ConnectionBudget | None:
    """The connection budget of a planned stack; None for a config that is not the
    program's (another program planned with `--program`)."""
    try:
        return connection_budget(stack_settings(stack, config))
    except SettingsError:
        return None
