"""What the recurring service's routes depend on, as annotated types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from apps.recurring.sandbox import RuleSandbox
from apps.shared.auth import CurrentUser

__all__ = ["CurrentUser", "RuleSandboxDep"]


async def _rule_sandbox(request: Request) -> RuleSandbox:
    # Async though it never awaits: FastAPI runs a plain `def` dependency on a worker
    # thread, a hop on every request for reading an attribute.
    sandbox: RuleSandbox = request.app.state.rule_sandbox
    return sandbox


RuleSandboxDep = Annotated[RuleSandbox, Depends(_rule_sandbox)]
"""The worker process rules are evaluated in, opened by the lifespan."""
