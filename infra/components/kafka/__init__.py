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

from apps.contracts.events import TOPICS, dead_letter_topic
from infra.components.kafka.strimzi import (
    LISTENER_PORT,
    STRIMZI_API,
    STRIMZI_CHART,
    STRIMZI_CHART_VERSION,
    STRIMZI_REPOSITORY,
    kafka_spec,
    node_pool_spec,
    node_pools,
    operator_values,
    ready_timeout_seconds,
    topic_spec,
    user_acls,
)
from infra.components.kube import PART_OF, KubernetesObject, child_of, labels
from infra.settings import ExternalKafka, StrimziKafka

__all__ = [
    "STRIMZI_CHART",
    "STRIMZI_CHART_VERSION",
    "STRIMZI_REPOSITORY",
    "Kafka",
    "KafkaArgs",
    "ready_timeout_seconds",
]

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
            opts=child_of(self),
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
        cr_opts = child_of(self, depends_on=crd_owner)
        cluster_labels = {"strimzi.io/cluster": args.cluster_name}
        pools = [
            KubernetesObject(
                f"{self._name}-pool-{pool[0]}",
                STRIMZI_API,
                "KafkaNodePool",
                metadata={"name": pool[0], "namespace": args.namespace, "labels": cluster_labels},
                spec=node_pool_spec(pool),
                opts=cr_opts,
            )
            for pool in node_pools(settings)
        ]
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
            spec=kafka_spec(settings),
            opts=child_of(self, depends_on=[*crd_owner, *pools]),
        )
        self.ready.append(kafka)
        topic_opts = child_of(self, depends_on=[*crd_owner, kafka])
        for topic in TOPICS:
            retention = settings.topics.retention_hours
            self._create_topic(topic, topic_spec(topic, settings, retention, dlq=False), topic_opts)
            dead_letters = dead_letter_topic(topic)
            retention = settings.topics.dlq_retention_hours
            self._create_topic(
                dead_letters, topic_spec(dead_letters, settings, retention, dlq=True), topic_opts
            )
        return self._create_user(topic_opts)

    def _create_operator(self, settings: StrimziKafka) -> k8s.helm.v4.Chart:
        # helm.v4.Chart applies the chart's `crds/` like any other object, so a chart
        # upgrade upgrades Strimzi's CRDs (Strimzi's upgrade guide: CRDs first); `helm
        # upgrade` would leave them as first installed. The chart has no hooks.
        return k8s.helm.v4.Chart(
            f"{self._name}-operator",
            name="strimzi",
            chart=STRIMZI_CHART,
            version=STRIMZI_CHART_VERSION,
            repository_opts={"repo": STRIMZI_REPOSITORY},
            namespace=self._args.namespace,
            values=operator_values(settings),
            opts=child_of(self),
        )

    def _create_topic(self, topic: str, spec: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
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
            spec=spec,
            opts=opts,
        )
        self.ready.append(resource)

    def _create_user(self, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        args = self._args
        password = random.RandomPassword(
            f"{self._name}-user-password",
            length=32,
            special=False,
            opts=child_of(self),
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
            opts=child_of(self),
        )
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
                "authorization": {"type": "simple", "acls": user_acls()},
            },
            opts=opts,
        )
        self.ready.append(user)
        return password.result
