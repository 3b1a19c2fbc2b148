"""Schemathesis over the notification service's OpenAPI document, against the real
database, with private webhook targets refused as in a cluster.

Every generated request (valid and invalid) must get a non-5xx answer whose status,
content type and body match what the document promises: the settings routes take
user-chosen URLs and secrets, the likeliest source of a 500 from bad input. Examples are
bounded so the suite stays quick; the Hypothesis database is off so runs reproduce.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings

from apps.notification.main import create_app
from apps.notification.settings import NotificationServiceSettings
from tests.apps.notification.conftest import bearer
from tests.apps.schemathesis_support import CHECKS, httpx_kwargs

# Building the app connects to nothing (that happens in its lifespan), so the document
# can be read at import time, which is when pytest needs it to parametrize. Only the
# public API: the Dapr-facing routes answer daprd, not users, and have their own tests.
schema = schemathesis.openapi.from_dict(create_app().openapi()).include(path_regex=r"^/api/")


@pytest.fixture
def strict_client(notification_settings: NotificationServiceSettings) -> Iterator[TestClient]:
    strict = notification_settings.model_copy(update={"webhook_allow_private_targets": False})
    with TestClient(create_app(strict), raise_server_exceptions=False) as client:
        yield client


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case: Any, strict_client: TestClient) -> None:
    headers = bearer("schemathesis")
    if case.path.endswith("/rotate") and hash(str(case.body)) % 2 == 0:
        # Half the rotations find a webhook to rotate the secret of (else: 409).
        strict_client.put(
            "/api/v1/notification-settings",
            json={"webhook_url": "https://hooks.example.com/todo"},
            headers=headers,
        )
    kwargs = case.as_transport_kwargs(base_url=str(strict_client.base_url), headers=headers)
    response = strict_client.request(**httpx_kwargs(kwargs))
    case.validate_response(response, checks=CHECKS)
