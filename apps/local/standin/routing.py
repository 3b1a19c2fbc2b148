"""Programmatic subscriptions (`GET /dapr/subscribe`) and their routing rules.

Both response shapes daprd accepts are read: v1 (`route`) and v2 (`routes` with
`rules` and a `default`). Rules are CEL expressions; the stand-in evaluates the subset
that routing on CloudEvent attributes needs — `event.<attr>` paths, string and boolean
literals, `==`, `!=`, `!`, `&&`, `||` and parentheses — and refuses anything else when
the subscription is loaded, as daprd refuses an expression it cannot compile.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Evaluator = Callable[[Mapping[str, Any]], object]


class SubscriptionError(ValueError):
    """The app declared a subscription daprd would refuse."""


class MatchError(RuntimeError):
    """A rule could not be evaluated on an event (for instance a missing attribute)."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|&&|\|\||!|\(|\)|\.)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    source = source.rstrip()
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise SubscriptionError(f"cannot parse rule {source!r} at offset {position}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the token list, producing closures over the event data."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.index = 0

    def parse(self) -> Evaluator:
        evaluator = self._or()
        if self.index != len(self.tokens):
            raise SubscriptionError(f"unexpected {self.tokens[self.index][1]!r} in {self.source!r}")
        return evaluator

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise SubscriptionError(f"rule {self.source!r} ends too early")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _or(self) -> Evaluator:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left = _either(left, right)
        return left

    def _and(self) -> Evaluator:
        left = self._unary()
        while self._peek() == "&&":
            self._take()
            right = self._unary()
            left = _both(left, right)
        return left

    def _unary(self) -> Evaluator:
        if self._peek() == "!":
            self._take()
            inner = self._unary()
            return lambda data: not _as_bool(inner(data))
        return self._comparison()

    def _comparison(self) -> Evaluator:
        left = self._operand()
        if self._peek() in ("==", "!="):
            op = self._take()[1]
            right = self._operand()
            if op == "==":
                return lambda data: left(data) == right(data)
            return lambda data: left(data) != right(data)
        return left

    def _operand(self) -> Evaluator:
        kind, text = self._take()
        if text == "(":
            inner = self._or()
            if self._take()[1] != ")":
                raise SubscriptionError(f"missing ')' in {self.source!r}")
            return inner
        if kind == "string":
            value = bytes(text[1:-1], "utf-8").decode("unicode_escape")
            return lambda data: value
        if kind == "ident" and text in ("true", "false"):
            flag = text == "true"
            return lambda data: flag
        if kind == "ident":
            path = [text]
            while self._peek() == ".":
                self._take()
                path.append(self._take()[1])
            if path[0] != "event":
                raise SubscriptionError(f"unknown variable {path[0]!r} in {self.source!r}")
            return _lookup(tuple(path))
        raise SubscriptionError(f"unexpected {text!r} in {self.source!r}")


def _as_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise MatchError(f"expected a boolean, got {value!r}")
    return value


def _either(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda data: _as_bool(left(data)) or _as_bool(right(data))


def _both(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda data: _as_bool(left(data)) and _as_bool(right(data))


def _lookup(path: tuple[str, ...]) -> Evaluator:
    def evaluate(data: Mapping[str, Any]) -> object:
        value: Any = data
        for part in path:
            if not isinstance(value, Mapping) or part not in value:
                raise MatchError(f"no such key: {'.'.join(path)}")
            value = value[part]
        return value

    return evaluate


@dataclass(frozen=True)
class Rule:
    """`match` (empty: always) selects `path`."""

    match: str
    path: str
    evaluate: Evaluator | None = field(default=None, compare=False, repr=False)

    def matches(self, event: Mapping[str, Any]) -> bool:
        if self.evaluate is None:
            return True
        return _as_bool(self.evaluate({"event": event}))


def compile_rule(match: str, path: str) -> Rule:
    match = match.strip()
    return Rule(match=match, path=path, evaluate=_Parser(match).parse() if match else None)


@dataclass(frozen=True)
class BulkSubscribe:
    """A subscription's `bulkSubscribe` (daprd's `BulkSubscribeJSON`): up to
    `max_messages` messages of one partition per delivery, waiting at most `max_await_ms`
    for a batch to fill. daprd's defaults when a limit is left out: 100 and 1000 ms
    (dapr/dapr pkg/runtime/pubsub/default_bulksub.go: defaultMaxMessagesCount,
    defaultMaxAwaitDurationMs)."""

    max_messages: int = 100
    max_await_ms: int = 1000


@dataclass(frozen=True)
class Subscription:
    """One entry of `GET /dapr/subscribe`, normalised to ordered rules."""

    pubsub_name: str
    topic: str
    rules: tuple[Rule, ...]
    dead_letter_topic: str | None
    metadata: Mapping[str, str]
    bulk: BulkSubscribe | None = None
    """Set when the app asked for bulk delivery (`bulkSubscribe.enabled`)."""

    def route_for(self, event: Mapping[str, Any]) -> str | None:
        """The path for this event, or None when no rule matches (daprd drops it)."""
        for rule in self.rules:
            if rule.matches(event):
                return rule.path
        return None


def _path(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SubscriptionError(f"{where}: route must be a non-empty string")
    return value if value.startswith("/") else "/" + value


def _bulk_subscribe(value: object, where: str) -> BulkSubscribe | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SubscriptionError(f"{where}: bulkSubscribe must be an object")
    if not value.get("enabled"):
        return None
    defaults = BulkSubscribe()
    limits = []
    for name, default in (
        ("maxMessagesCount", defaults.max_messages),
        ("maxAwaitDurationMs", defaults.max_await_ms),
    ):
        given = value.get(name) or default  # 0 or absent: daprd's default
        if not isinstance(given, int) or isinstance(given, bool) or given < 0:
            raise SubscriptionError(f"{where}: bulkSubscribe.{name} must be a positive integer")
        limits.append(given)
    return BulkSubscribe(max_messages=limits[0], max_await_ms=limits[1])


def parse_subscriptions(payload: object) -> list[Subscription]:
    """Read the body of `GET /dapr/subscribe` (v1 and v2 entries may be mixed)."""
    if not isinstance(payload, list):
        raise SubscriptionError("GET /dapr/subscribe must return a JSON list")
    subscriptions: list[Subscription] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(payload):
        where = f"subscription #{index}"
        if not isinstance(entry, dict):
            raise SubscriptionError(f"{where} is not an object")
        pubsub_name, topic = entry.get("pubsubname"), entry.get("topic")
        if not isinstance(pubsub_name, str) or not pubsub_name:
            raise SubscriptionError(f"{where}: pubsubname is required")
        if not isinstance(topic, str) or not topic:
            raise SubscriptionError(f"{where}: topic is required")
        if (pubsub_name, topic) in seen:
            raise SubscriptionError(f"{where}: topic {topic!r} subscribed twice")
        seen.add((pubsub_name, topic))
        rules: list[Rule] = []
        routes = entry.get("routes")
        if isinstance(routes, dict):
            for rule in routes.get("rules") or []:
                if not isinstance(rule, dict):
                    raise SubscriptionError(f"{where}: a rule is not an object")
                path = _path(rule.get("path"), where)
                rules.append(compile_rule(str(rule.get("match", "")), path))
            if routes.get("default"):
                rules.append(compile_rule("", _path(routes["default"], where)))
        elif entry.get("route"):
            rules.append(compile_rule("", _path(entry["route"], where)))
        if not rules:
            raise SubscriptionError(f"{where}: neither route nor routes given")
        dead_letter = entry.get("deadLetterTopic") or None
        metadata = entry.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise SubscriptionError(f"{where}: metadata must be an object")
        subscriptions.append(
            Subscription(
                pubsub_name=pubsub_name,
                topic=topic,
                rules=tuple(rules),
                dead_letter_topic=str(dead_letter) if dead_letter else None,
                metadata={str(k): str(v) for k, v in metadata.items()},
                bulk=_bulk_subscribe(entry.get("bulkSubscribe"), where),
            )
        )
    return subscriptions
