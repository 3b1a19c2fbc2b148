"""The cluster-side picture the sidecars share: broker, app instances, state, faults.

In the cluster each sidecar talks to Kafka and to the other sidecars; here one `Mesh`
object plays both, so a message published through any sidecar reaches the consumer
groups of every app, and an invocation through any sidecar reaches an instance of the
target app.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from apps.local.standin.broker import Broker, ConsumerGroup, Message
from apps.local.standin.channel import AppResponse, AppUnreachable, ChannelError
from apps.local.standin.cloudevents import InvalidCloudEvent, build_envelope
from apps.local.standin.config import MeshConfig
from apps.local.standin.delivery import Deliverer, JournalEntry, Member
from apps.local.standin.errors import DaprError
from apps.local.standin.faults import Faults
from apps.local.standin.protocols import BulkEntry, Instance
from apps.local.standin.routing import Subscription
from apps.local.standin.state import StateStore

log = structlog.get_logger("standin.mesh")

PARTITION_KEY = "partitionKey"


@dataclass
class Mesh:
    config: MeshConfig = field(default_factory=MeshConfig)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self.broker = Broker(self.config.partitions, self.config.data_dir)
        self.state = StateStore()
        self.sidecars: dict[str, Instance] = {}
        self.groups: dict[tuple[str, str], ConsumerGroup[Member]] = {}
        self.deliverer = Deliverer(self)
        self._rng = random.Random(self.config.seed)
        self._instance_numbers: dict[str, itertools.count[int]] = {}
        self._round_robin = itertools.count()
        self._downtime: dict[str, asyncio.Task[None]] = {}
        # Instances taken down on purpose (a supervisor leaves these alone).
        self.held_down: set[str] = set()
        # Calls in progress, by (kind, app id): ("publish", source), ("invoke", caller).
        self.in_flight: Counter[tuple[str, str]] = Counter()

    # -- instances -------------------------------------------------------------------------

    def next_instance_id(self, app_id: str) -> str:
        """The id of one more instance of `app_id`: `<app-id>-<n>`, n counting from 0."""
        number = next(self._instance_numbers.setdefault(app_id, itertools.count()))
        return f"{app_id}-{number}"

    async def add_sidecar(self, sidecar: Instance) -> None:
        """Start the sidecar of one more app instance (built by the caller: see `runner`)."""
        self.sidecars[sidecar.instance_id] = sidecar
        await sidecar.start()

    async def remove_sidecar(self, sidecar: Instance) -> None:
        await self.bring_up_cancel(sidecar)
        await sidecar.stop()
        self.sidecars.pop(sidecar.instance_id, None)

    async def take_down(self, sidecar: Instance, seconds: float | None = None) -> None:
        """The sidecar is absent (ports closed) — for `seconds`, or until `bring_up`."""
        await self.bring_up_cancel(sidecar)
        self.held_down.add(sidecar.instance_id)
        await sidecar.stop()
        log.warning("sidecar taken down", instance=sidecar.instance_id, seconds=seconds)
        if seconds is not None:
            self._downtime[sidecar.instance_id] = asyncio.create_task(
                self._bring_up_later(sidecar, seconds)
            )

    async def _bring_up_later(self, sidecar: Instance, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._downtime.pop(sidecar.instance_id, None)
        self.held_down.discard(sidecar.instance_id)
        await sidecar.start()
        log.warning("sidecar back", instance=sidecar.instance_id)

    async def bring_up_cancel(self, sidecar: Instance) -> None:
        pending = self._downtime.pop(sidecar.instance_id, None)
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)

    async def bring_up(self, sidecar: Instance) -> None:
        await self.bring_up_cancel(sidecar)
        self.held_down.discard(sidecar.instance_id)
        if not sidecar.alive:
            await sidecar.start()

    async def crash(self, sidecar: Instance) -> None:
        """The sidecar dies (as daprd killed by SIGKILL): ports gone, deliveries in flight
        abandoned uncommitted. Unlike `take_down`, nothing here brings it back: that is
        the supervisor's job (`apps.local.supervisor`)."""
        await self.bring_up_cancel(sidecar)
        self.held_down.discard(sidecar.instance_id)
        await sidecar.stop()
        log.warning("sidecar crashed", instance=sidecar.instance_id)

    async def restart(self, sidecar: Instance) -> None:
        """Start a crashed sidecar again on its ports (the supervisor calls this)."""
        if not sidecar.alive:
            await sidecar.start()

    def down(self, sidecar: Instance) -> bool:
        """Whether `sidecar` is dead without having been taken down on purpose."""
        return not sidecar.alive and sidecar.instance_id not in self.held_down

    async def join(self, sidecar: Instance, subscription: Subscription) -> None:
        """The instance joins its app's consumer group on the subscribed topic."""
        key = (sidecar.app_id, subscription.topic)
        group = self.groups.get(key)
        if group is None:
            group = self.broker.group(sidecar.app_id, subscription.topic)
            self.groups[key] = group
            self.deliverer.start_group(group)
        await group.join(sidecar.instance_id, Member(sidecar, subscription))

    async def detach(self, sidecar: Instance) -> None:
        for (app_id, _), group in self.groups.items():
            if app_id == sidecar.app_id:
                await group.leave(sidecar.instance_id)

    async def close(self) -> None:
        for sidecar in list(self.sidecars.values()):
            await self.remove_sidecar(sidecar)
        await self.deliverer.close()
        for group in self.groups.values():
            group.close()
        self.broker.close()

    # -- pub/sub ---------------------------------------------------------------------------

    async def publish(
        self,
        *,
        source: str,
        pubsub_name: str,
        topic: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str],
        call_trace: Mapping[str, str] | None = None,
    ) -> Message:
        """A publish call from an app through its sidecar (`call_trace`: the call's own
        `traceparent`/`tracestate`, which the CloudEvent carries unless overridden)."""
        if pubsub_name != self.config.pubsub_name:
            raise DaprError.pubsub_not_found(pubsub_name)
        if not topic:
            raise DaprError.topic_empty(pubsub_name)
        self._inject_publish_fault(topic)
        try:
            envelope = build_envelope(
                data=data,
                content_type=content_type,
                topic=topic,
                pubsub_name=pubsub_name,
                source=source,
                metadata=metadata,
                call_trace=call_trace,
            )
        except InvalidCloudEvent as exc:
            raise DaprError.bad_cloudevent(str(exc)) from exc
        broker_metadata = {k: v for k, v in metadata.items() if not k.startswith("cloudevent.")}
        self.in_flight["publish", source] += 1
        try:
            message = await self.broker_publish(
                topic=topic,
                key=metadata.get(PARTITION_KEY) or None,
                data=json.dumps(envelope).encode("utf-8"),
                content_type="application/cloudevents+json",
                metadata=broker_metadata,
            )
            if self.faults.stall_after_publish > 0:
                await asyncio.sleep(self.faults.stall_after_publish)
            return message
        finally:
            self.in_flight["publish", source] -= 1

    async def publish_bulk(
        self,
        *,
        source: str,
        pubsub_name: str,
        topic: str,
        entries: Sequence[BulkEntry],
        metadata: Mapping[str, str],
        call_trace: Mapping[str, str] | None = None,
    ) -> dict[str, DaprError]:
        """A bulk publish call: each entry published on its own, with the request's
        metadata under its own (entry keys win, as in daprd's
        `utils.PopulateMetadataForBulkPublishEntry`); returns the failed entries by id.

        Raises before publishing anything when an entry id is empty or repeated (daprd
        refuses the whole request). Faults are drawn per entry, so one call can fail
        in part, as a Kafka bulk produce can.
        """
        if pubsub_name != self.config.pubsub_name:
            raise DaprError.pubsub_not_found(pubsub_name)
        if not topic:
            raise DaprError.topic_empty(pubsub_name)
        seen: set[str] = set()
        for entry in entries:
            if not entry.entry_id or entry.entry_id in seen:
                raise DaprError.bad_bulk_entry(topic)
            seen.add(entry.entry_id)
        failed: dict[str, DaprError] = {}
        for entry in entries:
            try:
                await self.publish(
                    source=source,
                    pubsub_name=pubsub_name,
                    topic=topic,
                    data=entry.data,
                    content_type=entry.content_type,
                    metadata={**metadata, **entry.metadata},
                    call_trace=call_trace,
                )
            except DaprError as error:
                failed[entry.entry_id] = error
        return failed

    def _inject_publish_fault(self, topic: str) -> None:
        faults = self.faults
        if faults.broker_down:
            raise DaprError.publish_failed(topic, "kafka: client has run out of available brokers")
        if faults.publish_failures > 0:
            faults.publish_failures -= 1
            raise DaprError.publish_failed(topic, "kafka: injected transient failure")
        if faults.publish_failure_rate > 0 and self._rng.random() < faults.publish_failure_rate:
            raise DaprError.publish_failed(topic, "kafka: injected transient failure")

    async def broker_publish(
        self,
        *,
        topic: str,
        key: str | None,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str],
    ) -> Message:
        """Write straight to the broker (the runtime's own publishes, e.g. dead letters)."""
        if self.faults.broker_down:
            raise DaprError.publish_failed(topic, "kafka: client has run out of available brokers")
        return await self.broker.topic(topic).append(
            key=key, data=data, content_type=content_type, metadata=metadata
        )

    def messages(self, topic: str) -> list[Message]:
        """Everything on `topic`, in publish order (the dead-letter topics included)."""
        return self.broker.topic(topic).messages()

    def events(self, topic: str) -> list[dict[str, Any]]:
        """The CloudEvents on `topic`, parsed."""
        return [json.loads(message.data) for message in self.messages(topic)]

    @property
    def journal(self) -> list[JournalEntry]:
        return list(self.deliverer.journal)

    def lag(self, app_id: str, topic: str) -> int:
        group = self.groups.get((app_id, topic))
        return len(self.messages(topic)) if group is None else group.lag()

    async def replay_dead_letters(
        self,
        dead_letter_topic: str,
        *,
        to_topic: str,
        event_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """Publish the dead letters of `dead_letter_topic` (bytes, key and metadata as they
        are) to `to_topic` again; `event_type`, `since` and `until` (epoch seconds of
        the dead-lettering) narrow them. The consumers' idempotency makes this safe to
        repeat. Returns how many were republished."""
        chosen = []
        for message in self.messages(dead_letter_topic):
            if since is not None and message.published_at < since:
                continue
            if until is not None and message.published_at > until:
                continue
            if event_type is not None:
                try:
                    kind = json.loads(message.data).get("type")
                except (ValueError, AttributeError):
                    kind = None
                if kind != event_type:
                    continue
            chosen.append(message)
        for message in chosen:
            await self.broker_publish(
                topic=to_topic,
                key=message.key,
                data=message.data,
                content_type=message.content_type,
                metadata={
                    **message.metadata,
                    "replayedFrom": dead_letter_topic,
                    "replayedAt": str(time.time()),
                },
            )
        log.warning(
            "dead letters replayed", topic=dead_letter_topic, to=to_topic, count=len(chosen)
        )
        return len(chosen)

    # -- service invocation ----------------------------------------------------------------

    def _allowed(self, caller: str, target: str, verb: str, path: str) -> bool:
        rules = self.config.access_control.get(target)
        if rules is None:
            return True
        return any(
            rule.caller == caller
            and rule.verb.upper() in (verb.upper(), "*")
            and path.startswith(rule.path_prefix)
            for rule in rules
        )

    def _instances(self, app_id: str) -> list[Instance]:
        return [s for s in self.sidecars.values() if s.app_id == app_id and s.alive]

    async def invoke(
        self,
        *,
        caller: str,
        target_app: str,
        verb: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> AppResponse:
        """Route one call from app `caller` to an instance of `target_app`, with its app token."""
        if not self._allowed(caller, target_app, verb, path):
            raise DaprError.invoke_denied(caller, target_app)
        forwarded = {
            **headers,
            "dapr-caller-app-id": caller,
            "dapr-callee-app-id": target_app,
        }
        policy = self.config.service_retry
        retries = 0
        while True:
            instances = self._instances(target_app)
            reason = f"no healthy instance of app {target_app}"
            if instances:
                target = instances[next(self._round_robin) % len(instances)]
                self.in_flight["invoke", caller] += 1
                try:
                    answer = await target.channel.request(
                        verb, path, content=body, headers=forwarded, query=query
                    )
                    if self.faults.stall_after_invoke > 0:
                        await asyncio.sleep(self.faults.stall_after_invoke)
                    return answer
                except AppUnreachable as exc:
                    reason = f"connection refused by {target.instance_id}: {exc}"
                except ChannelError as exc:
                    # The request may have reached the app: never resend it.
                    raise DaprError.invoke_failed(target_app, str(exc)) from exc
                finally:
                    self.in_flight["invoke", caller] -= 1
            if not policy.allows(retries):
                raise DaprError.invoke_failed(target_app, reason)
            await asyncio.sleep(policy.delay(retries, self._rng))
            retries += 1

    # -- introspection ---------------------------------------------------------------------

    def describe(self, sidecar: Instance) -> dict[str, Any]:
        """What `GET /v1.0/metadata` reports for `sidecar`."""
        config = self.config
        return {
            "id": sidecar.app_id,
            "runtimeVersion": "standin",
            "components": [
                {"name": config.pubsub_name, "type": "pubsub.kafka", "version": "v1"},
                {"name": config.state_store_name, "type": "state.postgresql", "version": "v1"},
                {
                    "name": config.secret_store_name,
                    "type": "secretstores.kubernetes",
                    "version": "v1",
                },
                *(
                    {"name": binding.name, "type": "bindings.cron", "version": "v1"}
                    for binding in sidecar.spec.bindings
                ),
            ],
            "subscriptions": [
                {
                    "pubsubname": s.pubsub_name,
                    "topic": s.topic,
                    "deadLetterTopic": s.dead_letter_topic,
                    "rules": [{"match": r.match, "path": r.path} for r in s.rules],
                }
                for s in sidecar.subscriptions
            ],
        }
