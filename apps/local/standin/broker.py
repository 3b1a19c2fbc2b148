"""An in-memory, partitioned log with consumer groups: the Kafka the stand-in stands on.

What is kept from Kafka: a topic is a fixed number of partitions; a message's key picks
its partition (no key: round robin), so messages of one key stay in order; each
consumer group (one per Dapr app id) owns one committed offset per partition, and the
group's live members share the partitions, so a message goes to one instance of an app.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar


@dataclass(frozen=True)
class Message:
    """One record on a partition: the CloudEvent bytes daprd put there, plus metadata."""

    topic: str
    partition: int
    offset: int
    sequence: int
    key: str | None
    data: bytes
    content_type: str
    metadata: Mapping[str, str]
    published_at: float = field(default_factory=time.time)


class Topic:
    """Partitions of append-only lists; waiters wake when a partition grows."""

    def __init__(self, name: str, partitions: int, sequence: itertools.count[int]) -> None:
        self.name = name
        self.partitions: list[list[Message]] = [[] for _ in range(partitions)]
        self._sequence = sequence
        self._round_robin = itertools.count()
        self._grown = asyncio.Condition()

    def partition_for(self, key: str | None) -> int:
        if key is None:
            return next(self._round_robin) % len(self.partitions)
        return zlib.crc32(key.encode("utf-8")) % len(self.partitions)

    async def append(
        self, *, key: str | None, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> Message:
        partition = self.partition_for(key)
        log = self.partitions[partition]
        message = Message(
            topic=self.name,
            partition=partition,
            offset=len(log),
            sequence=next(self._sequence),
            key=key,
            data=data,
            content_type=content_type,
            metadata=dict(metadata),
        )
        log.append(message)
        async with self._grown:
            self._grown.notify_all()
        return message

    async def read(self, partition: int, offset: int) -> Message:
        """The message at `offset`, waiting for it to be written."""
        log = self.partitions[partition]
        if offset < len(log):
            return log[offset]
        async with self._grown:
            await self._grown.wait_for(lambda: offset < len(log))
        return log[offset]

    def messages(self) -> list[Message]:
        """Every message of every partition, in publish order."""
        return sorted(
            (message for log in self.partitions for message in log), key=lambda m: m.sequence
        )


MemberT = TypeVar("MemberT")


class ConsumerGroup(Generic[MemberT]):
    """One app id's position on one topic, and which live instance owns which partition."""

    def __init__(self, group_id: str, topic: Topic) -> None:
        self.group_id = group_id
        self.topic = topic
        self.committed = [0] * len(topic.partitions)
        self.members: dict[str, MemberT] = {}
        self._assignment: dict[int, str] = {}
        self._changed = asyncio.Condition()

    async def join(self, member_id: str, member: MemberT) -> None:
        self.members[member_id] = member
        await self._rebalance()

    async def leave(self, member_id: str) -> None:
        if self.members.pop(member_id, None) is not None:
            await self._rebalance()

    async def _rebalance(self) -> None:
        ids = sorted(self.members)
        self._assignment = (
            {p: ids[p % len(ids)] for p in range(len(self.topic.partitions))} if ids else {}
        )
        async with self._changed:
            self._changed.notify_all()

    async def owner(self, partition: int) -> tuple[str, MemberT]:
        """The member that owns `partition`, waiting until there is one."""
        async with self._changed:
            await self._changed.wait_for(lambda: partition in self._assignment)
            member_id = self._assignment[partition]
            return member_id, self.members[member_id]

    def commit(self, partition: int, next_offset: int) -> None:
        self.committed[partition] = max(self.committed[partition], next_offset)

    def lag(self) -> int:
        """Messages written but not yet committed, over all partitions."""
        return sum(
            len(log) - done for log, done in zip(self.topic.partitions, self.committed, strict=True)
        )


class Broker:
    """Topics are created on first use, like Kafka with auto-create (Strimzi declares them)."""

    def __init__(self, partitions: int) -> None:
        self.partition_count = partitions
        self.topics: dict[str, Topic] = {}
        self._sequence = itertools.count()

    def topic(self, name: str) -> Topic:
        if name not in self.topics:
            self.topics[name] = Topic(name, self.partition_count, self._sequence)
        return self.topics[name]
