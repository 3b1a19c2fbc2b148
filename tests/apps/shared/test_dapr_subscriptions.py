"""The subscription registry binds each handler to a contract route, and refuses anything
else with an error naming what is wrong: a second handler for a route, a handler for
another app's subscription or for a rule the subscription does not have, and (when the
app starts) a route with no handler."""

from __future__ import annotations

import warnings

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from apps.contracts import events
from apps.contracts.events import RoutingRule, Subscription
from apps.contracts.services import AppId
from apps.shared.dapr_subscriptions import SubscriptionError, SubscriptionRegistry
from apps.shared.errors import install_error_handlers

TOKEN = "registry-test-token"


async def _answer() -> JSONResponse:
    return JSONResponse({"status": "SUCCESS"})


async def _other() -> JSONResponse:
    return JSONResponse({"status": "SUCCESS"})


def _paths(app: FastAPI) -> list[str]:
    return [getattr(route, "path", "") for route in app.router.routes]


def _recurring(*, default: bool = True, completed: bool = True) -> SubscriptionRegistry:
    registry = SubscriptionRegistry(AppId.RECURRING)
    if completed:
        registry.handler(events.RECURRING_TASK_EVENTS, rule=events.TASK_COMPLETED_RULE)(_answer)
    if default:
        registry.handler(events.RECURRING_TASK_EVENTS)(_other)
    return registry


def test_a_complete_registry_serves_the_contract_and_every_route() -> None:
    app = FastAPI()
    install_error_handlers(app)  # the token check answers 401 through them
    app.state.app_api_token = TOKEN
    _recurring().install(app)
    with TestClient(app) as client:
        assert client.get("/dapr/subscribe").json() == [events.RECURRING_TASK_EVENTS.as_dapr()]
        for path in events.RECURRING_TASK_EVENTS.paths:
            assert client.post(path).status_code == 401, path
            answer = client.post(path, headers={"dapr-api-token": TOKEN})
            assert answer.json() == {"status": "SUCCESS"}, path


def test_the_decorator_returns_the_handler_itself() -> None:
    registry = SubscriptionRegistry(AppId.NOTIFICATION)
    assert registry.handler(events.NOTIFICATION_REMINDERS)(_answer) is _answer


def test_a_second_handler_for_a_route_is_refused() -> None:
    registry = _recurring()
    with pytest.raises(SubscriptionError, match=r"/events/task-completed already has a handler"):
        registry.handler(events.RECURRING_TASK_EVENTS, rule=events.TASK_COMPLETED_RULE)(_other)
    with pytest.raises(SubscriptionError, match=r"\(_other\); _answer would be a second"):
        registry.handler(events.RECURRING_TASK_EVENTS)(_answer)


@pytest.mark.parametrize(
    ("registry", "missing"),
    [
        (_recurring(default=False), events.OTHER_TASK_EVENTS_ROUTE),
        (_recurring(completed=False), events.TASK_COMPLETED_ROUTE),
        (SubscriptionRegistry(AppId.NOTIFICATION), events.REMINDER_DUE_ROUTE),
    ],
)
def test_a_route_without_a_handler_fails_the_install(
    registry: SubscriptionRegistry, missing: str
) -> None:
    app = FastAPI()
    with pytest.raises(SubscriptionError, match=f"no handler for {missing}$"):
        registry.install(app)
    assert _paths(app) == _paths(FastAPI())  # nothing half-installed


def test_the_service_apps_fail_at_startup_without_a_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real apps install their registries when they are built: a missing handler
    stops `create_app` (and so the import of `main`, which builds the app)."""
    from apps.notification.main import create_app
    from apps.notification.routes.events import subscriptions

    monkeypatch.setattr(subscriptions, "_handlers", {})
    with pytest.raises(SubscriptionError, match="notification: no handler for /events/"):
        create_app()


def test_a_handler_for_another_apps_subscription_is_refused() -> None:
    registry = SubscriptionRegistry(AppId.RECURRING)
    with pytest.raises(
        SubscriptionError, match="recurring cannot handle notification's subscription to reminders"
    ):
        registry.handler(events.NOTIFICATION_REMINDERS)
    backend = SubscriptionRegistry(AppId.BACKEND)
    assert backend.subscriptions == ()  # it subscribes to nothing
    with pytest.raises(SubscriptionError, match="backend cannot handle recurring's"):
        backend.handler(events.RECURRING_TASK_EVENTS, rule=events.TASK_COMPLETED_RULE)


def test_a_rule_the_subscription_does_not_have_is_refused() -> None:
    registry = SubscriptionRegistry(AppId.RECURRING)
    stranger = RoutingRule('event.type == "task.deleted.v1"', "/events/task-deleted")
    with pytest.raises(
        SubscriptionError, match="'event.type == \"task.deleted.v1\"' is not a rule"
    ):
        registry.handler(events.RECURRING_TASK_EVENTS, rule=stranger)


def test_a_subscription_outside_the_contracts_is_refused() -> None:
    made_up = Subscription(AppId.RECURRING, "elsewhere", (), "/events/elsewhere", None)
    with pytest.raises(SubscriptionError, match="to elsewhere is not among the contract"):
        SubscriptionRegistry(AppId.RECURRING).handler(made_up)


def test_a_subscription_with_rules_only_needs_a_rule_named() -> None:
    rule = RoutingRule('event.type == "x"', "/events/x")
    rules_only = Subscription(AppId.RECURRING, "x", (rule,), None, None)
    registry = SubscriptionRegistry(AppId.RECURRING, contracts=(rules_only,))
    with pytest.raises(SubscriptionError, match="has no default route: name a rule"):
        registry.handler(rules_only)
    registry.handler(rules_only, rule=rule)(_answer)
    registry.install(FastAPI())
