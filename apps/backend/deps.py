"""What the backend's routes depend on, as annotated types."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from apps.backend.schemas import TaskQuery
from apps.backend.settings import BackendSettings
from apps.shared.auth import CurrentUser
from apps.shared.db import SessionDep

__all__ = [
    "CurrentUser",
    "SessionDep",
    "SettingsDep",
    "TaskQueryDep",
    "TASK_QUERY_OPENAPI",
    "wake_relay",
]


async def _settings(request: Request) -> BackendSettings:
    # Async though it never awaits: FastAPI runs a plain `def` dependency on a worker
    # thread, a hop on every request for reading an attribute.
    settings: BackendSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[BackendSettings, Depends(_settings)]
"""The settings the lifespan loaded (`app.state.settings`)."""


def wake_relay(request: Request) -> None:
    """Outbox rows were just committed: this replica's relay starts a round now rather
    than on its next poll (apps.backend.workers.outbox_relay). Every route that commits
    an event calls it after its commit; a plain call, because a dependency with `yield`
    around the route cost a tenth of a millisecond per request."""
    relay = getattr(request.app.state, "outbox_relay", None)
    if relay is not None:
        relay.nudge()


# GET /tasks's query parameters, read the way FastAPI reads a `Query()` model (fastapi/
# dependencies/utils.py, `_request_param_model_to_args`): list fields take every value
# of their name, other fields the last one, unknown names (which the model forbids) one
# value or a list. FastAPI does the same work with per-request introspection of every
# field's annotation, which cost a fifth of a list request's CPU time; the names and
# kinds of TaskQuery's fields are fixed, so they are read once here.
_TASK_QUERY = TypeAdapter(TaskQuery)
_FIELDS = tuple(TaskQuery.model_fields)
_LIST_FIELDS = frozenset(
    name
    for name, field in TaskQuery.model_fields.items()
    if getattr(field.annotation, "__origin__", None) is list
)


async def _task_query(request: Request) -> TaskQuery:
    grouped: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        grouped.setdefault(name, []).append(value)
    data: dict[str, Any] = {}
    for name in _FIELDS:  # the model's fields first, in its order, as FastAPI passes them
        values = grouped.pop(name, None)
        if values is not None:
            data[name] = values if name in _LIST_FIELDS else values[-1]
    for name, values in grouped.items():
        data[name] = values[0] if len(values) == 1 else values
    try:
        return _TASK_QUERY.validate_python(data)
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)
        ]
        raise RequestValidationError(errors) from None


TaskQueryDep = Annotated[TaskQuery, Depends(_task_query)]
"""GET /tasks's query parameters (declared for the OpenAPI document by TASK_QUERY_OPENAPI)."""


def _query_parameters() -> list[dict[str, Any]]:
    """The OpenAPI parameters FastAPI documents for `Annotated[TaskQuery, Query()]`."""
    probe = FastAPI()

    @probe.get("/")
    async def probe_route(query: Annotated[TaskQuery, Query()]) -> None:
        return None

    parameters: list[dict[str, Any]] = probe.openapi()["paths"]["/"]["get"]["parameters"]
    return parameters


TASK_QUERY_OPENAPI: dict[str, Any] = {"parameters": _query_parameters()}
"""`openapi_extra` of a route taking TaskQueryDep: the document stays what it was."""
