"""A partitioned log with consumer groups: the Kafka the stand-in stands on.

What is kept from Kafka: a topic is a fixed number of partitions; a message's key picks
its partition (no key: round robin), so messages of one key stay in order; each
consumer group (one per Dapr app id) owns one committed offset per partition, and the
group's live members share the partitions, so a message goes to one instance of an app.

Durability (`Broker(partitions, data_dir=...)`; in memory without a `data_dir`): each
partition is an append-only file of JSON lines, `topics/<topic>/<partition>.log`, and a
record is written and fsync'd before the publisher gets its ack (Kafka with `acks=all`
and a flushed log); each group's commits are appended to
`groups/<group>/<topic>.offsets` and fsync'd before the commit returns (Kafka's
`__consumer_offsets`). On open, the logs are read back (a torn last line, from a crash
mid-write, is cut off), offsets are the highest committed per partition, and the offset
files are compacted. A message whose commit was not yet written is delivered again
after a restart: at least once, never lost. One process at a time owns a data dir
(an exclusive `flock` on `lock`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import itertools
import json
import os
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar


class BrokerDirInUse(RuntimeError):
    """Another process holds the broker's data dir."""


def _safe(name: str) -> str:
    """A topic or group name as a directory name (they are plain Kafka names)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class _AppendFile:
    """An append-only file: each `append` is one write and one fsync."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, line: bytes) -> None:
        os.write(self._fd, line)
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete records of a JSON-lines file; a torn tail is cut off the file."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    records: list[dict[str, Any]] = []
    good = 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            records.append(json.loads(line))
        except ValueError:
            break
        good += len(line)
    if good != len(raw):
        with path.open("r+b") as handle:
            handle.truncate(good)
            os.fsync(handle.fileno())
    return records


def _encode(message: Message) -> bytes:
    record = {
        "offset": message.offset,
        "sequence": message.sequence,
        "key": message.key,
        "published_at": message.published_at,
        "content_type": message.content_type,
        "metadata": dict(message.metadata),
        "data": base64.b64encode(message.data).decode("ascii"),
    }
    return json.dumps(record, separators=(",", ":")).encode("utf-8") + b"\n"


def _decode(topic: str, partition: int, record: dict[str, Any]) -> Message:
    return Message(
        topic=topic,
        partition=partition,
        offset=int(record["offset"]),
        sequence=int(record["sequence"]),
        key=record["key"],
        data=base64.b64decode(record["data"]),
        content_type=str(record["content_type"]),
        metadata=dict(record["metadata"]),
        published_at=float(record["published_at"]),
    )


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

    def __init__(
        self,
        name: str,
        partitions: int,
        sequence: itertools.count[int],
        directory: Path | None = None,
    ) -> None:
        self.name = name
        self.partitions: list[list[Message]] = [[] for _ in range(partitions)]
        self._sequence = sequence
        self._round_robin = itertools.count()
        self._grown = asyncio.Condition()
        self._files: list[_AppendFile] = []
        if directory is not None:
            for number, log in enumerate(self.partitions):
                path = directory / f"{number}.log"
                log.extend(_decode(name, number, r) for r in _read_lines(path))
                self._files.append(_AppendFile(path))

    def close(self) -> None:
        for file in self._files:
            file.close()
        self._files = []

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
        if self._files:
            self._files[partition].append(_encode(message))  # durable before the ack
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

    async def read_batch(
        self, partition: int, offset: int, *, max_count: int, max_wait: float
    ) -> list[Message]:
        """Messages from `offset` on: waits for the first, then up to `max_wait` seconds
        for more, returning as soon as `max_count` are there (a consumer's batch)."""
        log = self.partitions[partition]
        await self.read(partition, offset)
        wanted = offset + max_count
        if len(log) < wanted and max_wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_wait), self._grown:
                    await self._grown.wait_for(lambda: len(log) >= wanted)
        return log[offset:wanted]

    def messages(self) -> list[Message]:
        """Every message of every partition, in publish order."""
        return sorted(
            (message for log in self.partitions for message in log), key=lambda m: m.sequence
        )


MemberT = TypeVar("MemberT")


class ConsumerGroup(Generic[MemberT]):
    """One app id's position on one topic, and which live instance owns which partition."""

    def __init__(self, group_id: str, topic: Topic, offsets_file: Path | None = None) -> None:
        self.group_id = group_id
        self.topic = topic
        self.committed = [0] * len(topic.partitions)
        self.members: dict[str, MemberT] = {}
        self._assignment: dict[int, str] = {}
        self._changed = asyncio.Condition()
        self._offsets: _AppendFile | None = None
        if offsets_file is not None:
            for record in _read_lines(offsets_file):
                partition, offset = int(record["partition"]), int(record["offset"])
                if 0 <= partition < len(self.committed):
                    self.committed[partition] = max(self.committed[partition], offset)
            compacted = offsets_file.with_suffix(".compacting")
            compacted.parent.mkdir(parents=True, exist_ok=True)
            with compacted.open("wb") as handle:
                handle.write(b"".join(self._offset_line(p) for p in range(len(self.committed))))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(compacted, offsets_file)
            self._offsets = _AppendFile(offsets_file)

    def _offset_line(self, partition: int) -> bytes:
        record = {"partition": partition, "offset": self.committed[partition]}
        return json.dumps(record, separators=(",", ":")).encode("utf-8") + b"\n"

    def close(self) -> None:
        if self._offsets is not None:
            self._offsets.close()
            self._offsets = None

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
        if next_offset <= self.committed[partition]:
            return
        self.committed[partition] = next_offset
        if self._offsets is not None:
            self._offsets.append(self._offset_line(partition))

    def lag(self) -> int:
        """Messages written but not yet committed, over all partitions."""
        return sum(
            len(log) - done for log, done in zip(self.topic.partitions, self.committed, strict=True)
        )


class Broker:
    """Topics are created on first use, like Kafka with auto-create (Strimzi declares them)."""

    def __init__(self, partitions: int, data_dir: Path | None = None) -> None:
        self.partition_count = partitions
        self.data_dir = data_dir
        self.topics: dict[str, Topic] = {}
        self._lock_fd: int | None = None
        self._sequence = itertools.count()
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(data_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                os.close(self._lock_fd)
                self._lock_fd = None
                raise BrokerDirInUse(f"another process uses the broker data in {data_dir}") from exc
            self._check_layout(data_dir)
            topics_dir = data_dir / "topics"
            existing = (
                sorted(p for p in topics_dir.iterdir() if p.is_dir()) if topics_dir.exists() else []
            )
            for path in existing:
                self.topic(path.name)
            last = max(
                (
                    m.sequence
                    for t in self.topics.values()
                    for log in t.partitions
                    for m in log[-1:]
                ),
                default=-1,
            )
            self._sequence = itertools.count(last + 1)
            for topic in self.topics.values():
                topic._sequence = self._sequence

    def _check_layout(self, data_dir: Path) -> None:
        meta = data_dir / "broker.json"
        if meta.exists():
            kept = json.loads(meta.read_text())["partitions"]
            if kept != self.partition_count:
                raise RuntimeError(
                    f"{data_dir} holds topics of {kept} partitions, not {self.partition_count}"
                )
        else:
            meta.write_text(json.dumps({"partitions": self.partition_count}))

    def topic(self, name: str) -> Topic:
        if name not in self.topics:
            directory = None if self.data_dir is None else self.data_dir / "topics" / _safe(name)
            self.topics[name] = Topic(name, self.partition_count, self._sequence, directory)
        return self.topics[name]

    def group(self, group_id: str, topic: str) -> ConsumerGroup[Any]:
        """A new consumer group object on `topic`, at its committed offsets."""
        offsets = (
            None
            if self.data_dir is None
            else self.data_dir / "groups" / _safe(group_id) / f"{_safe(topic)}.offsets"
        )
        return ConsumerGroup(group_id, self.topic(topic), offsets)

    def close(self) -> None:
        for topic in self.topics.values():
            topic.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
