"""Topics, dead-letter topics, event types, who publishes them and who subscribes how."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from apps.contracts.services import PUBSUB, AppId

SCHEMA_VERSION: Final = "1.0"

TASK_EVENTS_TOPIC: Final = "task-events"
REMINDERS_TOPIC: Final = "reminders"
TOPICS: Final = (TASK_EVENTS_TOPIC, REMINDERS_TOPIC)


def dead_letter_topic(topic: str) -> str:
    """Where a subscriber's sidecar puts what it could not deliver from `topic`."""
    return f"{topic}-dlq"


TASK_EVENTS_DLQ_TOPIC: Final = dead_letter_topic(TASK_EVENTS_TOPIC)
REMINDERS_DLQ_TOPIC: Final = dead_letter_topic(REMINDERS_TOPIC)
DEAD_LETTER_TOPICS: Final = tuple(dead_letter_topic(topic) for topic in TOPICS)

TASK_CREATED: Final = "task.created.v1"
TASK_UPDATED: Final = "task.updated.v1"
TASK_COMPLETED: Final = "task.completed.v1"
TASK_REOPENED: Final = "task.reopened.v1"
TASK_DELETED: Final = "task.deleted.v1"
REMINDER_DUE: Final = "reminder.due.v1"

TOPIC_OF: Final[Mapping[str, str]] = {
    TASK_CREATED: TASK_EVENTS_TOPIC,
    TASK_UPDATED: TASK_EVENTS_TOPIC,
    TASK_COMPLETED: TASK_EVENTS_TOPIC,
    TASK_REOPENED: TASK_EVENTS_TOPIC,
    TASK_DELETED: TASK_EVENTS_TOPIC,
    REMINDER_DUE: REMINDERS_TOPIC,
}
EVENT_TYPES: Final = tuple(TOPIC_OF)

PUBLISHERS: Final[Mapping[AppId, tuple[str, ...]]] = {AppId.BACKEND: TOPICS}
"""Who publishes events (through the outbox relay), on which topics."""


@dataclass(frozen=True)
class RoutingRule:
    """A CEL `match` on the CloudEvent and the route it selects."""

    match: str
    path: str


@dataclass(frozen=True)
class BulkSubscribe:
    """Dapr's `bulkSubscribe` of a subscription: the sidecar delivers up to
    `max_messages` events of one partition in one request, waiting at most
    `max_await_ms` for them, and the app answers a status per entry
    (docs.dapr.io "Publish and subscribe to bulk messages"; the Kafka component
    batches natively, components-contrib common/component/kafka/consumer.go)."""

    max_messages: int
    max_await_ms: int

    def as_dapr(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "maxMessagesCount": self.max_messages,
            "maxAwaitDurationMs": self.max_await_ms,
        }


@dataclass(frozen=True)
class Subscription:
    """What one app subscribes to: served by it on `GET /dapr/subscribe`."""

    app_id: AppId
    topic: str
    rules: Sequence[RoutingRule]
    default_route: str | None
    dead_letter_topic: str | None
    pubsub_name: str = PUBSUB
    bulk: BulkSubscribe | None = None

    def as_dapr(self) -> dict[str, Any]:
        """The entry `GET /dapr/subscribe` returns (Dapr's v2 form when there are rules)."""
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
        if self.bulk is not None:
            entry["bulkSubscribe"] = self.bulk.as_dapr()
        return entry

    @property
    def paths(self) -> list[str]:
        """Every route Dapr may deliver to: the rules' paths, then the default."""
        return [rule.path for rule in self.rules] + (
            [self.default_route] if self.default_route else []
        )


TASK_COMPLETED_ROUTE: Final = "/events/task-completed"
OTHER_TASK_EVENTS_ROUTE: Final = "/events/task-events"
REMINDER_DUE_ROUTE: Final = "/events/reminder-due"

# Named so that the handler of its route can be bound to it (`rule=` of the apps'
# subscription registry, apps/shared/dapr_subscriptions.py).
TASK_COMPLETED_RULE: Final = RoutingRule(f'event.type == "{TASK_COMPLETED}"', TASK_COMPLETED_ROUTE)

# Bulk delivery: one request (and, for reminders, one transaction) for many events.
# The wait bounds the latency a lone event pays for batching: completions are on a
# user's path (a short wait), reminders have a lateness budget of seconds (a longer
# one, fuller batches). Counts stay well under a request body's limits.
RECURRING_TASK_EVENTS: Final = Subscription(
    AppId.RECURRING,
    TASK_EVENTS_TOPIC,
    rules=(TASK_COMPLETED_RULE,),
    default_route=OTHER_TASK_EVENTS_ROUTE,
    dead_letter_topic=TASK_EVENTS_DLQ_TOPIC,
    bulk=BulkSubscribe(max_messages=100, max_await_ms=20),
)
NOTIFICATION_REMINDERS: Final = Subscription(
    AppId.NOTIFICATION,
    REMINDERS_TOPIC,
    rules=(),
    default_route=REMINDER_DUE_ROUTE,
    dead_letter_topic=REMINDERS_DLQ_TOPIC,
    bulk=BulkSubscribe(max_messages=200, max_await_ms=50),
)
SUBSCRIPTIONS: Final = (RECURRING_TASK_EVENTS, NOTIFICATION_REMINDERS)


def publishing_scopes() -> dict[AppId, tuple[str, ...]]:
    """Topics each app's sidecar may publish to: the publishers' topics, and the
    dead-letter topics the subscribers' sidecars write on their behalf."""
    scopes = dict(PUBLISHERS)
    for subscription in SUBSCRIPTIONS:
        if subscription.dead_letter_topic:
            own = scopes.get(subscription.app_id, ())
            scopes[subscription.app_id] = (*own, subscription.dead_letter_topic)
    return scopes


def subscription_scopes() -> dict[AppId, tuple[str, ...]]:
    """Topics each app may subscribe to; a publisher that subscribes to nothing is listed
    with none, so it may not."""
    scopes: dict[AppId, tuple[str, ...]] = dict.fromkeys(PUBLISHERS, ())
    for subscription in SUBSCRIPTIONS:
        scopes[subscription.app_id] = (*scopes.get(subscription.app_id, ()), subscription.topic)
    return scopes
