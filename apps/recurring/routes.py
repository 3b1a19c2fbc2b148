"""The recurring service's routes: the preview API, and what Dapr delivers."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from apps.contracts import events
from apps.contracts.services import RECURRENCE_PREFIX, AppId
from apps.recurring.recurrence import RecurrenceError, preview
from apps.recurring.sandbox import RuleSandbox, RuleTimeout
from apps.recurring.schemas import PreviewRequest, PreviewResponse
from apps.shared.auth import CurrentUser
from apps.shared.dapr_consumer import acknowledge, consume
from apps.shared.dapr_subscriptions import SubscriptionRegistry
from apps.shared.errors import error_responses, invalid

SERVICE = AppId.RECURRING.value
subscriptions = SubscriptionRegistry(AppId.RECURRING)

router = APIRouter(
    prefix=RECURRENCE_PREFIX, tags=["recurrence"], responses=error_responses(401, 422)
)


@router.post("/preview", response_model=PreviewResponse)
async def recurrence_preview(
    body: PreviewRequest, request: Request, _user: CurrentUser
) -> PreviewResponse:
    """The next `count` occurrences of `rrule` from `dtstart`, stepping in `timezone`."""
    sandbox: RuleSandbox = request.app.state.rule_sandbox
    try:
        occurrences = await sandbox.run(
            preview,
            rule_text=body.rrule,
            dtstart=body.dtstart,
            timezone=body.timezone,
            count=body.count,
        )
    except RecurrenceError as exc:
        raise invalid(["body", exc.field], exc.message) from None
    except RuleTimeout as exc:
        raise invalid(["body", "rrule"], str(exc), "rule_never_matches") from None
    return PreviewResponse(timezone=body.timezone, occurrences=occurrences)


@subscriptions.handler(events.RECURRING_TASK_EVENTS, rule=events.TASK_COMPLETED_RULE)
async def task_completed(request: Request) -> JSONResponse:
    return await consume(
        request,
        service=SERVICE,
        topic=events.RECURRING_TASK_EVENTS.topic,
        accepted_types=(events.TASK_COMPLETED,),
        handler=request.app.state.completion_handler,
    )


@subscriptions.handler(events.RECURRING_TASK_EVENTS)
async def other_task_event(request: Request) -> JSONResponse:
    """The topic's other events: of no use here, acknowledged (they must not 404)."""
    return await acknowledge(request)


def install_routes(app: FastAPI) -> None:
    app.include_router(router)
    subscriptions.install(app)
