"""Routes only the platform calls (Dapr, with the app token): the cron binding's reminder
scan and the recurring service's next-occurrence request. Left out of the public
OpenAPI document: they are not part of the task API."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from apps.backend.next_occurrence import NextOccurrenceRequest, create_next_occurrence
from apps.backend.reminder_scan import claim_due_reminders
from apps.backend.routes.tasks import task_response
from apps.backend.schemas import TaskPublic
from apps.backend.settings import BackendSettings
from apps.contracts.services import NEXT_OCCURRENCE_PATH, REMINDER_SCAN
from apps.shared.app_token import require_app_token
from apps.shared.db import SessionDep
from apps.shared.logs import get_logger

router = APIRouter(tags=["internal"], dependencies=[Depends(require_app_token)])
_log = get_logger("apps.backend.pipeline")


class ScanSummary(BaseModel):
    emitted: int
    batches: int


@router.post(REMINDER_SCAN.route, response_model=ScanSummary, include_in_schema=False)
async def reminder_scan(request: Request, session: SessionDep) -> ScanSummary:
    """Called by the `reminder-scan` cron binding on every replica; each batch commits."""
    settings: BackendSettings = request.app.state.settings
    limits = settings.reminder_scan
    emitted = batches = 0
    while batches < limits.max_batches:
        claimed = await claim_due_reminders(session, limit=limits.batch_size)
        await session.commit()
        batches += 1
        emitted += claimed
        if claimed < limits.batch_size:
            break
    if emitted:
        _log.info("reminders emitted", emitted=emitted, batches=batches)
    return ScanSummary(emitted=emitted, batches=batches)


@router.post(
    NEXT_OCCURRENCE_PATH,
    status_code=status.HTTP_201_CREATED,
    response_model=TaskPublic,
    include_in_schema=False,
)
async def next_occurrence(
    task_id: uuid.UUID, body: NextOccurrenceRequest, session: SessionDep
) -> Response:
    """201 with the new occurrence, or 200 with the one an earlier call created."""
    task, created = await create_next_occurrence(session, task_id=task_id, request=body)
    await session.commit()
    return task_response(task, status.HTTP_201_CREATED if created else status.HTTP_200_OK)
