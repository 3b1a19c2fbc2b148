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
from collections import deque
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
        """One partition of one group: strictly one message at a time, in offset order."""
        while True:
            message = await group.topic.read(partition, group.committed[partition])
            _, member = await group.owner(partition)
            try:
                done = await self.process(group, member, message)
            except Exception:  # a stand-in bug must not silently stall a partition forever
                log.exception("delivery crashed", topic=message.topic, offset=message.offset)
                done = False
                await asyncio.sleep(1.0)
            if done:
                group.commit(partition, message.offset + 1)

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
        try:
            event = json.loads(message.data)
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            log.error("cannot parse CloudEvent", topic=message.topic, error=str(exc))
            self._note(member, message, None, Outcome.UNPARSEABLE, None, 0, duplicate)
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
            await self.process(group, self._rng.choice(members), message, duplicate=True)

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
            )
        )
