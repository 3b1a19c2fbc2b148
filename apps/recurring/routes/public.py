"""The recurring service's user API: a preview of a rule's occurrences."""

from __future__ import annotations

from fastapi import APIRouter

from apps.contracts.services import RECURRENCE_PREFIX
from apps.recurring.deps import CurrentUser, RuleSandboxDep
from apps.recurring.recurrence import RecurrenceError, preview
from apps.recurring.sandbox import RuleTimeout
from apps.recurring.schemas import PreviewRequest, PreviewResponse
from apps.shared.errors import error_responses, invalid

router = APIRouter(
    prefix=RECURRENCE_PREFIX, tags=["recurrence"], responses=error_responses(401, 422)
)


@router.post("/preview", response_model=PreviewResponse)
async def recurrence_preview(
    body: PreviewRequest, _user: CurrentUser, sandbox: RuleSandboxDep
) -> PreviewResponse:
    """The next `count` occurrences of `rrule` from `dtstart`, stepping in `timezone`."""
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
