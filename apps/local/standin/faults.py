"""Faults the stand-in injects on demand, to prove the apps survive them.

All fields may be changed while the mesh runs (from the mesh's loop, or through
`MeshThread.call`); each delivery and publish reads them afresh.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    """Knobs for misbehaviour. Zero everywhere means a well-behaved sidecar."""

    # Probability that a delivered message is delivered again, later, to some instance of
    # the same app (what a Kafka rebalance before an offset commit does).
    duplicate_rate: float = 0.0
    # The duplicate arrives after a random pause in this range (seconds), so other events
    # may overtake it.
    duplicate_delay: tuple[float, float] = (0.0, 0.3)
    # Up to this many seconds of random pause before each delivery, drawn per partition:
    # partitions drift apart, so events of different keys arrive reordered (order within
    # a key is kept, as Kafka keeps it within a partition).
    reorder_jitter: float = 0.0
    # Fixed extra latency before every delivery (a slow broker or network).
    delivery_delay: float = 0.0
    # The next this-many publish calls fail as if the broker were unreachable.
    publish_failures: int = 0
    # Independently, each publish call fails with this probability.
    publish_failure_rate: float = 0.0
    # Every publish call fails while this is set (the broker is down).
    broker_down: bool = False
    # Seconds a publish waits *after* the broker stored the message, before the app gets
    # its answer: a crash of the publisher in that window is the "published, not
    # acknowledged" case (the relay publishes the event again).
    stall_after_publish: float = 0.0
    # Seconds a service invocation waits after the target answered, before the caller
    # gets the answer: a crash of the caller in that window is "effect done, caller
    # never knew" (the event is redelivered and the call made again).
    stall_after_invoke: float = 0.0

    def reset(self) -> None:
        """Back to a well-behaved sidecar."""
        fresh = Faults()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))
