"""Validate envelopes against the JSON Schemas (draft 2020-12) kept next to this module."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from apps.contracts.events import EVENT_TYPES

SCHEMA_DIR = Path(__file__).parent / "schemas"

_format_checker = FormatChecker()


@_format_checker.checks("date-time", raises=ValueError)
def _is_rfc3339(value: object) -> bool:
    """RFC 3339 date-time: ISO 8601 with a mandatory offset (`Z` or ±hh:mm)."""
    if not isinstance(value, str):
        return True  # the `type` keyword reports non-strings
    if "T" not in value.upper():
        raise ValueError("date and time must be separated by 'T'")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("offset is required")
    return True


class EventSchemaError(ValueError):
    """An envelope does not match its event type's schema."""

    def __init__(self, event_type: str, errors: list[str]) -> None:
        super().__init__(f"{event_type}: " + "; ".join(errors))
        self.event_type = event_type
        self.errors = errors


def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    return schema


@cache
def _registry() -> Registry[Any]:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


@cache
def validator_for(event_type: str) -> Draft202012Validator:
    schema = load_schema(event_type)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(), format_checker=_format_checker)


def _schema_by_id(uri: str) -> Any:
    return _registry().contents(uri)


@cache
def fast_validator_for(event_type: str) -> jsonschema_rs.Validator:
    """The same schema compiled by jsonschema-rs, which answers "valid?" some twenty times
    faster; formats are checked by this module's own checkers, so both agree on them."""
    formats: dict[str, Callable[[str], bool]] = {
        name: partial(_format_checker.conforms, format=name) for name in _format_checker.checkers
    }
    return jsonschema_rs.validator_for(
        load_schema(event_type),
        formats=formats,
        validate_formats=True,
        retriever=_schema_by_id,  # our schemas only: nothing is fetched from the network
    )


def _fast_valid(event_type: str, envelope: Mapping[str, Any]) -> bool:
    validator = fast_validator_for(event_type)
    try:
        return validator.is_valid(envelope)
    except (ValueError, TypeError):  # not plain JSON data (say a datetime): let jsonschema say
        return False


def schema_errors(envelope: Mapping[str, Any]) -> list[str]:
    """Every problem with `envelope`, as 'path: message' strings (empty when valid).

    A valid envelope (the common case, every event a producer writes) is recognised by
    jsonschema-rs; the problems of an invalid one are reported by jsonschema.
    """
    event_type = envelope.get("event_type")
    if event_type not in EVENT_TYPES:
        return [f"event_type: unknown event type {event_type!r}"]
    if _fast_valid(str(event_type), envelope):
        return []
    return [
        f"{error.json_path}: {error.message}"
        for error in validator_for(str(event_type)).iter_errors(envelope)
    ]


def validate_envelope(envelope: Mapping[str, Any]) -> None:
    """Raise `EventSchemaError` unless `envelope` matches its type's schema."""
    errors = schema_errors(envelope)
    if errors:
        raise EventSchemaError(str(envelope.get("event_type")), errors)
