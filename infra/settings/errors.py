"""Pydantic's validation errors, rewritten to name the full config key
(`todo:kafka.topics.partitions`), the value it got and what is allowed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from pydantic import (
    BaseModel,
    ValidationError,
)

from infra.settings.cluster import DoksCluster, LocalCluster
from infra.settings.database import (
    ExternalDatabase,
    InClusterDatabase,
    ManagedDatabase,
    SharedDatabase,
)
from infra.settings.kafka import ExternalKafka, StrimziKafka
from infra.settings.stack import Settings
from infra.settings.types import CONFIG_NAMESPACE

_UNION_TAGS = frozenset({"inCluster", "managed", "external", "shared", "strimzi", "local", "doks"})


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_TAGGED_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("cluster", "local"): LocalCluster,
    ("cluster", "doks"): DoksCluster,
    ("database", "inCluster"): InClusterDatabase,
    ("database", "managed"): ManagedDatabase,
    ("database", "external"): ExternalDatabase,
    ("database", "shared"): SharedDatabase,
    ("kafka", "strimzi"): StrimziKafka,
    ("kafka", "external"): ExternalKafka,
}


def _config_key(loc: Sequence[str]) -> str:
    """`todo:<area alias>.<nested.keys>` for a pydantic error location in Settings."""
    if not loc:
        return CONFIG_NAMESPACE
    field = Settings.model_fields.get(loc[0])
    head = (field.alias if field is not None and field.alias else loc[0]) if field else loc[0]
    return f"{CONFIG_NAMESPACE}:{'.'.join([head, *loc[1:]])}"


def format_errors(error: ValidationError) -> list[str]:
    messages = []
    for item in error.errors(include_url=False):
        raw_loc = [str(part) for part in item["loc"]]
        # Discriminated unions add the tag (e.g. 'managed') to the path: drop it.
        loc = [part for part in raw_loc if part not in _UNION_TAGS]
        key = _config_key(loc)
        kind = item["type"]
        if kind == "missing":
            messages.append(f"{key}: required but missing")
            continue
        reason = item["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            parent = _model_at(raw_loc[:-1])
            reason = "unknown key" + (f"; allowed keys: {allowed_keys(parent)}" if parent else "")
        elif kind == "union_tag_invalid":
            reason = f"must be one of {item['ctx']['expected_tags']}"
        elif kind == "union_tag_not_found":
            reason = f"needs a 'mode' key ({item['ctx']['discriminator']})"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            reason = "must be an object (a mapping of keys)"
        messages.append(f"{key}: got {_describe(item.get('input'))}; {reason}")
    return messages


def _model_at(loc: Sequence[str]) -> type[BaseModel] | None:
    """The settings model at a pydantic error path (union tags included), if it is one."""
    model: type[BaseModel] = Settings
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        annotation = field.annotation if field is not None else None
        # An optional area (`pool: ConnectionPool | None`): the model in the union.
        members = [a for a in get_args(annotation) if isinstance(a, type)]
        models = [a for a in members if issubclass(a, BaseModel)]
        if len(models) == 1 and len(members) == 2 and type(None) in members:
            annotation = models[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        # A union area (database, kafka, cluster): the next path element is its tag.
        tagged = _TAGGED_MODELS.get((part, parts[0])) if parts else None
        if tagged is None:
            return None
        parts.pop(0)
        model = tagged
    return model


def allowed_keys(model: Any) -> str:
    fields = getattr(model, "model_fields", {})
    return ", ".join(sorted(field.alias or name for name, field in fields.items()))
