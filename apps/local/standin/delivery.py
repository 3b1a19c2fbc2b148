"""Delivering broker messages to apps the way daprd does (HTTP app channel).

Per message, in order: parse the CloudEvent (unparseable → dead-letter topic, or back
to the component); pick the route from the rules (no match → dropped, and sent to the
dead-letter topic when one is set, as daprd does); POST it as
`application/cloudevents+json` and read the answer:

* 2xx with `{"status": "SUCCESS"}`, an empty status, an empty or non-JSON body → done;
* 2xx with `RETRY`, or an unknown status, and any other non-2xx except 404, and an
  unreachable app → retried under the resiliency policy;
* 2xx with `DROP` → dropped, and sent to the dead-letter topic when one is set;
* 404 → dropped with an error log, *not* dead-lettered.

When the policy's retries run out the message goes to the dead-letter topic; without one
the error goes back to the Kafka component, which retries it (forever, by default).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog

from apps.local.standin.broker import ConsumerGroup, Message
from apps.local.standin.channel import ChannelError
from apps.local.standin.protocols import DeliveryHost, Instance
from apps.local.standin.routing import MatchError, Subscription

log = structlog.get_logger("standin.delivery")

CLOUDEVENT_CONTENT_TYPE = "application/cloudevents+json"
# The `type` of a bulk delivery's envelope (components-contrib pubsub/envelope.go).
BULK_EVENT_TYPE = "com.dapr.event.sent.bulk"


class Outcome(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    DROP = "drop"
    NOT_FOUND = "not_found"
    UNREACHABLE = "unreachable"
    UNMATCHED = "unmatched"
    UNPARSEABLE = "unparseable"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Member:
    """One app instance in a consumer group, with the subscription its app declared."""

    sidecar: Instance
    subscription: Subscription


@dataclass(frozen=True)
class JournalEntry:
    """What happened to one delivery attempt (tests read these)."""

    at: float
    app_id: str
    instance_id: str
    topic: str
    partition: int
    offset: int
    event_id: str | None
    event_type: str | None
    path: str | None
    outcome: Outcome
    status: int | None
    attempt: int
    duplicate: bool
    bulk: bool = False
    """Delivered in a bulk request (one of its entries)."""


def _bulk_statuses(status: int, body: bytes) -> dict[str, str] | None:
    """The per-entry statuses of a 2xx answer to a bulk delivery (entry id → status);
    None when there are none to read (a non-2xx, or a body that is not the expected
    JSON, after which daprd retries every entry)."""
    if not 200 <= status <= 299:
        return None
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return None
    entries = answer.get("statuses") if isinstance(answer, dict) else None
    if not isinstance(entries, list):
        return {}
    return {
        str(entry.get("entryId")): str(entry.get("status") or "")
        for entry in entries
        if isinstance(entry, dict)
    }


def classify(status: int, body: bytes) -> Outcome:
    """daprd's reading of an app's answer to a delivery."""
    if 200 <= status <= 299:
        try:
            answer: Any = json.loads(body) if body.strip() else None
        except ValueError:
            return Outcome.SUCCESS  # daprd: "skipping status check"
        declared = answer.get("status", "") if isinstance(answer, dict) else ""
        if declared in ("", None, "SUCCESS"):
            return Outcome.SUCCESS
        if declared == "DROP":
            return Outcome.DROP
        return Outcome.RETRY  # RETRY, or a status daprd does not know
    if status == 404:
        return Outcome.NOT_FOUND
    return Outcome.RETRY


class Deliverer:
    """Runs the per-partition consumers of every consumer group."""

    def __init__(self, mesh: DeliveryHost, journal_size: int = 200_000) -> None:
        self._mesh = mesh
        self._rng = random.Random(mesh.config.seed)
        self.journal: deque[JournalEntry] = deque(maxlen=journal_size)
        self._tasks: set[asyncio.Task[None]] = set()

    def start_group(self, group: ConsumerGroup[Member]) -> None:
        for partition in range(len(group.topic.partitions)):
            self._spawn(self._consume(group, partition))

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _consume(self, group: ConsumerGroup[Member], partition: int) -> None:
        """One partition of one group, in offset order: one message at a time, or a batch
        at a time when the owning instance's subscription is a bulk one."""
        while True:
            offset = group.committed[partition]
            await group.topic.read(partition, offset)
            _, member = await group.owner(partition)
            bulk = member.subscription.bulk
            try:
                if bulk is None:
                    message = await group.topic.read(partition, offset)
                    done = 1 if await self.process(group, member, message) else 0
                else:
                    batch = await group.topic.read_batch(
                        partition,
                        offset,
                        max_count=bulk.max_messages,
                        max_wait=bulk.max_await_ms / 1000,
                    )
                    done = await self.process_bulk(group, member, batch)
            except Exception:  # a stand-in bug must not silently stall a partition forever
                log.exception("delivery crashed", topic=group.topic.name, offset=offset)
                done = 0
                await asyncio.sleep(1.0)
            if done:
                group.commit(partition, offset + done)

    async def process(
        self,
        group: ConsumerGroup[Member],
        member: Member,
        message: Message,
        *,
        duplicate: bool = False,
    ) -> bool:
        """Deliver one message to one instance. True: the offset may be committed."""
        sidecar, subscription = member.sidecar, member.subscription
        dead_letter = subscription.dead_letter_topic
        event = self._parse(member, message, duplicate)
        if event is None:
            return await self._dead_letter_or_give_back(member, message, dead_letter)
        try:
            path = subscription.route_for(event)
        except MatchError as exc:
            log.error("routing rule failed", event_id=event.get("id"), error=str(exc))
            return await self._dead_letter_or_give_back(member, message, dead_letter)
        if path is None:
            self._note(member, message, event, Outcome.UNMATCHED, None, 0, duplicate)
            if dead_letter:
                await self._dead_letter(member, message, dead_letter, event)
            return True

        policy = self._mesh.config.pubsub_inbound_retry
        retries = 0
        while True:
            if not sidecar.alive:
                return False  # the instance went away: the partition moves, the message stays
            await self._pause()
            outcome, status = await self._attempt(sidecar, path, message, event)
            self._note(member, message, event, outcome, status, retries + 1, duplicate, path)
            if outcome is Outcome.SUCCESS:
                if not duplicate:
                    self._maybe_duplicate(group, message)
                return True
            if outcome is Outcome.NOT_FOUND:
                log.error(
                    "non-retriable error returned from app while processing pub/sub event",
                    event_id=event.get("id"),
                    app_id=sidecar.app_id,
                    path=path,
                    status=status,
                )
                return True
            if outcome is Outcome.DROP:
                log.warning("DROP status returned from app", event_id=event.get("id"))
                if dead_letter and not await self._dead_letter(member, message, dead_letter, event):
                    return await self._give_back()
                return True
            if policy is None or not policy.allows(retries):
                break
            await asyncio.sleep(policy.delay(retries, self._rng))
            retries += 1
        if dead_letter and await self._dead_letter(member, message, dead_letter, event):
            return True
        return await self._give_back()

    async def process_bulk(
        self,
        group: ConsumerGroup[Member],
        member: Member,
        messages: Sequence[Message],
        *,
        duplicate: bool = False,
    ) -> int:
        """Deliver a batch of one partition's messages as daprd's bulk subscriber does.

        Returns how many messages, from the first, may be committed. As in dapr/dapr
        pkg/runtime/subscription/bulksubscription.go and postman/http/http.go
        `DeliverBulk`:

        * an entry that does not parse, or whose routing rule fails, is an error; one
          that matches no rule is dropped (and dead-lettered when a topic is set);
        * entries are grouped by route, one POST per route, body
          `{"id", "type": "com.dapr.event.sent.bulk", "topic", "pubsubname", "metadata",
          "entries": [{"entryId", "event", "metadata", "contentType"}]}`;
        * the answer `{"statuses": [{"entryId", "status"}]}`: SUCCESS is done, DROP is
          done and dead-lettered, RETRY, an empty or unknown status, and an entry with no
          status at all are errors; a 404 drops the whole request without dead letters,
          any other non-2xx (or an unreachable app) makes every entry an error;
        * errors are retried under the inbound policy, resending only the failed
          entries (bulkresiliency.go); still failing, they go to the dead-letter topic
          in one bulk publish, and the whole batch is done;
        * without a dead-letter topic (or when it fails) the error goes back to the
          Kafka component, which commits up to the first failed entry and delivers the
          rest again (components-contrib common/component/kafka/consumer.go
          `doBulkCallback`), so entries after it that had succeeded come again.
        """
        sidecar, subscription = member.sidecar, member.subscription
        dead_letter = subscription.dead_letter_topic
        errors: dict[int, str] = {}
        events: dict[int, dict[str, Any]] = {}
        by_path: dict[str, list[int]] = {}
        for index, message in enumerate(messages):
            parsed = self._parse(member, message, duplicate)
            if parsed is None:
                errors[index] = "unparseable"
                continue
            event = parsed
            try:
                path = subscription.route_for(event)
            except MatchError as exc:
                log.error("routing rule failed", event_id=event.get("id"), error=str(exc))
                errors[index] = "routing failed"
                continue
            if path is None:
                self._note(member, message, event, Outcome.UNMATCHED, None, 0, duplicate)
                if dead_letter:
                    await self._dead_letter(member, message, dead_letter, event)
                continue
            events[index] = event
            by_path.setdefault(path, []).append(index)

        policy = self._mesh.config.pubsub_inbound_retry
        for path, pending in by_path.items():
            retries = 0
            while pending:
                if not sidecar.alive:
                    return 0  # the instance went away: the partition moves, nothing commits
                await self._pause()
                failed = await self._attempt_bulk(
                    member, path, messages, events, pending, retries + 1, duplicate
                )
                pending = [index for index in pending if index in failed]
                if not pending or policy is None or not policy.allows(retries):
                    errors.update({index: failed[index] for index in pending})
                    break
                await asyncio.sleep(policy.delay(retries, self._rng))
                retries += 1

        if errors and dead_letter:
            lost = [
                index
                for index in sorted(errors)
                if not await self._dead_letter(
                    member, messages[index], dead_letter, events.get(index)
                )
            ]
            errors = {index: errors[index] for index in lost}
        if errors:
            first = min(errors)
            if first == 0:
                await self._give_back()
            return first
        if not duplicate:
            for message in messages:
                self._maybe_duplicate(group, message)
        return len(messages)

    async def _attempt_bulk(
        self,
        member: Member,
        path: str,
        messages: Sequence[Message],
        events: Mapping[int, dict[str, Any]],
        indexes: Sequence[int],
        attempt: int,
        duplicate: bool,
    ) -> dict[int, str]:
        """One bulk POST of `indexes` to `path`; returns the entries that failed."""
        sidecar = member.sidecar
        topic = messages[0].topic
        envelope = {
            "id": str(uuid.uuid4()),
            "type": BULK_EVENT_TYPE,
            "topic": topic,
            "pubsubname": member.subscription.pubsub_name,
            "metadata": {},
            "entries": [
                {
                    "entryId": str(index),
                    "event": events[index],
                    "metadata": dict(messages[index].metadata),
                    "contentType": CLOUDEVENT_CONTENT_TYPE,
                }
                for index in indexes
            ],
        }
        try:
            response = await sidecar.channel.request(
                "POST",
                path,
                content=json.dumps(envelope).encode("utf-8"),
                headers={"content-type": "application/json"},
            )
        except ChannelError as exc:
            if sidecar.alive:
                log.warning("app unreachable", app_id=sidecar.app_id, error=str(exc))
            for index in indexes:
                self._note_bulk(
                    member,
                    messages[index],
                    events[index],
                    Outcome.UNREACHABLE,
                    None,
                    attempt,
                    duplicate,
                    path,
                )
            return dict.fromkeys(indexes, "app unreachable")
        if response.status == 404:
            log.error(
                "non-retriable error returned from app while processing bulk pub/sub event",
                app_id=sidecar.app_id,
                path=path,
                status=response.status,
            )
            for index in indexes:
                self._note_bulk(
                    member,
                    messages[index],
                    events[index],
                    Outcome.NOT_FOUND,
                    404,
                    attempt,
                    duplicate,
                    path,
                )
            return {}
        statuses = _bulk_statuses(response.status, response.content)
        failed: dict[int, str] = {}
        for index in indexes:
            status = statuses.get(str(index)) if statuses is not None else None
            if status == "SUCCESS":
                outcome = Outcome.SUCCESS
            elif status == "DROP":
                outcome = Outcome.DROP
            else:
                outcome = Outcome.RETRY
                failed[index] = f"status {status!r} (HTTP {response.status})"
            self._note_bulk(
                member,
                messages[index],
                events[index],
                outcome,
                response.status,
                attempt,
                duplicate,
                path,
            )
            if outcome is Outcome.DROP:
                log.warning("DROP status returned from app", event_id=events[index].get("id"))
                dead_letter = member.subscription.dead_letter_topic
                if dead_letter:
                    # daprd sends it on its own, ignoring a failure (`_ = h.sendToDeadLetter`).
                    await self._dead_letter(member, messages[index], dead_letter, events[index])
        return failed

    def _note_bulk(
        self,
        member: Member,
        message: Message,
        event: dict[str, Any],
        outcome: Outcome,
        status: int | None,
        attempt: int,
        duplicate: bool,
        path: str,
    ) -> None:
        self._note(member, message, event, outcome, status, attempt, duplicate, path, bulk=True)

    async def _dead_letter_or_give_back(
        self, member: Member, message: Message, dead_letter: str | None
    ) -> bool:
        if dead_letter and await self._dead_letter(member, message, dead_letter, None):
            return True
        return await self._give_back()

    async def _give_back(self) -> bool:
        """The runtime returned an error to the Kafka component: it waits, then redelivers."""
        await asyncio.sleep(self._mesh.config.component_retry.delay(0, self._rng))
        return False

    async def _dead_letter(
        self, member: Member, message: Message, topic: str, event: dict[str, Any] | None
    ) -> bool:
        """Publish the original message, bytes and metadata unchanged, to `topic`."""
        try:
            await self._mesh.broker_publish(
                topic=topic,
                key=message.key,
                data=message.data,
                content_type=message.content_type,
                metadata=message.metadata,
            )
        except Exception as exc:  # the broker refused: the message must not be lost
            log.error("error sending message to dead letter", topic=topic, error=str(exc))
            return False
        log.warning(
            "message sent to dead-letter topic",
            origin=message.topic,
            dead_letter_topic=topic,
            event_id=event.get("id") if event else None,
        )
        self._note(member, message, event, Outcome.DEAD_LETTERED, None, 0, False)
        return True

    async def _pause(self) -> None:
        faults = self._mesh.faults
        pause = faults.delivery_delay
        if faults.reorder_jitter > 0:
            pause += self._rng.uniform(0.0, faults.reorder_jitter)
        if pause > 0:
            await asyncio.sleep(pause)

    async def _attempt(
        self, sidecar: Instance, path: str, message: Message, event: dict[str, Any]
    ) -> tuple[Outcome, int | None]:
        headers = {"content-type": CLOUDEVENT_CONTENT_TYPE}
        # daprd delivers the CloudEvent's trace context as W3C headers, so the
        # subscriber's request continues the publisher's trace (docs.dapr.io,
        # "Distributed tracing overview": pub/sub trace context propagation).
        for name in ("traceparent", "tracestate"):
            if event.get(name):
                headers[name] = str(event[name])
        try:
            response = await sidecar.channel.request(
                "POST", path, content=message.data, headers=headers
            )
        except ChannelError as exc:
            if sidecar.alive:  # an absent sidecar's own deliveries end quietly
                log.warning("app unreachable", app_id=sidecar.app_id, error=str(exc))
            return Outcome.UNREACHABLE, None
        return classify(response.status, response.content), response.status

    def _maybe_duplicate(self, group: ConsumerGroup[Member], message: Message) -> None:
        faults = self._mesh.faults
        if faults.duplicate_rate <= 0 or self._rng.random() >= faults.duplicate_rate:
            return
        low, high = faults.duplicate_delay
        self._spawn(self._redeliver(group, message, self._rng.uniform(low, high)))

    async def _redeliver(
        self, group: ConsumerGroup[Member], message: Message, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        members = [m for m in group.members.values() if m.sidecar.alive]
        if members:
            member = self._rng.choice(members)
            if member.subscription.bulk is not None:
                await self.process_bulk(group, member, [message], duplicate=True)
            else:
                await self.process(group, member, message, duplicate=True)

    def _parse(self, member: Member, message: Message, duplicate: bool) -> dict[str, Any] | None:
        """The message's CloudEvent, or None (logged and noted as unparseable)."""
        try:
            event = json.loads(message.data)
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            log.error("cannot parse CloudEvent", topic=message.topic, error=str(exc))
            self._note(member, message, None, Outcome.UNPARSEABLE, None, 0, duplicate)
            return None
        return event

    def _note(
        self,
        member: Member,
        message: Message,
        event: dict[str, Any] | None,
        outcome: Outcome,
        status: int | None,
        attempt: int,
        duplicate: bool,
        path: str | None = None,
        *,
        bulk: bool = False,
    ) -> None:
        self.journal.append(
            JournalEntry(
                at=time.time(),
                app_id=member.sidecar.app_id,
                instance_id=member.sidecar.instance_id,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                event_id=str(event.get("id")) if event else None,
                event_type=str(event.get("type")) if event else None,
                path=path,
                outcome=outcome,
                status=status,
                attempt=attempt,
                duplicate=duplicate,
                bulk=bulk,
            )
        )
