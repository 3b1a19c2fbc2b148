"""The stand-in's pure parts: routing rules, CloudEvent envelopes, reading app answers."""

from __future__ import annotations

import json

import pytest

from apps.local.standin.cloudevents import build_envelope
from apps.local.standin.config import RetryPolicy
from apps.local.standin.delivery import Outcome, classify
from apps.local.standin.routing import (
    MatchError,
    SubscriptionError,
    compile_rule,
    parse_subscriptions,
)


class TestRules:
    def test_equality_on_type(self) -> None:
        rule = compile_rule('event.type == "task.completed.v1"', "/done")
        assert rule.matches({"type": "task.completed.v1"})
        assert not rule.matches({"type": "task.created.v1"})

    def test_boolean_operators_and_parentheses(self) -> None:
        rule = compile_rule(
            "!(event.type == 'a') && (event.source == \"x\" || event.source != 'y')", "/p"
        )
        assert rule.matches({"type": "b", "source": "x"})
        assert not rule.matches({"type": "a", "source": "x"})
        assert not rule.matches({"type": "b", "source": "y"})

    def test_nested_attribute(self) -> None:
        rule = compile_rule('event.data.kind == "weekly"', "/p")
        assert rule.matches({"data": {"kind": "weekly"}})

    def test_missing_attribute_is_an_evaluation_error(self) -> None:
        rule = compile_rule('event.subject == "x"', "/p")
        with pytest.raises(MatchError):
            rule.matches({"type": "a"})

    @pytest.mark.parametrize(
        "source",
        ['event.type == "a" &&', "foo.type == 'a'", "event.type === 'a'", "event.type in ['a']"],
    )
    def test_unsupported_or_malformed_rules_are_refused(self, source: str) -> None:
        with pytest.raises(SubscriptionError):
            compile_rule(source, "/p")


class TestSubscriptions:
    def test_v1_and_v2_entries(self) -> None:
        parsed = parse_subscriptions(
            [
                {"pubsubname": "pubsub", "topic": "a", "route": "events/a"},
                {
                    "pubsubname": "pubsub",
                    "topic": "b",
                    "routes": {
                        "rules": [{"match": 'event.type == "x"', "path": "/x"}],
                        "default": "/b",
                    },
                    "deadLetterTopic": "b-dlq",
                },
            ]
        )
        assert [r.path for r in parsed[0].rules] == ["/events/a"]
        assert parsed[1].route_for({"type": "x"}) == "/x"
        assert parsed[1].route_for({"type": "y"}) == "/b"
        assert parsed[1].dead_letter_topic == "b-dlq"

    def test_rules_without_default_leave_unmatched_events_unrouted(self) -> None:
        (subscription,) = parse_subscriptions(
            [
                {
                    "pubsubname": "pubsub",
                    "topic": "b",
                    "routes": {"rules": [{"match": 'event.type == "x"', "path": "/x"}]},
                }
            ]
        )
        assert subscription.route_for({"type": "y"}) is None

    @pytest.mark.parametrize(
        "payload",
        [
            {"pubsubname": "pubsub"},
            [{"topic": "a", "route": "/a"}],
            [{"pubsubname": "pubsub", "topic": "a"}],
            [
                {"pubsubname": "pubsub", "topic": "a", "route": "/a"},
                {"pubsubname": "pubsub", "topic": "a", "route": "/b"},
            ],
        ],
    )
    def test_invalid_declarations_are_refused(self, payload: object) -> None:
        with pytest.raises(SubscriptionError):
            parse_subscriptions(payload)


class TestEnvelope:
    def test_json_payload_with_overrides(self) -> None:
        envelope = build_envelope(
            data=b'{"a": 1}',
            content_type="application/json",
            topic="t",
            pubsub_name="pubsub",
            source="backend",
            metadata={"cloudevent.id": "e1", "cloudevent.type": "x.v1", "partitionKey": "k"},
        )
        assert envelope["id"] == "e1"
        assert envelope["type"] == "x.v1"
        assert envelope["data"] == {"a": 1}
        assert envelope["datacontenttype"] == "application/json"
        assert (envelope["topic"], envelope["pubsubname"], envelope["source"]) == (
            "t",
            "pubsub",
            "backend",
        )
        assert envelope["traceparent"].startswith("00-")
        assert "partitionKey" not in envelope

    def test_defaults_without_overrides(self) -> None:
        envelope = build_envelope(
            data=b"hello",
            content_type="",
            topic="t",
            pubsub_name="pubsub",
            source="s",
            metadata={},
        )
        assert envelope["type"] == "com.dapr.event.sent"
        assert envelope["datacontenttype"] == "text/plain"
        assert envelope["data"] == "hello"
        assert len(envelope["id"]) == 36

    def test_a_cloudevent_payload_is_kept_as_the_envelope(self) -> None:
        mine = {"id": "mine", "type": "t.v1", "source": "me", "specversion": "1.0", "data": {}}
        envelope = build_envelope(
            data=json.dumps(mine).encode(),
            content_type="application/cloudevents+json",
            topic="t",
            pubsub_name="pubsub",
            source="app",
            metadata={},
        )
        assert (envelope["id"], envelope["type"], envelope["source"]) == ("mine", "t.v1", "me")
        assert envelope["topic"] == "t"


class TestAppAnswers:
    @pytest.mark.parametrize(
        ("status", "body", "outcome"),
        [
            (200, b'{"status": "SUCCESS"}', Outcome.SUCCESS),
            (204, b"", Outcome.SUCCESS),
            (200, b"not json", Outcome.SUCCESS),
            (200, b'{"other": 1}', Outcome.SUCCESS),
            (200, b'{"status": "RETRY"}', Outcome.RETRY),
            (200, b'{"status": "DROP"}', Outcome.DROP),
            (200, b'{"status": "success"}', Outcome.RETRY),  # daprd compares case-sensitively
            (404, b"", Outcome.NOT_FOUND),
            (400, b'{"status": "DROP"}', Outcome.RETRY),  # a status body only counts on 2xx
            (500, b"", Outcome.RETRY),
            (503, b"", Outcome.RETRY),
        ],
    )
    def test_classification(self, status: int, body: bytes, outcome: Outcome) -> None:
        assert classify(status, body) is outcome


class TestRetryPolicy:
    def test_constant_and_bounded(self) -> None:
        policy = RetryPolicy(policy="constant", duration=2.0, max_retries=2)
        assert [policy.allows(n) for n in range(4)] == [True, True, False, False]
        assert policy.delay(5) == 2.0

    def test_exponential_grows_to_the_cap(self) -> None:
        policy = RetryPolicy(policy="exponential", initial_interval=1.0, max_interval=4.0)
        delays = [policy.delay(n) for n in range(10)]
        assert all(0 <= d <= 4.0 for d in delays)
        assert max(delays[6:]) > 2.0

    def test_forever(self) -> None:
        assert RetryPolicy(max_retries=-1).allows(10_000)
