"""Subscriptions declared the Dapr way: `dapr.ext.fastapi.DaprApp` serves `GET /dapr/subscribe`.

`DaprApp.subscribe` covers one topic → one route. A subscription with routing rules
(CEL on the CloudEvent, e.g. `event.type == "task.completed.v1"`) needs Dapr's v2 form,
`routes: {rules: [...], default: ...}`; `SubscriptionRegistry` adds that to the same
`GET /dapr/subscribe` answer, so both kinds come from one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dapr.ext.fastapi import DaprApp
from fastapi import Depends, FastAPI

from apps.shared.app_token import require_app_token

_TAGS: list[str | Enum] = ["dapr"]


@dataclass(frozen=True)
class RoutingRule:
    """A CEL `match` on the CloudEvent and the route it selects."""

    match: str
    path: str


@dataclass(frozen=True)
class SubscriptionSpec:
    """What one app subscribes to; the infrastructure declares the same (see development.md)."""

    pubsub_name: str
    topic: str
    rules: Sequence[RoutingRule]
    default_route: str | None
    dead_letter_topic: str | None

    def as_dapr(self) -> dict[str, Any]:
        """The entry `GET /dapr/subscribe` returns for this subscription."""
        entry: dict[str, Any] = {"pubsubname": self.pubsub_name, "topic": self.topic}
        if self.rules:
            routes: dict[str, Any] = {
                "rules": [{"match": rule.match, "path": rule.path} for rule in self.rules]
            }
            if self.default_route:
                routes["default"] = self.default_route
            entry["routes"] = routes
        else:
            entry["route"] = self.default_route
        entry["metadata"] = {}
        if self.dead_letter_topic:
            entry["deadLetterTopic"] = self.dead_letter_topic
        return entry

    @property
    def paths(self) -> list[str]:
        return [rule.path for rule in self.rules] + (
            [self.default_route] if self.default_route else []
        )


class SubscriptionRegistry(DaprApp):
    """`DaprApp` plus rule-based subscriptions; every delivery route checks the app token."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app, router_tags=["dapr"])
        self.specs: list[SubscriptionSpec] = []

    def declare(
        self, spec: SubscriptionSpec, handlers: dict[str, Callable[..., Any]]
    ) -> SubscriptionSpec:
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
