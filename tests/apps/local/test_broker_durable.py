"""The stand-in broker with a data dir keeps messages and committed offsets across a
restart (a new `Broker` on the same dir), cuts a torn tail, and admits one owner."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from apps.local.standin import Mesh
from apps.local.standin.broker import Broker, BrokerDirInUse
from apps.local.system import cluster_mesh_config


async def _publish(broker: Broker, topic: str, n: int, key: str | None = None) -> None:
    for i in range(n):
        await broker.topic(topic).append(
            key=key or f"k{i}",
            data=f"m{i}".encode(),
            content_type="text/plain",
            metadata={"i": str(i)},
        )


def test_messages_and_offsets_survive_a_restart(tmp_path: Path) -> None:
    async def first() -> list[int]:
        broker = Broker(4, tmp_path)
        await _publish(broker, "task-events", 10)
        group = broker.group("recurring", "task-events")
        for partition, log in enumerate(group.topic.partitions):
            if log:
                group.commit(partition, 1)  # the first message of each partition is done
        committed = list(group.committed)
        group.close()
        broker.close()
        return committed

    async def second() -> tuple[list[bytes], int, list[int], list[int]]:
        broker = Broker(4, tmp_path)
        group = broker.group("recurring", "task-events")
        messages = [m.data for m in broker.topic("task-events").messages()]
        await _publish(broker, "task-events", 1, key="later")
        sequences = [m.sequence for m in broker.topic("task-events").messages()]
        lag = group.lag()
        committed = list(group.committed)
        group.close()
        broker.close()
        return messages, lag, sequences, committed

    committed_before = asyncio.run(first())
    messages, lag, sequences, committed = asyncio.run(second())
    assert committed == committed_before and sum(committed) > 0
    assert sorted(messages) == sorted(f"m{i}".encode() for i in range(10))
    assert lag == 11 - sum(committed)
    assert len(set(sequences)) == len(sequences) == 11  # publish order continues


def test_a_torn_last_record_is_cut_off(tmp_path: Path) -> None:
    async def write() -> None:
        broker = Broker(1, tmp_path)
        await _publish(broker, "reminders", 3)
        broker.close()

    asyncio.run(write())
    log = tmp_path / "topics" / "reminders" / "0.log"
    with log.open("ab") as handle:
        handle.write(b'{"offset": 3, "sequ')  # the crash came mid-write

    async def read() -> list[int]:
        broker = Broker(1, tmp_path)
        await _publish(broker, "reminders", 1, key="after")
        offsets = [m.offset for m in broker.topic("reminders").messages()]
        broker.close()
        return offsets

    assert asyncio.run(read()) == [0, 1, 2, 3]
    assert all(json.loads(line) for line in log.read_bytes().splitlines())


def test_one_process_owns_a_data_dir(tmp_path: Path) -> None:
    broker = Broker(2, tmp_path)
    try:
        with pytest.raises(BrokerDirInUse):
            Broker(2, tmp_path)
    finally:
        broker.close()
    with pytest.raises(RuntimeError, match="2 partitions"):
        Broker(3, tmp_path)


def test_replay_republishes_dead_letters_filtered_by_type_and_time(tmp_path: Path) -> None:
    def event(n: int, kind: str) -> bytes:
        return json.dumps({"id": f"e{n}", "type": kind, "data": {}}).encode()

    async def run() -> tuple[int, int, int, list[str]]:
        mesh = Mesh(cluster_mesh_config(data_dir=tmp_path))
        try:
            for n, kind in enumerate(["task.completed.v1", "task.created.v1", "task.completed.v1"]):
                await mesh.broker_publish(
                    topic="task-events-dlq",
                    key=f"t{n}",
                    data=event(n, kind),
                    content_type="application/cloudevents+json",
                    metadata={},
                )
            cut = time.time()
            everything = await mesh.replay_dead_letters("task-events-dlq", to_topic="task-events")
            completed = await mesh.replay_dead_letters(
                "task-events-dlq", to_topic="task-events", event_type="task.completed.v1"
            )
            later = await mesh.replay_dead_letters(
                "task-events-dlq", to_topic="task-events", since=cut + 3600
            )
            ids = [json.loads(m.data)["id"] for m in mesh.messages("task-events")]
            return everything, completed, later, ids
        finally:
            await mesh.close()

    everything, completed, later, ids = asyncio.run(run())
    assert (everything, completed, later) == (3, 2, 0)
    assert sorted(ids) == sorted(["e0", "e1", "e2", "e0", "e2"])
