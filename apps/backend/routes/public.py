"""The task API (/api/v1): thin wrappers that commit around the data-access calls.

The hot paths (list, read, create, complete) send their prebuilt statements through the
driver (apps.backend.store.driver) on a connection of the engine's pool; the others go
through a SQLAlchemy session."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from apps.backend import store
from apps.backend.deps import (
    TASK_QUERY_OPENAPI,
    CurrentUser,
    SessionDep,
    TaskQueryDep,
    wake_relay,
)
from apps.backend.schemas import (
    TASK_LIST_DATA,
    TagList,
    TaskCreate,
    TaskList,
    TaskPublic,
    TaskUpdate,
)
from apps.backend.store import driver
from apps.contracts.services import API_V1
from apps.shared.db import driver_connection
from apps.shared.errors import error_responses


async def autocommit(session: AsyncSession) -> None:
    """Let each statement of this request be its own transaction (call before any SQL).

    For reads: under READ COMMITTED every statement reads its own snapshot anyway, so a
    transaction around reads only costs the BEGIN and ROLLBACK round trips; and psycopg
    forgets all of a connection's prepared statements on ROLLBACK, so reads ending that
    way would be planned from scratch every time. For a change written by one statement
    (a create: the task and its event together), the statement is atomic by itself and
    BEGIN and COMMIT are two round trips saved.
    """
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


# FastAPI validates a returned model against `response_model` before serialising it;
# the tasks the data layer returns are TaskPublic already, so routes serialise them
# themselves, the way FastAPI would (the same adapter call, the same bytes).
_TASK_JSON = TypeAdapter(TaskPublic)


def task_response(task: TaskPublic, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(_TASK_JSON.dump_json(task), status_code, media_type="application/json")


# 400: a body that is not decodable text; 422: anything that fails validation.
router = APIRouter(prefix=API_V1, tags=["tasks"], responses=error_responses(400, 401, 422))
_ONE_TASK = error_responses(404)


@router.post(
    "/tasks",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskPublic,
    summary="Create a task",
)
async def create_task(body: TaskCreate, request: Request, user: CurrentUser) -> Response:
    # One statement writes everything (atomic by itself): sent in autocommit mode.
    async with driver_connection(request.app.state.engine) as connection:
        task = await driver.create_task(connection, user_id=user, data=body)
    wake_relay(request)
    response = task_response(task, status.HTTP_201_CREATED)
    response.headers["Location"] = f"{router.prefix}/tasks/{task.id}"
    return response


@router.get(
    "/tasks",
    response_model=TaskList,
    summary="List, filter and search tasks",
    openapi_extra=TASK_QUERY_OPENAPI,
)
async def list_tasks(request: Request, user: CurrentUser, query: TaskQueryDep) -> Response:
    # Reads in autocommit mode: see `autocommit`.
    async with driver_connection(request.app.state.engine) as connection:
        page = await driver.list_tasks(connection, user_id=user, query=query)
    # Serialised here, as plain data: FastAPI would validate a TaskList (every field
    # validator of every task) before serialising it. The document is TaskList's.
    return Response(TASK_LIST_DATA.dump_json(page), media_type="application/json")


@router.get("/tasks/{task_id}", response_model=TaskPublic, responses=_ONE_TASK)
async def read_task(task_id: uuid.UUID, request: Request, user: CurrentUser) -> Response:
    async with driver_connection(request.app.state.engine) as connection:
        task = await driver.get_task(connection, user_id=user, task_id=task_id)
    return task_response(task)


@router.patch("/tasks/{task_id}", response_model=TaskPublic, responses=_ONE_TASK)
async def update_task(
    task_id: uuid.UUID, body: TaskUpdate, session: SessionDep, user: CurrentUser, request: Request
) -> Response:
    task = await store.update_task(session, user_id=user, task_id=task_id, changes=body)
    await session.commit()
    wake_relay(request)
    return task_response(task)


@router.delete(
    "/tasks/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_ONE_TASK,
)
async def delete_task(
    task_id: uuid.UUID, session: SessionDep, user: CurrentUser, request: Request
) -> None:
    await store.delete_task(session, user_id=user, task_id=task_id)
    await session.commit()
    wake_relay(request)


@router.post("/tasks/{task_id}/complete", response_model=TaskPublic, responses=_ONE_TASK)
async def complete_task(task_id: uuid.UUID, request: Request, user: CurrentUser) -> Response:
    # A transaction of its own (driver.complete_task): read locked, change, event.
    async with driver_connection(request.app.state.engine) as connection:
        task = await driver.complete_task(connection, user_id=user, task_id=task_id)
    wake_relay(request)
    return task_response(task)


@router.post("/tasks/{task_id}/reopen", response_model=TaskPublic, responses=_ONE_TASK)
async def reopen_task(
    task_id: uuid.UUID, session: SessionDep, user: CurrentUser, request: Request
) -> Response:
    task = await store.reopen_task(session, user_id=user, task_id=task_id)
    await session.commit()
    wake_relay(request)
    return task_response(task)


@router.get("/tags", response_model=TagList, summary="The user's tags with task counts")
async def list_tags(session: SessionDep, user: CurrentUser) -> TagList:
    await autocommit(session)
    return TagList(items=await store.list_tags(session, user_id=user))
