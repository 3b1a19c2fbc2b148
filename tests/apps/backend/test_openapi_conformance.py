"""Schemathesis over the backend's OpenAPI document, against the real database.

Every generated request (valid and invalid) must get a non-5xx answer whose status,
content type and body match what the document promises. Requests go through the test
client of the `client` fixture, so the app runs its real lifespan on a fresh database.
Examples are bounded so the suite stays quick; the Hypothesis database is off so runs
are reproducible in CI.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings

from apps.backend.main import create_app
from tests.apps.backend.conftest import bearer
from tests.apps.schemathesis_support import CHECKS, httpx_kwargs

USER = "schemathesis"

# Building the app connects to nothing (that happens in its lifespan), so the document
# can be read at import time, which is when pytest needs it to parametrize.
schema = schemathesis.openapi.from_dict(create_app().openapi())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case: Any, client: TestClient) -> None:
    headers = bearer(USER)
    path_parameters = case.path_parameters or {}
    # Random ids only reach the 404 branch; every other case targets a real task.
    if "task_id" in path_parameters and hash(str(path_parameters["task_id"])) % 2 == 0:
        path_parameters["task_id"] = _new_task(client, headers)
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    response = client.request(**httpx_kwargs(kwargs))
    case.validate_response(response, checks=CHECKS)


def _new_task(client: TestClient, headers: dict[str, str]) -> str:
    response = client.post(
        "/api/v1/tasks",
        json={
            "title": f"seed {uuid.uuid4()}",
            "due_at": "2026-05-01T10:00:00Z",
            "tags": ["seed"],
            "reminders": [{"before_minutes": 10}],
            "recurrence": {"rrule": "FREQ=DAILY"},
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    task_id: str = response.json()["id"]
    return task_id
