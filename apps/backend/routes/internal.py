"""Routes only the platform calls (Dapr, with the app token): the cron binding's reminder
scan and the recurring service's next-occurrence request. Left out of the public
OpenAPI document: they are not part of the task API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request, Response, status

from apps.backend import store
from apps.backend.deps import SessionDep, SettingsDep, wake_relay
from apps.backend.routes.public import task_response
from apps.backend.schemas import (
    NextOccurrenceRequest,
    NextOccurrenceResult,
    NextOccurrencesAnswer,
    NextOccurrencesRequest,
    ScanSummary,
    TaskPublic,
)
from apps.backend.workers.reminder_scan import scan
from apps.contracts.services import NEXT_OCCURRENCE_PATH, NEXT_OCCURRENCES_PATH, REMINDER_SCAN
from apps.shared.app_token import require_app_token
from apps.shared.db import driver_connection
from apps.shared.metrics import NEXT_OCCURRENCE_DELAY

router = APIRouter(tags=["internal"], dependencies=[Depends(require_app_token)])


@router.post(REMINDER_SCAN.route, response_model=ScanSummary, include_in_schema=False)
async def reminder_scan(
    session: SessionDep, settings: SettingsDep, request: Request
) -> ScanSummary:
    """Called by the `reminder-scan` cron binding on every replica; each batch commits,
    and wakes the relay for its events."""
    return await scan(session, limits=settings.reminder_scan, committed=lambda: wake_relay(request))


@router.post(
    NEXT_OCCURRENCE_PATH,
    status_code=status.HTTP_201_CREATED,
    response_model=TaskPublic,
    include_in_schema=False,
)
async def next_occurrence(
    task_id: uuid.UUID, body: NextOccurrenceRequest, session: SessionDep, request: Request
) -> Response:
    """201 with the new occurrence, or 200 with the one an earlier call created."""
    result = await store.create_next_occurrence(session, task_id=task_id, request=body)
    await session.commit()
    wake_relay(request)
    observe_freshness(result.completed_at if result.created else None)
    return task_response(
        result.task, status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    )


@router.post(
    NEXT_OCCURRENCES_PATH,
    response_model=NextOccurrencesAnswer,
    include_in_schema=False,
)
async def next_occurrences(body: NextOccurrencesRequest, request: Request) -> NextOccurrencesAnswer:
    """Many completions in one call and one transaction; a result per item, as the single
    route would answer it (a refused item writes nothing). Over the driver
    (apps.backend.store.driver): a handful of statements for the whole batch."""
    async with driver_connection(request.app.state.engine) as connection:
        results = await store.create_next_occurrences(connection, items=body.items)
    wake_relay(request)
    for outcome in results:
        observe_freshness(outcome.completed_at)
    return NextOccurrencesAnswer(
        results=[NextOccurrenceResult(status=r.status, error=r.error) for r in results]
    )


def observe_freshness(completed_at: datetime | None) -> None:
    """A successor was committed, so it is readable: the end of the completion → next
    occurrence pipeline (both times from the backend's side: it set completed_at).
    None: nothing was created by this call."""
    if completed_at is not None:
        delay = (datetime.now(UTC) - completed_at).total_seconds()
        NEXT_OCCURRENCE_DELAY.observe(max(0.0, delay))
