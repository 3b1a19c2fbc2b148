"""Subscriptions: each handler is bound to its contract subscription where it is written.

What an app subscribes to — topic, routing rules, routes, dead-letter topic — is a
contract (`apps.contracts.events.SUBSCRIPTIONS`), which the Pulumi program reads too.
The app's part is to handle every route Dapr may deliver to, so each handler carries a
decorator naming the subscription (and the rule, when it is not the default route):

    subscriptions = SubscriptionRegistry(AppId.NOTIFICATION)

    @subscriptions.handler(events.NOTIFICATION_REMINDERS)
    async def reminder_due(request: Request) -> JSONResponse: ...

`install` then checks that every route of every subscription of the app has exactly
one handler — a route without one would answer 404, and Dapr drops such an event
without dead-lettering it — so an app that misses one fails at startup, not in
production. It serves `GET /dapr/subscribe` through `dapr.ext.fastapi.DaprApp`, adding
Dapr's v2 form (`routes: {rules: [...], default: ...}`) for subscriptions with rules,
which `DaprApp.subscribe` (one topic → one route) cannot express.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, TypeVar

from dapr.ext.fastapi import DaprApp
from fastapi import Depends, FastAPI

from apps.contracts.events import SUBSCRIPTIONS, RoutingRule, Subscription
from apps.contracts.services import AppId
from apps.shared.app_token import require_app_token

_TAGS: list[str | Enum] = ["dapr"]

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class SubscriptionError(ValueError):
    """A handler does not fit the app's contract subscriptions (or one is missing)."""


class SubscriptionRegistry:
    """The handlers of one app's contract subscriptions; every delivery route checks the
    app token."""

    def __init__(self, app_id: AppId, *, contracts: Sequence[Subscription] = SUBSCRIPTIONS) -> None:
        self.app_id = app_id
        self.subscriptions = tuple(s for s in contracts if s.app_id == app_id)
        self._handlers: dict[str, Callable[..., Any]] = {}

    def handler(
        self, subscription: Subscription, *, rule: RoutingRule | None = None
    ) -> Callable[[Endpoint], Endpoint]:
        """Bind the decorated endpoint to `rule`'s route of `subscription`, or to its
        default route when no rule is named."""
        route = self._route(subscription, rule)

        def bind(endpoint: Endpoint) -> Endpoint:
            bound = self._handlers.get(route)
            if bound is not None:
                raise SubscriptionError(
                    f"{self.app_id}: {route} already has a handler "
                    f"({bound.__qualname__}); {endpoint.__qualname__} would be a second"
                )
            self._handlers[route] = endpoint
            return endpoint

        return bind

    def _route(self, subscription: Subscription, rule: RoutingRule | None) -> str:
        where = f"{subscription.app_id}'s subscription to {subscription.topic}"
        if subscription.app_id != self.app_id:
            raise SubscriptionError(f"{self.app_id} cannot handle {where}")
        if subscription not in self.subscriptions:
            raise SubscriptionError(f"{where} is not among the contract subscriptions")
        if rule is None:
            if subscription.default_route is None:
                raise SubscriptionError(f"{where} has no default route: name a rule")
            return subscription.default_route
        if rule not in subscription.rules:
            raise SubscriptionError(f"{rule.match!r} is not a rule of {where}")
        return rule.path

    def install(self, app: FastAPI) -> None:
        """Serve `GET /dapr/subscribe` and a POST route per handler; `SubscriptionError`
        unless every route of the app's subscriptions has its handler."""
        routes = [path for subscription in self.subscriptions for path in subscription.paths]
        missing = [path for path in routes if path not in self._handlers]
        if missing:
            raise SubscriptionError(f"{self.app_id}: no handler for {', '.join(missing)}")
        dapr = DaprApp(app, router_tags=["dapr"])
        for path in routes:
            app.add_api_route(
                path,
                self._handlers[path],
                methods=["POST"],
                tags=_TAGS,
                dependencies=[Depends(require_app_token)],
                include_in_schema=False,
            )
        # DaprApp keeps what /dapr/subscribe answers in this list; `subscribe` would only
        # add the one-route form.
        dapr._subscriptions.extend(subscription.as_dapr() for subscription in self.subscriptions)
