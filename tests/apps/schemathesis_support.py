"""What the services' schemathesis runs share: the checks and the request adapter."""

from __future__ import annotations

from typing import Any

from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis serialises for `requests`; the test client speaks httpx."""
    converted = {key: value for key, value in kwargs.items() if key != "cookies" or value}
    if "data" in converted and not isinstance(converted["data"], dict):
        converted["content"] = converted.pop("data")
    return converted
