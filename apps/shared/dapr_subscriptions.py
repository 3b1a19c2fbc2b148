"""Subscriptions declared the Dapr way: `dapr.ext.fastapi.DaprApp` serves `GET /dapr/subscribe`.

`DaprApp.subscribe` covers one topic → one route. A subscription with routing rules
(CEL on the CloudEvent, e.g. `event.type == "task.completed.v1"`) needs Dapr's v2 form,
`routes: {rules: [...], default: ...}`; `SubscriptionRegistry` adds that to the same
`GET /dapr/subscribe` answer, so both kinds come from one place. What each app
subscribes to is a contract (`apps.contracts.events.SUBSCRIPTIONS`).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from dapr.ext.fastapi import DaprApp
from fastapi import Depends, FastAPI

from apps.contracts.events import Subscription
from apps.shared.app_token import require_app_token

_TAGS: list[str | Enum] = ["dapr"]


class SubscriptionRegistry(DaprApp):
    """`DaprApp` plus rule-based subscriptions; every delivery route checks the app token."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app, router_tags=["dapr"])
        self.specs: list[Subscription] = []

    def declare(self, spec: Subscription, handlers: dict[str, Callable[..., Any]]) -> Subscription:
        """Register `spec` and a POST route for each of its paths (`handlers[path]`)."""
        missing = set(spec.paths) - set(handlers)
        if missing:
            raise ValueError(f"no handler for {sorted(missing)}")
        for path in spec.paths:
            self._app.add_api_route(
                path,
                handlers[path],
                methods=["POST"],
                tags=_TAGS,
                dependencies=[Depends(require_app_token)],
                include_in_schema=False,
            )
        self._subscriptions.append(spec.as_dapr())
        self.specs.append(spec)
        return spec
