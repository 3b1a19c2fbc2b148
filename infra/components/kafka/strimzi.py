"""The Strimzi objects' specs: operator values, node pools, the Kafka, topics and the user.

Plain data from the settings; the component (`__init__.py`) creates the resources.
"""

from __future__ import annotations

from typing import Any

from apps.contracts.events import DEAD_LETTER_TOPICS, TOPICS
from apps.contracts.services import APP_IDS
from infra.components.kube import DAPR_POD_LABEL, KAFKA_CLIENTS_NAMESPACE_LABEL
from infra.settings import KafkaStorage, Resources, StrimziKafka

STRIMZI_CHART = "strimzi-kafka-operator"
STRIMZI_CHART_VERSION = "1.2.0"
STRIMZI_REPOSITORY = "https://strimzi.io/charts/"
STRIMZI_API = "kafka.strimzi.io/v1"
LISTENER_PORT = 9092
# Broker limit for one record batch; Dapr's maxMessageBytes stays just below it.
MESSAGE_MAX_BYTES = 1048588
DLQ_PARTITIONS = 1

NodePool = tuple[str, int, list[str], KafkaStorage, Resources, str | None]
"""One KafkaNodePool: name, replicas, roles, storage, resources and heap."""


def operator_values(settings: StrimziKafka) -> dict[str, Any]:
    """Values for the strimzi-kafka-operator chart."""
    return {
        "watchAnyNamespace": settings.watch_any_namespace,
        "replicas": 1,
        "extraEnvs": [
            # Operands get restricted-profile security contexts.
            {"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"}
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "384Mi"},
            "limits": {"cpu": "1", "memory": "384Mi"},
        },
        "generateNetworkPolicy": True,
        "generatePodDisruptionBudget": True,
    }


def node_pools(settings: StrimziKafka) -> list[NodePool]:
    """One dual-role pool on small stacks, or dedicated controller and broker pools."""
    broker = (settings.storage, settings.resources, settings.heap)
    if settings.controllers == 0:
        return [("dual-role", settings.brokers, ["controller", "broker"], *broker)]
    return [
        (
            "controllers",
            settings.controllers,
            ["controller"],
            settings.controller_storage,
            settings.controller_resources,
            settings.controller_heap,
        ),
        ("brokers", settings.brokers, ["broker"], *broker),
    ]


def node_pool_spec(pool: NodePool) -> dict[str, Any]:
    """The KafkaNodePool's spec."""
    name, replicas, roles, storage, sizing, heap = pool
    # An explicit heap (-Xms = -Xmx: no resizing pauses) leaves the rest of the
    # container's limit to metaspace, threads, direct buffers and the page cache.
    jvm = {"jvmOptions": {"-Xms": heap, "-Xmx": heap}} if heap else {}
    return {
        "replicas": replicas,
        "roles": roles,
        "storage": _storage(storage),
        **jvm,
        "resources": {
            "requests": {
                "cpu": sizing.cpu_request,
                "memory": sizing.memory_request,
            },
            "limits": {
                "cpu": sizing.cpu_limit,
                "memory": sizing.memory_limit,
            },
        },
        "template": {
            "pod": {
                # One replica per node while there are nodes to spare, so
                # one node loss costs one broker (ISR 2 of 3 stays) and one
                # controller (quorum 2 of 3). A hard rule: packing two
                # together to save memory would trade that away; a replica
                # that cannot be placed waits for the autoscaler instead.
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": {"strimzi.io/pool-name": name}},
                    }
                ]
            }
        },
    }


def _storage(storage: KafkaStorage) -> dict[str, Any]:
    if storage.type == "ephemeral":
        return {"type": "ephemeral", "sizeLimit": storage.size}
    return {
        "type": "jbod",
        "volumes": [
            {
                "id": 0,
                "type": "persistent-claim",
                "size": storage.size,
                "deleteClaim": False,
                "kraftMetadata": "shared",
            }
        ],
    }


def kafka_spec(settings: StrimziKafka) -> dict[str, Any]:
    """The Kafka's spec: the SCRAM listener, replication, the operators and the exporter."""
    rf, isr = settings.replication_factor, settings.min_insync_replicas
    small = {"requests": {"cpu": "50m", "memory": "128Mi"}}
    return {
        "kafka": {
            "version": settings.version,
            "listeners": [
                {
                    "name": "plain",
                    "port": LISTENER_PORT,
                    "type": "internal",
                    "tls": False,
                    "authentication": {"type": "scram-sha-512"},
                    # Strimzi's generated NetworkPolicy admits only sidecars of
                    # labelled namespaces to the listener.
                    "networkPolicyPeers": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {KAFKA_CLIENTS_NAMESPACE_LABEL: "true"}
                            },
                            "podSelector": {"matchLabels": {DAPR_POD_LABEL: "true"}},
                        }
                    ],
                }
            ],
            "authorization": {"type": "simple"},
            "config": {
                "default.replication.factor": rf,
                "min.insync.replicas": isr,
                "offsets.topic.replication.factor": rf,
                "transaction.state.log.replication.factor": rf,
                "transaction.state.log.min.isr": isr,
                # Topics are declared as KafkaTopics; a typo must not create one.
                "auto.create.topics.enable": False,
                "message.max.bytes": MESSAGE_MAX_BYTES,
            },
        },
        "entityOperator": {
            "topicOperator": {"resources": {**small, "limits": {"cpu": "500m", "memory": "256Mi"}}},
            "userOperator": {"resources": {**small, "limits": {"cpu": "500m", "memory": "256Mi"}}},
        },
        # Consumer-group lag per topic and partition, for the lag alerts.
        "kafkaExporter": {
            "topicRegex": ".*",
            "groupRegex": ".*",
            "resources": {
                "requests": {"cpu": "25m", "memory": "64Mi"},
                "limits": {"cpu": "200m", "memory": "128Mi"},
            },
        },
    }


def topic_spec(
    topic: str, settings: StrimziKafka, retention_hours: int, *, dlq: bool
) -> dict[str, Any]:
    """A KafkaTopic's spec."""
    return {
        "topicName": topic,
        # Dead letters are rare and need no parallelism.
        "partitions": DLQ_PARTITIONS if dlq else settings.topics.partitions,
        "replicas": settings.replication_factor,
        "config": {
            "retention.ms": retention_hours * 3_600_000,
            "min.insync.replicas": settings.min_insync_replicas,
            "cleanup.policy": "delete",
            "max.message.bytes": MESSAGE_MAX_BYTES,
        },
    }


def user_acls() -> list[dict[str, Any]]:
    """The apps' user may read and write every event topic and read its consumer groups."""
    topics = [*TOPICS, *DEAD_LETTER_TOPICS]
    acls: list[dict[str, Any]] = [
        {
            "type": "allow",
            "resource": {"type": "topic", "name": topic, "patternType": "literal"},
            "operations": ["Read", "Write", "Describe"],
        }
        for topic in topics
    ]
    # Dapr's consumer group is the app id.
    acls += [
        {
            "type": "allow",
            "resource": {"type": "group", "name": app, "patternType": "literal"},
            "operations": ["Read", "Describe"],
        }
        for app in APP_IDS
    ]
    return acls


def ready_timeout_seconds(settings: StrimziKafka) -> int:
    """How long `pulumi up` waits for the Kafka cluster's Ready condition.

    The operator creates the node pools' pods, each with its volume to provision and
    attach (about a minute each on DigitalOcean block storage), the controllers before
    the brokers; prod's six pods need far more than the ten-minute default of the
    generic await. Ten minutes of base (operator start, image pulls) plus 150 s a pod.
    """
    pods = settings.controllers + settings.brokers
    return 600 + 150 * pods
