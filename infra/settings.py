"""Typed, validated stack settings: the one place the program reads `pulumi.Config`.

A stack's config (`stacks/Pulumi.<stack>.yaml`) holds a few scalar keys (`todo:kind`,
`todo:environment`) and one object per area (`todo:cluster`, `todo:database`, ...). Each
area is a frozen pydantic model; unknown keys are rejected, so a misspelt key fails
instead of silently falling back to a default. Every error names the full key
(`todo:kafka.topics.partitions`), the value it got and what is allowed.

Secrets never pass through these models: they are read with `get_secret` into
`StackSecrets` (Pulumi secret outputs) and only their presence is validated here.

Adding an area is additive: declare its model, add a field to `Settings` with a default,
and `load_settings` reads `todo:<fieldAlias>` for it (as `observability` and `edge` do).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from apps.contracts import ephemeral as ephemeral_contract
from apps.contracts.services import APP_IDS

CONFIG_NAMESPACE = "todo"

DnsLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
]
CpuQuantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?m?$")]
MemoryQuantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(Ki|Mi|Gi|Ti)$")]
JvmHeap = Annotated[str, StringConstraints(pattern=r"^[0-9]+[mMgG]$")]
"""A JVM memory size as `-Xmx` takes it (and Strimzi's `jvmOptions` schema allows)."""

_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def memory_bytes(quantity: str) -> int:
    """Bytes of a MemoryQuantity."""
    return int(quantity[:-2]) * _MEMORY_UNITS[quantity[-2:]]


def jvm_bytes(size: str) -> int:
    """Bytes of a JvmHeap (`m` and `g` are binary units for the JVM)."""
    return int(size[:-1]) * (2**20 if size[-1] in "mM" else 2**30)


ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]

# DigitalOcean regions that offer DOKS and managed PostgreSQL.
DoRegion = Literal[
    "nyc1", "nyc3", "sfo2", "sfo3", "ams3", "sgp1", "lon1", "fra1", "tor1", "blr1", "syd1", "atl1"
]
DoDropletSize = Annotated[
    str, StringConstraints(pattern=r"^(s|c|c2|g|gd|m|m3|so|so1_5)-[a-z0-9-]+$")
]
DoDatabaseSize = Annotated[str, StringConstraints(pattern=r"^(db|gd|m|so1_5)-[a-z0-9-]+$")]


class SettingsError(ValueError):
    """Stack config that the program cannot deploy; the message names every bad key."""


class StackKind(StrEnum):
    """What a stack creates."""

    MINIKUBE = "minikube"
    """Everything on an existing local cluster; no cloud resource."""
    CLOUD = "cloud"
    """A DOKS cluster, managed PostgreSQL and the whole system."""
    EPHEMERAL = "ephemeral"
    """Apps only, in their own namespace on a base stack's cluster (StackReference)."""


class AppEnv(StrEnum):
    """`APP_ENV` as the apps know it (architecture §10)."""

    DEV = "dev"
    TEST = "test"
    STAGING = "staging"
    PROD = "prod"


class _Model(BaseModel):
    # camelCase keys in YAML, snake_case in Python; unknown keys are errors.
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class Resources(_Model):
    """Requests and limits of one container."""

    cpu_request: CpuQuantity
    memory_request: MemoryQuantity
    cpu_limit: CpuQuantity
    memory_limit: MemoryQuantity

    def manifest(self) -> dict[str, dict[str, str]]:
        """As a container's (or a chart's) `resources:` block."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


# --------------------------------------------------------------------------- namespaces


class NamespaceSettings(_Model):
    """Namespace names; the apps namespace of an ephemeral stack is derived from its name."""

    apps: DnsLabel = "todo"
    dapr: DnsLabel = "dapr-system"
    kafka: DnsLabel = "kafka"
    monitoring: DnsLabel = "monitoring"
    """Where Prometheus runs (scrapes are allowed from it)."""
    gateway: DnsLabel = "envoy-gateway-system"
    """Where the ingress gateway runs (it may reach the backend)."""


# --------------------------------------------------------------------------- cluster


MIN_DOKS_MINOR = 33
"""The oldest DOKS minor version the program deploys to (Gateway API CRDs, §9)."""


_RFC1918 = tuple(
    ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def _private_ipv4_network(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"not an IPv4 network in CIDR form ({error})") from None
    # RFC 1918 exactly: `is_private` would also pass documentation and other reserved
    # ranges (203.0.113.0/24 ...), which DigitalOcean does not accept for a VPC.
    private = any(network.subnet_of(block) for block in _RFC1918)
    if not private or network.prefixlen > 24 or network.prefixlen < 8:
        raise ValueError("must be a private (RFC 1918) range between /8 and /24")
    return str(network)


Ipv4Network = Annotated[str, AfterValidator(_private_ipv4_network)]


class LocalCluster(_Model):
    """An existing cluster reached through a kubeconfig context (minikube, kind)."""

    kube_context: Annotated[str, StringConstraints(min_length=1)] = "minikube"
    cni: Literal["generic", "cilium"] = "generic"
    """How NetworkPolicies reach the API server and admit its webhook calls.

    `generic`: Kubernetes NetworkPolicy `ipBlock`s on apiServerCidr/apiServerPort (minikube's
    default CNI matches host traffic by address). `cilium`: a CiliumNetworkPolicy allowing
    the `kube-apiserver` entity, because Cilium does not match cluster nodes or the API
    server by `ipBlock` (DOKS always runs Cilium; so does the kind proving ground).
    """
    api_server_cidr: Annotated[
        str, StringConstraints(pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$")
    ] = "192.168.49.2/32"
    """The API server as pods reach it after DNAT (minikube's docker driver default)."""
    api_server_port: Annotated[int, Field(ge=1, le=65535)] = 8443


class NodePool(_Model):
    """The autoscaling worker pool."""

    size: DoDropletSize = "s-2vcpu-4gb"
    min_nodes: Annotated[int, Field(ge=1, le=20)] = 2
    max_nodes: Annotated[int, Field(ge=1, le=50)] = 4

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"maxNodes ({self.max_nodes}) must be >= minNodes ({self.min_nodes})")
        return self


class MaintenanceWindow(_Model):
    """When DigitalOcean may upgrade the control plane and nodes."""

    day: Literal[
        "any", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "sunday"
    start_time: Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):00$")] = "03:00"


class DoksCluster(_Model):
    """A DigitalOcean Kubernetes cluster in its own VPC."""

    region: DoRegion
    version_prefix: Annotated[str, StringConstraints(pattern=r"^1\.[0-9]{2}\.$")]
    """Minor version to track, e.g. `1.34.`: the newest patch DOKS offers is used."""
    vpc_ip_range: Annotated[
        str, StringConstraints(pattern=r"^10\.[0-9]{1,3}\.[0-9]{1,3}\.0/(1[6-9]|2[0-4])$")
    ]
    cluster_subnet: Ipv4Network
    """The pods' range of a VPC-native cluster (`10.124.0.0/16`): fixed at creation."""
    service_subnet: Ipv4Network
    """The Services' range of a VPC-native cluster (`10.125.0.0/20`): fixed at creation."""
    ha: bool = False
    """HA control plane (recommended for prod)."""
    auto_upgrade: bool = True
    node_pool: NodePool = NodePool()
    maintenance: MaintenanceWindow = MaintenanceWindow()

    @field_validator("version_prefix")
    @classmethod
    def _gateway_api(cls, value: str) -> str:
        # DOKS provides the Gateway API CRDs (which the edge relies on in the cloud) only
        # on VPC-native clusters from 1.33 (architecture §9).
        if int(value.split(".")[1]) < MIN_DOKS_MINOR:
            raise ValueError(
                f"must be 1.{MIN_DOKS_MINOR}. or newer: DOKS provides the Gateway API CRDs "
                "the edge needs only on VPC-native clusters from 1.33"
            )
        return value

    @model_validator(mode="after")
    def _vpc_native(self) -> Self:
        # A VPC-native cluster's pod and Service ranges may not overlap the VPC or each
        # other (DigitalOcean: "create with VPC-native", linked from pulumi-digitalocean's
        # KubernetesCluster.cluster_subnet docs).
        ranges = {
            "vpcIpRange": ipaddress.ip_network(self.vpc_ip_range),
            "clusterSubnet": ipaddress.ip_network(self.cluster_subnet),
            "serviceSubnet": ipaddress.ip_network(self.service_subnet),
        }
        names = list(ranges)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if ranges[first].overlaps(ranges[second]):
                    raise ValueError(
                        f"{CONFIG_NAMESPACE}:cluster.{second} ({ranges[second]}) overlaps "
                        f"{CONFIG_NAMESPACE}:cluster.{first} ({ranges[first]}): a VPC-native "
                        "cluster needs three disjoint ranges"
                    )
        return self


def _cluster_type(value: Any) -> str:
    # A DOKS cluster is recognised by any of its own keys; anything else is a local one.
    if isinstance(value, DoksCluster):
        return "doks"
    if isinstance(value, Mapping) and set(value) & _DOKS_KEYS:
        return "doks"
    return "local"


_DOKS_KEYS = frozenset(  # keys only a DOKS cluster has
    {
        "region",
        "versionPrefix",
        "vpcIpRange",
        "clusterSubnet",
        "serviceSubnet",
        "ha",
        "autoUpgrade",
        "nodePool",
        "maintenance",
    }
)

ClusterSettings = Annotated[
    Annotated[LocalCluster, Tag("local")] | Annotated[DoksCluster, Tag("doks")],
    Discriminator(_cluster_type),
]


# --------------------------------------------------------------------------- database


class InClusterDatabase(_Model):
    """PostgreSQL as a StatefulSet in the apps namespace (minikube)."""

    mode: Literal["inCluster"]
    image: Annotated[str, StringConstraints(pattern=r"^[a-z0-9./-]+:[A-Za-z0-9_.-]+$")] = (
        "docker.io/library/postgres:17.6-alpine"
    )
    storage: MemoryQuantity = "2Gi"
    resources: Resources = Resources(
        cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="512Mi"
    )

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if value.endswith(":latest"):
            raise ValueError("must be pinned to a version tag, not ':latest'")
        return value


IN_CLUSTER_DATABASE_PORT = 5432
MANAGED_DATABASE_PORT = 25060  # DigitalOcean's PostgreSQL port
_SINGLE_NODE_DATABASE_SIZES = frozenset({"db-s-1vcpu-1gb"})
STATE_STORE_MAX_CONNECTIONS = 1
"""The Dapr state store's pool per sidecar (its `maxConns`)."""
ONE_OFF_CONNECTIONS = 2
"""The migrations Job and the grants Job."""


def managed_connection_limit(size: str) -> int | None:
    """Connections a DigitalOcean PostgreSQL plan accepts: 25 per GB of RAM, 3 reserved."""
    match = re.search(r"-([0-9]+)gb$", size)
    return 25 * int(match.group(1)) - 3 if match else None


class ManagedDatabase(_Model):
    """DigitalOcean managed PostgreSQL, reachable only from the cluster."""

    mode: Literal["managed"]
    version: Literal["15", "16", "17"] = "17"
    size: DoDatabaseSize = "db-s-1vcpu-1gb"
    node_count: Annotated[int, Field(ge=1, le=3)] = 1
    """1 = primary only; 2 or 3 = primary plus standby nodes (automatic failover)."""

    @model_validator(mode="after")
    def _standby_size(self) -> Self:
        # DigitalOcean supports standby nodes only on plans with 2 GB of RAM or more.
        if self.node_count > 1 and self.size in _SINGLE_NODE_DATABASE_SIZES:
            raise ValueError(
                f"nodeCount {self.node_count} (standby nodes) needs a plan with >= 2 GB RAM; "
                f"size {self.size!r} allows only nodeCount 1"
            )
        return self


class ExternalDatabase(_Model):
    """A PostgreSQL server run elsewhere; its URL is the secret `todo:databaseUrl`."""

    mode: Literal["external"]
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    """Egress to this port is allowed from the apps."""


class SharedDatabase(_Model):
    """Own database and user on the base stack's managed PostgreSQL (ephemeral stacks)."""

    mode: Literal["shared"]


DatabaseSettings = Annotated[
    InClusterDatabase | ManagedDatabase | ExternalDatabase | SharedDatabase,
    Field(discriminator="mode"),
]


# --------------------------------------------------------------------------- kafka


class TopicSettings(_Model):
    """Partitions and retention of the event topics and their dead-letter topics."""

    partitions: Annotated[int, Field(ge=1, le=96)] = 3
    retention_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 168
    dlq_retention_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 336


class KafkaStorage(_Model):
    """Broker storage."""

    type: Literal["ephemeral", "persistent-claim"] = "persistent-claim"
    size: MemoryQuantity = "10Gi"


class StrimziKafka(_Model):
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


class ExternalKafka(_Model):
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


# --------------------------------------------------------------------------- dapr


class DaprSettings(_Model):
    """The Dapr control plane and the sidecars."""

    ha: bool = False
    """Three replicas of every control-plane service."""
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    tracing_sampling_rate: Annotated[str, StringConstraints(pattern=r"^(0(\.[0-9]+)?|1)$")] = "0"
    otel_endpoint: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")] | None
    ) = None
    """OTLP/gRPC collector (`host:port`); traces are only propagated when unset."""
    sidecar: Resources = Resources(
        cpu_request="50m", memory_request="64Mi", cpu_limit="500m", memory_limit="256Mi"
    )


# --------------------------------------------------------------------------- apps


def _app_id(value: str) -> str:
    if value not in APP_IDS:
        allowed = ", ".join(repr(app_id) for app_id in APP_IDS[:-1])
        raise ValueError(f"Input should be {allowed} or {APP_IDS[-1]!r}")
    return value


AppIdKey = Annotated[str, AfterValidator(_app_id)]
"""A Dapr app id as a plain string (stack files and YAML output hold strings)."""


class ImageSettings(_Model):
    """Where the service images come from: `<registry>/todo-<app>:<tag>[@<digest>]`."""

    registry: Annotated[str, StringConstraints(pattern=r"^[a-z0-9.:/-]*$")] = ""
    """Empty for images loaded straight into the node (`minikube image load`)."""
    tag: ImageTag
    digests: dict[AppIdKey, Digest] = {}
    """Digests that pin the exact image built for the tag (required on cloud stacks)."""
    pull_username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")] | None = (
        None
    )
    """User of a private registry; its token is the secret `todo:imagePullToken`."""

    @field_validator("tag")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if value == "latest":
            raise ValueError("must be a version or commit tag, not 'latest'")
        return value

    def image(self, app: str) -> str:
        """The full reference of one service's image."""
        name = f"todo-{app}"
        ref = f"{self.registry.rstrip('/')}/{name}" if self.registry else name
        digest = self.digests.get(app)
        return f"{ref}:{self.tag}@{digest}" if digest else f"{ref}:{self.tag}"


class ServiceSettings(_Model):
    """Scaling and resources of one service."""

    min_replicas: Annotated[int, Field(ge=1, le=50)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 2
    target_cpu_utilization: Annotated[int, Field(ge=10, le=95)] = 70
    db_pool_size: Annotated[int, Field(ge=1, le=20)] = 2
    """DB_POOL_SIZE: pooled connections per pod (the apps allow as many again as overflow)."""
    resources: Resources = Resources(
        cpu_request="100m", memory_request="128Mi", cpu_limit="500m", memory_limit="256Mi"
    )

    @property
    def peak_connections(self) -> int:
        """Database connections at max replicas: pool + overflow, plus the sidecar's state store."""
        return self.max_replicas * (2 * self.db_pool_size + STATE_STORE_MAX_CONNECTIONS)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) must be >= minReplicas ({self.min_replicas})"
            )
        return self


class AppsSettings(_Model):
    """The three services."""

    images: ImageSettings | None = None
    """Required; cloud stacks get theirs from the deploy workflow (release-images.sh)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    backend: ServiceSettings = ServiceSettings()
    notification: ServiceSettings = ServiceSettings()
    recurring: ServiceSettings = ServiceSettings()
    reminder_scan_schedule: Annotated[
        str, StringConstraints(pattern=r"^@every [1-9][0-9]*[sm]$")
    ] = "@every 1s"
    """How often the cron binding calls the backend's `POST /reminder-scan`.

    The interval bounds how late a reminder fires (target p99 ≤ 2 s). Each backend replica
    fires the binding; a scan is one indexed claim query, so a second is cheap."""

    def image(self, app: str) -> str:
        """The image reference of one service (settings validation guarantees images)."""
        if self.images is None:
            raise SettingsError(f"{CONFIG_NAMESPACE}:apps.images: required but missing")
        return self.images.image(app)

    def service(self, app: str) -> ServiceSettings:
        """Settings of one service by app id."""
        result: ServiceSettings = getattr(self, app)
        return result


# --------------------------------------------------------------------------- observability

PrometheusDuration = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(h|d|w|y)$")]
PrometheusByteSize = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(M|G|T)i?B$")]
StorageClassName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
]
_BINARY_UNITS = {"M": 2**20, "G": 2**30, "T": 2**40}


def _byte_size(value: str) -> int:
    """`18GiB`/`18GB` (Prometheus: powers of 2) or a Kubernetes `20Gi`, in bytes."""
    match = re.fullmatch(r"([0-9]+)([MGT])(i|iB|B)?", value)
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    return int(match.group(1)) * _BINARY_UNITS[match.group(2)]


class ObservabilitySettings(_Model):
    """kube-prometheus-stack: how long and where Prometheus keeps data, and its footprint.

    The defaults suit minikube (two days in an emptyDir, no Alertmanager, small requests);
    cloud stacks set a volume, a longer retention and Alertmanager in their stack file.
    """

    retention: PrometheusDuration = "2d"
    """How long Prometheus keeps samples (`2d`, `15d`, `4w`)."""
    retention_size: PrometheusByteSize | None = None
    """Size cap of the TSDB (`18GiB`); at most 90% of storageSize, which must hold the WAL too."""
    storage_size: MemoryQuantity | None = None
    """Size of Prometheus's volume (`20Gi`); unset keeps its data in an emptyDir."""
    storage_class: StorageClassName | None = None
    """StorageClass of that volume (`do-block-storage`); unset for the cluster default."""
    alertmanager: bool = False
    """Run Alertmanager (the alert rules are evaluated either way)."""
    prometheus: Resources = Resources(
        cpu_request="100m", memory_request="384Mi", cpu_limit="1", memory_limit="1Gi"
    )
    grafana: Resources = Resources(
        cpu_request="50m", memory_request="160Mi", cpu_limit="500m", memory_limit="384Mi"
    )

    @model_validator(mode="after")
    def _volume(self) -> Self:
        if self.storage_class is not None and self.storage_size is None:
            raise ValueError(
                f"storageClass ({self.storage_class!r}) needs storageSize: without it "
                "Prometheus keeps its data in an emptyDir"
            )
        if self.retention_size is not None and self.storage_size is not None:
            if _byte_size(self.retention_size) * 10 > _byte_size(self.storage_size) * 9:
                raise ValueError(
                    f"retentionSize ({self.retention_size}) must be at most 90% of "
                    f"storageSize ({self.storage_size}): the volume also holds the WAL"
                )
        return self


# --------------------------------------------------------------------------- edge

DomainName = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", max_length=240
    ),
]
EmailAddress = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$")
]
LOCAL_DOMAIN = "todo.localhost"
"""The default domain: `*.localhost` resolves to this machine (minikube tunnel)."""


class EdgeSettings(_Model):
    """The way in: hostnames, the Let's Encrypt account, and the Envoy Service.

    TLS is not a setting: cloud stacks always serve HTTPS with a Let's Encrypt
    certificate (so they need a public `domain` and an `acmeEmail`); minikube serves
    plain HTTP.
    """

    domain: DomainName = LOCAL_DOMAIN
    """The API is served at `api.<domain>`, Grafana at `grafana.<domain>`."""
    acme_email: EmailAddress | None = None
    """Contact address of the Let's Encrypt account (cloud stacks)."""
    acme_staging: bool = False
    """Use Let's Encrypt's staging directory (untrusted certificates, no rate limits)."""
    service_type: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"
    """The Envoy Service: one DigitalOcean load balancer (cloud), or on minikube a
    LoadBalancer reached through `minikube tunnel`, or a NodePort."""
    envoy_replicas: Annotated[int, Field(ge=1, le=10)] = 1
    """Envoy proxy pods behind the load balancer."""

    @property
    def api_hostname(self) -> str:
        """Public hostname of the backend API."""
        return f"api.{self.domain}"

    @property
    def grafana_hostname(self) -> str:
        """Public hostname of Grafana."""
        return f"grafana.{self.domain}"


# --------------------------------------------------------------------------- ephemeral


class EphemeralSettings(_Model):
    """Where an ephemeral stack lives and when it may be reaped."""

    base_stack: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    ]
    """Fully qualified base stack (`<org>/todo/staging`) whose cluster and database are used."""
    owner: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    expires_at: datetime
    """When `todo-infra ephemeral reap` may destroy the stack (RFC 3339, with offset)."""

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-01-04T18:00:00Z")
        return value


# --------------------------------------------------------------------------- the stack


class Settings(_Model):
    """Everything the program needs to know about one stack."""

    stack: str
    kind: StackKind
    environment: AppEnv
    namespaces: NamespaceSettings = NamespaceSettings()
    cluster: ClusterSettings | None = None
    """None for ephemeral stacks: they use the base stack's cluster."""
    database: DatabaseSettings
    kafka: KafkaSettings
    dapr: DaprSettings = DaprSettings()
    apps: AppsSettings
    observability: ObservabilitySettings = ObservabilitySettings()
    """Monitoring (not on ephemeral stacks: they use the base stack's)."""
    edge: EdgeSettings = EdgeSettings()
    """The ingress point (not on ephemeral stacks: they are not exposed)."""
    ephemeral: EphemeralSettings | None = None

    @property
    def is_cloud(self) -> bool:
        """Whether the stack creates DigitalOcean resources itself."""
        return self.kind is StackKind.CLOUD

    @property
    def tls(self) -> bool:
        """HTTPS with a Let's Encrypt certificate: every cloud stack, never minikube."""
        return self.is_cloud

    @property
    def grafana_url(self) -> str:
        """Where Grafana is served (its `root_url`)."""
        return f"{'https' if self.tls else 'http'}://{self.edge.grafana_hostname}"

    @property
    def database_port(self) -> int:
        """The port database clients connect to."""
        if isinstance(self.database, ExternalDatabase):
            return self.database.port
        if isinstance(self.database, InClusterDatabase):
            return IN_CLUSTER_DATABASE_PORT
        return MANAGED_DATABASE_PORT

    @property
    def apps_namespace(self) -> str:
        """Ephemeral stacks get a namespace of their own on the shared cluster."""
        if self.kind is StackKind.EPHEMERAL:
            return f"todo-{self.stack}"
        return self.namespaces.apps

    @property
    def resource_prefix(self) -> str:
        """Prefix of cloud resource names (unique per stack)."""
        return f"todo-{self.stack}"


# Config keys that only hold secrets: read with get_secret, never validated as plain text.
SECRET_KEYS: dict[str, str] = {
    "authJwtSecret": "HS256 key the apps verify JWTs with (generated when unset)",
    "databaseUrl": "postgresql:// URL of an external database (database.mode external)",
    "kafkaPassword": "SASL password of an external Kafka (kafka.mode external)",
    "imagePullToken": "token of apps.images.pullUsername for a private registry (GHCR: a PAT "
    "with read:packages)",
}

# Scalar keys, then object keys (one per area), as written in the stack file.
_SCALAR_KEYS = ("kind", "environment")


def _area_keys() -> dict[str, str]:
    """Config key (camelCase alias) for every object-valued Settings field."""
    keys: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        if name in ("stack", *_SCALAR_KEYS):
            continue
        keys[field.alias or name] = name
    return keys


_UNION_TAGS = frozenset({"inCluster", "managed", "external", "shared", "strimzi", "local", "doks"})


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_TAGGED_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("cluster", "local"): LocalCluster,
    ("cluster", "doks"): DoksCluster,
    ("database", "inCluster"): InClusterDatabase,
    ("database", "managed"): ManagedDatabase,
    ("database", "external"): ExternalDatabase,
    ("database", "shared"): SharedDatabase,
    ("kafka", "strimzi"): StrimziKafka,
    ("kafka", "external"): ExternalKafka,
}


def _config_key(loc: Sequence[str]) -> str:
    """`todo:<area alias>.<nested.keys>` for a pydantic error location in Settings."""
    if not loc:
        return CONFIG_NAMESPACE
    field = Settings.model_fields.get(loc[0])
    head = (field.alias if field is not None and field.alias else loc[0]) if field else loc[0]
    return f"{CONFIG_NAMESPACE}:{'.'.join([head, *loc[1:]])}"


def _format_errors(error: ValidationError) -> list[str]:
    messages = []
    for item in error.errors(include_url=False):
        raw_loc = [str(part) for part in item["loc"]]
        # Discriminated unions add the tag (e.g. 'managed') to the path: drop it.
        loc = [part for part in raw_loc if part not in _UNION_TAGS]
        key = _config_key(loc)
        kind = item["type"]
        if kind == "missing":
            messages.append(f"{key}: required but missing")
            continue
        reason = item["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            parent = _model_at(raw_loc[:-1])
            reason = "unknown key" + (f"; allowed keys: {_allowed_keys(parent)}" if parent else "")
        elif kind == "union_tag_invalid":
            reason = f"must be one of {item['ctx']['expected_tags']}"
        elif kind == "union_tag_not_found":
            reason = f"needs a 'mode' key ({item['ctx']['discriminator']})"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            reason = "must be an object (a mapping of keys)"
        messages.append(f"{key}: got {_describe(item.get('input'))}; {reason}")
    return messages


def _model_at(loc: Sequence[str]) -> type[BaseModel] | None:
    """The settings model at a pydantic error path (union tags included), if it is one."""
    model: type[BaseModel] = Settings
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        annotation = field.annotation if field is not None else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        # A union area (database, kafka, cluster): the next path element is its tag.
        tagged = _TAGGED_MODELS.get((part, parts[0])) if parts else None
        if tagged is None:
            return None
        parts.pop(0)
        model = tagged
    return model


def _allowed_keys(model: Any) -> str:
    fields = getattr(model, "model_fields", {})
    return ", ".join(sorted(field.alias or name for name, field in fields.items()))


def parse_settings(
    stack: str, raw: Mapping[str, Any], *, secret_keys: Sequence[str] = ()
) -> Settings:
    """Validate a stack's config (keys without the `todo:` prefix, objects decoded).

    `secret_keys` lists the secret keys that are set (their values are never seen here).
    Raises SettingsError naming every bad key, its value and what is allowed.
    """
    known = set(_SCALAR_KEYS) | set(_area_keys()) | set(SECRET_KEYS)
    errors = [
        f"{CONFIG_NAMESPACE}:{key}: unknown key; allowed keys: {', '.join(sorted(known))}"
        for key in raw
        if key not in known
    ]
    for key in SECRET_KEYS:
        if key in raw and key not in secret_keys:
            errors.append(
                f"{CONFIG_NAMESPACE}:{key}: must be set as a secret "
                f"(pulumi config set --secret {key} ...), not as plain text"
            )
    data: dict[str, Any] = {"stack": stack}
    for key in _SCALAR_KEYS:
        if key in raw:
            data[key] = raw[key]
    for alias, name in _area_keys().items():
        if alias in raw:
            data[name] = raw[alias]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        errors.extend(_format_errors(error))
        raise SettingsError(_summary(stack, errors)) from None
    errors.extend(_cross_checks(settings, set(secret_keys)))
    if errors:
        raise SettingsError(_summary(stack, errors))
    return settings


def _summary(stack: str, errors: list[str]) -> str:
    lines = "\n".join(f"  - {error}" for error in errors)
    return f"invalid config for stack {stack!r}:\n{lines}"


_KIND_RULES: dict[StackKind, dict[str, tuple[str, ...]]] = {
    StackKind.MINIKUBE: {"cluster": ("LocalCluster",), "database": ("inCluster", "external")},
    StackKind.CLOUD: {"cluster": ("DoksCluster",), "database": ("managed", "external")},
    StackKind.EPHEMERAL: {"cluster": ("None",), "database": ("shared", "external")},
}


def _cross_checks(settings: Settings, secret_keys: set[str]) -> list[str]:
    """Rules that span areas: what each kind of stack may use, and the secrets it needs."""
    ns = CONFIG_NAMESPACE
    errors: list[str] = []
    rules = _KIND_RULES[settings.kind]
    cluster_type = type(settings.cluster).__name__ if settings.cluster else "None"
    if cluster_type not in rules["cluster"]:
        if settings.kind is StackKind.EPHEMERAL:
            errors.append(
                f"{ns}:cluster: got an object; an ephemeral stack uses its base stack's "
                "cluster: remove the key"
            )
        elif settings.cluster is None:
            allowed = (
                "kubeContext"
                if settings.kind is StackKind.MINIKUBE
                else f"{_allowed_keys(DoksCluster)}"
            )
            errors.append(
                f"{ns}:cluster: required but missing for kind {settings.kind.value!r} "
                f"(keys: {allowed})"
            )
        else:
            errors.append(
                f"{ns}:cluster: got keys for a {cluster_type}; kind {settings.kind.value!r} "
                f"needs a {rules['cluster'][0]}"
            )
    if settings.database.mode not in rules["database"]:
        errors.append(
            f"{ns}:database.mode: got {settings.database.mode!r}; kind "
            f"{settings.kind.value!r} allows {list(rules['database'])}"
        )
    if settings.kind is StackKind.EPHEMERAL:
        if settings.ephemeral is None:
            errors.append(
                f"{ns}:ephemeral: required but missing for kind 'ephemeral' "
                f"(keys: {_allowed_keys(EphemeralSettings)})"
            )
        if not ephemeral_contract.is_ephemeral_stack_name(settings.stack):
            errors.append(
                f"stack name: got {settings.stack!r}; an ephemeral stack is named "
                f"dev-<name> (lowercase, <= {ephemeral_contract.MAX_NAME_LENGTH} chars) or "
                "pr-<number>"
            )
        if isinstance(settings.kafka, StrimziKafka) and (
            settings.kafka.controllers or settings.kafka.brokers != 1
        ):
            errors.append(
                f"{ns}:kafka: got {settings.kafka.brokers} brokers and "
                f"{settings.kafka.controllers} controllers; an ephemeral stack runs one "
                "dual-role node (brokers: 1, controllers: 0)"
            )
    elif settings.ephemeral is not None:
        errors.append(
            f"{ns}:ephemeral: got an object; only kind 'ephemeral' takes it: remove the key"
        )
    if settings.database.mode == "external" and "databaseUrl" not in secret_keys:
        errors.append(
            f"{ns}:databaseUrl: required but missing for database.mode 'external' "
            "(set it with pulumi config set --secret databaseUrl postgresql://...)"
        )
    if settings.kafka.mode == "external" and "kafkaPassword" not in secret_keys:
        errors.append(
            f"{ns}:kafkaPassword: required but missing for kafka.mode 'external' "
            "(set it with pulumi config set --secret kafkaPassword ...)"
        )
    errors.extend(_connection_budget(settings))
    errors.extend(_platform_checks(settings))
    errors.extend(_image_checks(settings, secret_keys))
    if settings.environment is AppEnv.PROD:
        if isinstance(settings.cluster, DoksCluster) and not settings.cluster.ha:
            errors.append(f"{ns}:cluster.ha: got False; environment 'prod' needs true")
        if isinstance(settings.database, ManagedDatabase) and settings.database.node_count < 2:
            errors.append(
                f"{ns}:database.nodeCount: got {settings.database.node_count}; environment "
                "'prod' needs >= 2 (a standby node)"
            )
        if isinstance(settings.kafka, StrimziKafka) and (
            settings.kafka.replication_factor < 3 or settings.kafka.min_insync_replicas < 2
        ):
            errors.append(
                f"{ns}:kafka.replicationFactor/minInsyncReplicas: got "
                f"{settings.kafka.replication_factor}/{settings.kafka.min_insync_replicas}; "
                "environment 'prod' needs >= 3/>= 2"
            )
        if not settings.dapr.ha:
            errors.append(f"{ns}:dapr.ha: got False; environment 'prod' needs true")
        if settings.edge.envoy_replicas < 2:
            errors.append(
                f"{ns}:edge.envoyReplicas: got {settings.edge.envoy_replicas}; environment "
                "'prod' needs >= 2 (the only way in must survive a node drain)"
            )
        if settings.observability.storage_size is None:
            errors.append(
                f"{ns}:observability.storageSize: required but missing for environment 'prod' "
                "(without a volume every Prometheus restart loses the metrics)"
            )
        if not settings.observability.alertmanager:
            errors.append(
                f"{ns}:observability.alertmanager: got False; environment 'prod' needs true"
            )
    return errors


def _platform_checks(settings: Settings) -> list[str]:
    """Monitoring and the edge: only stacks with a cluster of their own have them; cloud
    stacks serve HTTPS for a public domain, minikube plain HTTP."""
    ns = CONFIG_NAMESPACE
    if settings.kind is StackKind.EPHEMERAL:
        return [
            f"{ns}:{area}: got an object; an ephemeral stack uses its base stack's {what}: "
            "remove the key"
            for area, what in (("observability", "monitoring"), ("edge", "gateway"))
            if area in settings.model_fields_set
        ]
    edge = settings.edge
    errors: list[str] = []
    if settings.tls:
        if edge.domain == LOCAL_DOMAIN or edge.domain.endswith(".localhost"):
            errors.append(
                f"{ns}:edge.domain: got {edge.domain!r}; kind 'cloud' serves HTTPS with a "
                "Let's Encrypt certificate for api.<domain> and grafana.<domain>: set a "
                "public DNS name"
            )
        if edge.acme_email is None:
            errors.append(
                f"{ns}:edge.acmeEmail: required but missing for kind 'cloud' (contact "
                "address of the Let's Encrypt account)"
            )
        if edge.service_type != "LoadBalancer":
            errors.append(
                f"{ns}:edge.serviceType: got {edge.service_type!r}; kind 'cloud' allows "
                "['LoadBalancer'] (the cluster's one DigitalOcean load balancer is the way in)"
            )
    elif edge.acme_email is not None or edge.acme_staging:
        errors.append(
            f"{ns}:edge.acmeEmail/acmeStaging: got {edge.acme_email!r}/{edge.acme_staging}; "
            f"kind {settings.kind.value!r} serves plain HTTP without a certificate: remove them"
        )
    return errors


RELEASE_IMAGES_HINT = (
    "deploy.yml sets them after building and pushing the images; by hand: "
    "`.github/scripts/release-images.sh set <org>/todo/<stack> ghcr.io/<owner> <tag> <digests-dir>`"
)


def _image_checks(settings: Settings, secret_keys: set[str]) -> list[str]:
    """Every stack names its images; a cloud stack pins, by digest, images it can pull."""
    ns = CONFIG_NAMESPACE
    images = settings.apps.images
    if images is None:
        if settings.kind is StackKind.MINIKUBE:
            hint = "e.g. {registry: '', tag: dev} for images loaded into the node"
        else:
            hint = RELEASE_IMAGES_HINT
        return [f"{ns}:apps.images: required but missing ({hint})"]
    errors: list[str] = []
    if settings.kind is not StackKind.MINIKUBE:
        if not images.registry:
            errors.append(
                f"{ns}:apps.images.registry: got ''; kind {settings.kind.value!r} pulls from "
                f"a registry ({RELEASE_IMAGES_HINT})"
            )
        missing = [app for app in APP_IDS if app not in images.digests]
        # Ephemeral stacks may run a tag a developer pushed; what staging and prod run is
        # pinned by digest (the deploy workflow promotes digests, not tags).
        if missing and settings.kind is StackKind.CLOUD:
            errors.append(
                f"{ns}:apps.images.digests: missing {missing}; kind {settings.kind.value!r} "
                f"runs only images pinned by digest ({RELEASE_IMAGES_HINT})"
            )
    has_token = "imagePullToken" in secret_keys
    if (images.pull_username is None) != (not has_token):
        errors.append(
            f"{ns}:apps.images.pullUsername/imagePullToken: got "
            f"{'a user without a token' if images.pull_username else 'a token without a user'}"
            "; a private registry needs both (pulumi config set --secret imagePullToken ...)"
        )
    return errors


def _connection_budget(settings: Settings) -> list[str]:
    """The services at max replicas must fit the managed plan's connection limit."""
    if not isinstance(settings.database, ManagedDatabase):
        return []
    limit = managed_connection_limit(settings.database.size)
    if limit is None:
        return []
    peaks = {app: settings.apps.service(app).peak_connections for app in APP_IDS}
    total = sum(peaks.values()) + ONE_OFF_CONNECTIONS
    if total <= limit:
        return []
    detail = ", ".join(f"{app} {peak}" for app, peak in peaks.items())
    return [
        f"{CONFIG_NAMESPACE}:apps.*.maxReplicas/dbPoolSize: the services may open {total} "
        f"database connections at max replicas ({detail}, jobs {ONE_OFF_CONNECTIONS}); "
        f"database.size {settings.database.size!r} accepts {limit}: lower them or pick a "
        "larger size"
    ]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class StackSecrets:
    """Secret config values, as Pulumi secret outputs (None when unset)."""

    auth_jwt_secret: pulumi.Output[str] | None
    database_url: pulumi.Output[str] | None
    kafka_password: pulumi.Output[str] | None
    image_pull_token: pulumi.Output[str] | None = None


def load_settings(config: pulumi.Config | None = None) -> tuple[Settings, StackSecrets]:
    """Read and validate the current stack's config; fails the run with SettingsError."""
    config = config or pulumi.Config(CONFIG_NAMESPACE)
    raw: dict[str, Any] = {}
    for key in _SCALAR_KEYS:
        value = config.get(key)
        if value is not None:
            raw[key] = value
    for alias in _area_keys():
        text = config.get(alias)
        if text is not None:
            raw[alias] = _decode_object(alias, text)
    secret_present = [key for key in SECRET_KEYS if config.get_secret(key) is not None]
    raw.update(_unknown_keys(config))
    settings = parse_settings(pulumi.get_stack(), raw, secret_keys=secret_present)
    secrets = StackSecrets(
        auth_jwt_secret=config.get_secret("authJwtSecret"),
        database_url=config.get_secret("databaseUrl"),
        kafka_password=config.get_secret("kafkaPassword"),
        image_pull_token=config.get_secret("imagePullToken"),
    )
    return settings, secrets


def _decode_object(key: str, text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # A scalar where an object is expected: let validation name the key and value.
        return text


def _unknown_keys(config: pulumi.Config) -> dict[str, Any]:
    """Keys in this project's namespace that the program does not know (typos)."""
    from pulumi.runtime import config as runtime_config

    known = set(_SCALAR_KEYS) | set(_area_keys()) | set(SECRET_KEYS)
    unknown: dict[str, Any] = {}
    for full_key in {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}:
        namespace, _, key = str(full_key).partition(":")
        if namespace == config.name and key not in known:
            unknown[key] = "<set>"
    return unknown


# --------------------------------------------------------------------------- ephemeral stacks


def ephemeral_stack_config(
    stack: str,
    *,
    owner: str,
    base_stack: str,
    image_tag: str,
    ttl: timedelta,
    image_registry: str = "",
    digests: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The config of a `dev-<name>`/`pr-<n>` stack, validated, as a stack file holds it.

    Used by `todo-infra ephemeral up`: write it with `pulumi config set --path` or as
    `stacks/Pulumi.<stack>.yaml`'s `config:` mapping.
    """
    if not ephemeral_contract.MIN_TTL <= ttl <= ephemeral_contract.MAX_TTL:
        raise SettingsError(
            f"ttl: got {ttl}; must be between {ephemeral_contract.MIN_TTL.seconds // 60} "
            f"minutes and {ephemeral_contract.MAX_TTL.days} days"
        )
    expires = (now or datetime.now(UTC)) + ttl
    raw: dict[str, Any] = {
        "kind": StackKind.EPHEMERAL.value,
        "environment": AppEnv.DEV.value,
        "ephemeral": {
            "baseStack": base_stack,
            "owner": owner,
            "expiresAt": expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "database": {"mode": "shared"},
        "kafka": {
            "mode": "strimzi",
            "storage": {"type": "ephemeral"},
            "resources": {
                "cpuRequest": "200m",
                "memoryRequest": "768Mi",
                "cpuLimit": "1",
                "memoryLimit": "768Mi",
            },
            "topics": {"partitions": 1, "retentionHours": 24, "dlqRetentionHours": 24},
        },
        "apps": {
            "images": {
                "registry": image_registry,
                "tag": image_tag,
                "digests": dict(digests or {}),
            },
            # One pod each, small pools: they share the base stack's database server.
            **{app: {"minReplicas": 1, "maxReplicas": 1, "dbPoolSize": 1} for app in APP_IDS},
        },
    }
    parse_settings(stack, raw)
    return {f"{CONFIG_NAMESPACE}:{key}": value for key, value in raw.items()}
