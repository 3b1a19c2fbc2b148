"""The recurring service's routes: the preview API, and what Dapr delivers."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from apps.recurring.recurrence import RecurrenceError, preview
from apps.recurring.sandbox import RuleSandbox, RuleTimeout
from apps.recurring.schemas import PreviewRequest, PreviewResponse
from apps.shared.auth import CurrentUser
from apps.shared.dapr_consumer import acknowledge, consume
from apps.shared.dapr_subscriptions import RoutingRule, SubscriptionRegistry, SubscriptionSpec
from apps.shared.errors import error_responses, invalid
from apps.shared.events import contracts

SERVICE = "recurring"
COMPLETED_ROUTE = "/events/task-completed"
OTHER_TASK_EVENTS_ROUTE = "/events/task-events"

# The contract with the infrastructure's declarative Subscription (development.md).
TASK_EVENTS_SUBSCRIPTION = SubscriptionSpec(
    pubsub_name="pubsub",
    topic=contracts.TASK_EVENTS_TOPIC,
    rules=[RoutingRule(match=f'event.type == "{contracts.TASK_COMPLETED}"', path=COMPLETED_ROUTE)],
    default_route=OTHER_TASK_EVENTS_ROUTE,
    dead_letter_topic=contracts.TASK_EVENTS_DLQ_TOPIC,
)

router = APIRouter(prefix="/api/v1", tags=["recurrence"], responses=error_responses(401, 422))


@router.post("/recurrence/preview", response_model=PreviewResponse)
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


async def task_completed(request: Request) -> JSONResponse:
    return await consume(
        request,
        service=SERVICE,
        topic=contracts.TASK_EVENTS_TOPIC,
        accepted_types=(contracts.TASK_COMPLETED,),
        handler=request.app.state.completion_handler,
    )


def install_routes(app: FastAPI) -> SubscriptionRegistry:
    app.include_router(router)
    subscriptions = SubscriptionRegistry(app)
    subscriptions.declare(
        TASK_EVENTS_SUBSCRIPTION,
        {COMPLETED_ROUTE: task_completed, OTHER_TASK_EVENTS_ROUTE: acknowledge},
    )
    return subscriptions
