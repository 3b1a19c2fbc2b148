"""`todo:kafka`: a Strimzi-run Kafka in the cluster, or an external one."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from infra.settings.types import (
    JvmHeap,
    MemoryQuantity,
    Resources,
    SettingsModel,
    jvm_bytes,
    memory_bytes,
)


class TopicSettings(SettingsModel):
    """Partitions and retention of the event topics and their dead-letter topics."""

    partitions: Annotated[int, Field(ge=1, le=96)] = 3
    retention_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 168
    dlq_retention_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 336


class KafkaStorage(SettingsModel):
    """Broker storage."""

    type: Literal["ephemeral", "persistent-claim"] = "persistent-claim"
    size: MemoryQuantity = "10Gi"


class StrimziKafka(SettingsModel):
    """A Strimzi-managed KRaft cluster."""

    mode: Literal["strimzi"]
    version: Literal["4.2.0", "4.2.1", "4.3.0", "4.3.1"] = "4.3.1"
    """Kafka versions Strimzi 1.2.0 supports."""
    controllers: Annotated[int, Field(ge=0, le=5)] = 0
    """Dedicated KRaft controllers; 0 = the brokers are dual-role nodes."""
    brokers: Annotated[int, Field(ge=1, le=9)] = 1
    replication_factor: Annotated[int, Field(ge=1, le=5)] = 1
    min_insync_replicas: Annotated[int, Field(ge=1, le=5)] = 1
    storage: KafkaStorage = KafkaStorage()
    resources: Resources = Resources(
        cpu_request="250m", memory_request="1Gi", cpu_limit="1", memory_limit="1Gi"
    )
    controller_storage: KafkaStorage = KafkaStorage(size="5Gi")
    """Storage of dedicated controllers: they hold only the cluster metadata log."""
    controller_resources: Resources = Resources(
        cpu_request="100m", memory_request="768Mi", cpu_limit="1", memory_limit="768Mi"
    )
    """Requests and limits of dedicated controllers (no client traffic, small heap)."""
    heap: JvmHeap | None = None
    """Brokers' JVM heap (`-Xms` = `-Xmx`, Strimzi `jvmOptions`); None = Strimzi sizes it
    from the container's memory limit."""
    controller_heap: JvmHeap | None = None
    """Dedicated controllers' JVM heap, as `heap`."""
    topics: TopicSettings = TopicSettings()
    watch_any_namespace: bool = False
    """Let the operator reconcile Kafka clusters in any namespace (base of ephemeral stacks)."""

    @model_validator(mode="after")
    def _heaps(self) -> Self:
        # The JVM needs memory beyond the heap (metaspace, thread stacks, direct buffers)
        # and Kafka leans on the page cache: a heap over 3/4 of the limit ends in OOM kills.
        for name, heap, resources in (
            ("heap", self.heap, self.resources),
            ("controllerHeap", self.controller_heap, self.controller_resources),
        ):
            if heap is not None and 4 * jvm_bytes(heap) > 3 * memory_bytes(resources.memory_limit):
                raise ValueError(
                    f"{name} ({heap}) must be at most 3/4 of the memory limit "
                    f"({resources.memory_limit})"
                )
        return self

    @model_validator(mode="after")
    def _topology(self) -> Self:
        if self.controllers not in (0, 1, 3, 5):
            raise ValueError(
                f"controllers ({self.controllers}) must be 0 (dual-role brokers) or an odd "
                "quorum: 1, 3 or 5"
            )
        if self.replication_factor > self.brokers:
            raise ValueError(
                f"replicationFactor ({self.replication_factor}) must be <= brokers ({self.brokers})"
            )
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"minInsyncReplicas ({self.min_insync_replicas}) must be <= "
                f"replicationFactor ({self.replication_factor})"
            )
        return self


class ExternalKafka(SettingsModel):
    """A Kafka-compatible cluster run elsewhere; the password is `todo:kafkaPassword`."""

    mode: Literal["external"]
    brokers: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*$"),
    ]
    """Comma-separated `host:port` list."""
    username: Annotated[str, StringConstraints(min_length=1)]
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    tls: bool = True
    topics: TopicSettings = TopicSettings()

    @property
    def ports(self) -> list[int]:
        """The brokers' ports (egress NetworkPolicies)."""
        return sorted({int(broker.rsplit(":", 1)[1]) for broker in self.brokers.split(",")})

    @model_validator(mode="after")
    def _tls_for_plain(self) -> Self:
        if self.sasl_mechanism == "PLAIN" and not self.tls:
            raise ValueError("saslMechanism PLAIN sends the password in clear: it needs tls: true")
        return self


KafkaSettings = Annotated[StrimziKafka | ExternalKafka, Field(discriminator="mode")]
