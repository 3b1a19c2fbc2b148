"""Kafka for Dapr pub/sub: a Strimzi KRaft cluster, or an external Kafka-compatible one.

Strimzi: the operator (Helm chart `strimzi-kafka-operator`, pinned) installs the
`kafka.strimzi.io/v1` CRDs, so every custom resource here depends on its release. The
cluster is a `Kafka` plus `KafkaNodePool`s: one dual-role pool on small stacks, or
dedicated controller and broker pools. Topics and the SCRAM user the sidecars log in
with are `KafkaTopic`/`KafkaUser` resources; the user's password is generated here and
handed to Dapr as a Secret in the apps namespace. Kafka Exporter runs for consumer lag.

Ephemeral stacks get a one-node cluster of their own (same topic names, no interference
with staging) that the base stack's operator reconciles: it watches every namespace.

The operator runs its operands with the `restricted` pod security provider, so Kafka
pods pass the restricted Pod Security profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from apps.contracts.events import DEAD_LETTER_TOPICS, TOPICS, dead_letter_topic
from apps.contracts.services import APP_IDS
from infra.components.kube import (
    DAPR_POD_LABEL,
    KAFKA_CLIENTS_NAMESPACE_LABEL,
    PART_OF,
    KubernetesObject,
    labels,
)
from infra.settings import ExternalKafka, KafkaStorage, StrimziKafka

STRIMZI_CHART = "strimzi-kafka-operator"
STRIMZI_CHART_VERSION = "1.2.0"
STRIMZI_REPOSITORY = "https://strimzi.io/charts/"
STRIMZI_API = "kafka.strimzi.io/v1"
LISTENER_PORT = 9092
# Broker limit for one record batch; Dapr's maxMessageBytes stays just below it.
MESSAGE_MAX_BYTES = 1048588
DLQ_PARTITIONS = 1
_SASL_FOR_DAPR = {"SCRAM-SHA-512": "SHA-512", "SCRAM-SHA-256": "SHA-256", "PLAIN": "PLAINTEXT"}


@dataclass(frozen=True)
class KafkaArgs:
    """Which Kafka, and where its pieces go."""

    settings: StrimziKafka | ExternalKafka
    """Strimzi topology and topics, or the external cluster's address."""
    namespace: pulumi.Input[str]
    """Where the Strimzi cluster, its topics and users live."""
    apps_namespace: pulumi.Input[str]
    """Where the credentials Secret for the sidecars goes."""
    install_operator: bool = True
    """Install the Strimzi operator (False: the base stack's operator reconciles)."""
    cluster_name: str = "todo"
    """The Kafka resource's name (prefix of its Services)."""
    user_name: str = "todo-apps"
    """The SCRAM user the sidecars log in with."""
    external_password: pulumi.Input[str] | None = None
    """SASL password of an external cluster (secret)."""


class Kafka(pulumi.ComponentResource):
    """A Kafka cluster with the event topics, and credentials for the sidecars."""

    bootstrap: pulumi.Output[str]
    """`host:port[,host:port]` the sidecars connect to."""
    credentials_secret: pulumi.Output[str]
    """Secret in the apps namespace with keys `username` and `password`."""
    sasl_mechanism: str
    """Dapr's `saslMechanism` value."""
    tls: bool
    """Whether the connection uses TLS."""
    operator: k8s.helm.v4.Chart | None
    """The Strimzi operator chart (None when another stack owns it)."""
    ready: list[pulumi.Resource]
    """What the sidecars need before they start: cluster, topics, user."""

    def __init__(
        self, name: str, args: KafkaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:kafka:Kafka", name, None, opts)
        self._name = name
        self._args = args
        self.operator = None
        self.ready = []
        settings = args.settings
        password: pulumi.Input[str]
        if isinstance(settings, StrimziKafka):
            self.sasl_mechanism = _SASL_FOR_DAPR["SCRAM-SHA-512"]
            # In-cluster traffic stays on the plain listener (SCRAM authenticates, the
            # NetworkPolicies fence it); Strimzi's CA is not readable from other namespaces.
            self.tls = False
            username = args.user_name
            password = self._create_strimzi(settings)
            self.bootstrap = pulumi.Output.concat(
                f"{args.cluster_name}-kafka-bootstrap.",
                pulumi.Output.from_input(args.namespace),
                f".svc:{LISTENER_PORT}",
            )
        else:
            if args.external_password is None:
                raise ValueError("an external Kafka needs external_password")
            self.sasl_mechanism = _SASL_FOR_DAPR[settings.sasl_mechanism]
            self.tls = settings.tls
            username = settings.username
            password = args.external_password
            self.bootstrap = pulumi.Output.from_input(settings.brokers)
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=cast(
                Any, {"namespace": args.apps_namespace, "labels": labels("kafka", "credentials")}
            ),
            type="Opaque",
            string_data=cast(Any, {"username": username, "password": password}),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.credentials_secret = credentials.metadata.apply(lambda m: m["name"])
        self.register_outputs(
            {"bootstrap": self.bootstrap, "credentials_secret": self.credentials_secret}
        )

    # ------------------------------------------------------------------ strimzi

    def _create_strimzi(self, settings: StrimziKafka) -> pulumi.Output[str]:
        args = self._args
        crd_owner: list[pulumi.Resource] = []
        if args.install_operator:
            self.operator = self._create_operator(settings)
            crd_owner.append(self.operator)
        cr_opts = pulumi.ResourceOptions(parent=self, depends_on=crd_owner)
        cluster_labels = {"strimzi.io/cluster": args.cluster_name}
        pools = self._create_node_pools(settings, cluster_labels, cr_opts)
        kafka = KubernetesObject(
            f"{self._name}-cluster",
            STRIMZI_API,
            "Kafka",
            metadata={
                "name": args.cluster_name,
                "namespace": args.namespace,
                "labels": {"app.kubernetes.io/part-of": PART_OF},
                "annotations": {
                    # pulumi-kubernetes waits for this condition before dependants start,
                    # for as long as the cluster may take to come up (see ready_timeout).
                    "pulumi.com/waitFor": "condition=Ready",
                    "pulumi.com/timeoutSeconds": str(ready_timeout_seconds(settings)),
                },
            },
            spec=self._kafka_spec(settings),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*crd_owner, *pools]),
        )
        self.ready.append(kafka)
        topic_opts = pulumi.ResourceOptions(parent=self, depends_on=[*crd_owner, kafka])
        for topic in TOPICS:
            self._create_topic(topic, settings, settings.topics.retention_hours, topic_opts)
            self._create_topic(
                dead_letter_topic(topic),
                settings,
                settings.topics.dlq_retention_hours,
                topic_opts,
                dlq=True,
            )
        return self._create_user(topic_opts)

    def _create_operator(self, settings: StrimziKafka) -> k8s.helm.v4.Chart:
        args = self._args
        # helm.v4.Chart applies the chart's `crds/` like any other object, so a chart
        # upgrade upgrades Strimzi's CRDs (Strimzi's upgrade guide: CRDs first); `helm
        # upgrade` would leave them as first installed. The chart has no hooks.
        return k8s.helm.v4.Chart(
            f"{self._name}-operator",
            name="strimzi",
            chart=STRIMZI_CHART,
            version=STRIMZI_CHART_VERSION,
            repository_opts={"repo": STRIMZI_REPOSITORY},
            namespace=args.namespace,
            values={
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
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_node_pools(
        self,
        settings: StrimziKafka,
        cluster_labels: dict[str, str],
        opts: pulumi.ResourceOptions,
    ) -> list[pulumi.Resource]:
        broker = (settings.storage, settings.resources, settings.heap)
        if settings.controllers == 0:
            layout = [("dual-role", settings.brokers, ["controller", "broker"], *broker)]
        else:
            layout = [
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
        pools: list[pulumi.Resource] = []
        for pool, replicas, roles, storage, sizing, heap in layout:
            # An explicit heap (-Xms = -Xmx: no resizing pauses) leaves the rest of the
            # container's limit to metaspace, threads, direct buffers and the page cache.
            jvm = {"jvmOptions": {"-Xms": heap, "-Xmx": heap}} if heap else {}
            pools.append(
                KubernetesObject(
                    f"{self._name}-pool-{pool}",
                    STRIMZI_API,
                    "KafkaNodePool",
                    metadata={
                        "name": pool,
                        "namespace": self._args.namespace,
                        "labels": cluster_labels,
                    },
                    spec={
                        "replicas": replicas,
                        "roles": roles,
                        "storage": self._storage(storage),
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
                                        "labelSelector": {
                                            "matchLabels": {"strimzi.io/pool-name": pool}
                                        },
                                    }
                                ]
                            }
                        },
                    },
                    opts=opts,
                )
            )
        return pools

    @staticmethod
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

    def _kafka_spec(self, settings: StrimziKafka) -> dict[str, Any]:
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
                "topicOperator": {
                    "resources": {**small, "limits": {"cpu": "500m", "memory": "256Mi"}}
                },
                "userOperator": {
                    "resources": {**small, "limits": {"cpu": "500m", "memory": "256Mi"}}
                },
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

    def _create_topic(
        self,
        topic: str,
        settings: StrimziKafka,
        retention_hours: int,
        opts: pulumi.ResourceOptions,
        *,
        dlq: bool = False,
    ) -> None:
        args = self._args
        resource = KubernetesObject(
            f"{self._name}-topic-{topic}",
            STRIMZI_API,
            "KafkaTopic",
            metadata={
                "name": topic,
                "namespace": args.namespace,
                "labels": {"strimzi.io/cluster": args.cluster_name},
                "annotations": {"pulumi.com/waitFor": "condition=Ready"},
            },
            spec={
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
            },
            opts=opts,
        )
        self.ready.append(resource)

    def _create_user(self, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        args = self._args
        password = random.RandomPassword(
            f"{self._name}-user-password",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        secret = k8s.core.v1.Secret(
            f"{self._name}-user-password",
            metadata=cast(
                Any,
                {
                    "name": f"{args.user_name}-password",
                    "namespace": args.namespace,
                    "labels": labels("kafka", "credentials"),
                },
            ),
            type="Opaque",
            string_data=cast(Any, {"password": password.result}),
            opts=pulumi.ResourceOptions(parent=self),
        )
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
        user = KubernetesObject(
            f"{self._name}-user",
            STRIMZI_API,
            "KafkaUser",
            metadata={
                "name": args.user_name,
                "namespace": args.namespace,
                "labels": {"strimzi.io/cluster": args.cluster_name},
                "annotations": {"pulumi.com/waitFor": "condition=Ready"},
            },
            spec={
                "authentication": {
                    "type": "scram-sha-512",
                    "password": {
                        "valueFrom": {
                            "secretKeyRef": {
                                "name": secret.metadata.apply(lambda m: m["name"]),
                                "key": "password",
                            }
                        }
                    },
                },
                "authorization": {"type": "simple", "acls": acls},
            },
            opts=opts,
        )
        self.ready.append(user)
        return password.result


def ready_timeout_seconds(settings: StrimziKafka) -> int:
    """How long `pulumi up` waits for the Kafka cluster's Ready condition.

    The operator creates the node pools' pods, each with its volume to provision and
    attach (about a minute each on DigitalOcean block storage), the controllers before
    the brokers; prod's six pods need far more than the ten-minute default of the
    generic await. Ten minutes of base (operator start, image pulls) plus 150 s a pod.
    """
    pods = settings.controllers + settings.brokers
    return 600 + 150 * pods
