"""Typed, validated stack settings: the one place the program reads `pulumi.Config`.

A stack's config (`stacks/Pulumi.<stack>.yaml`) holds a few scalar keys (`todo:kind`,
`todo:environment`) and one object per area (`todo:cluster`, `todo:database`, ...). Each
area is a frozen pydantic model in a module of its own; unknown keys are rejected, so a
misspelt key fails instead of silently falling back to a default. Every error names the
full key (`todo:kafka.topics.partitions`), the value it got and what is allowed.

Secrets never pass through these models: they are read with `get_secret` into
`StackSecrets` (Pulumi secret outputs) and only their presence is validated here.

The package, by job:

* `types`: value types (quantities, sizes, regions), `StackKind`, `AppEnv`, the base model;
* one module per area: `namespaces`, `cluster`, `database`, `kafka`, `dapr`, `services`
  (`todo:apps`), `observability`, `edge`, `ephemeral`; `stack` holds `Settings`, all of them;
* `errors`: validation errors rewritten to name the key; `rules`: the cross-area rules;
  `connections`: the database connection budget (a rule across `apps` and `database`);
* `loading`: `parse_settings` (a mapping) and `load_settings` (the running stack).

Adding an area is additive: a module with its model, a field on `Settings` with a
default, and `load_settings` reads `todo:<fieldAlias>` for it (as `observability` and
`edge` do). Everything consumers use is re-exported here: import from `infra.settings`.
"""

from __future__ import annotations

from infra.settings.cluster import (
    MIN_DOKS_MINOR,
    ClusterSettings,
    DoksCluster,
    Ipv4Network,
    LocalCluster,
    MaintenanceWindow,
    NodePool,
)
from infra.settings.connections import ConnectionBudget, ServiceConnections, connection_budget
from infra.settings.dapr import DaprSettings
from infra.settings.database import (
    IN_CLUSTER_DATABASE_PORT,
    MANAGED_DATABASE_PORT,
    MANAGED_POOL_PORT,
    ONE_OFF_CONNECTIONS,
    STATE_STORE_MAX_CONNECTIONS,
    ConnectionPool,
    DatabaseSettings,
    ExternalDatabase,
    InClusterDatabase,
    ManagedDatabase,
    SharedDatabase,
    managed_connection_limit,
)
from infra.settings.edge import LOCAL_DOMAIN, DomainName, EdgeSettings, EmailAddress
from infra.settings.ephemeral import EphemeralSettings
from infra.settings.kafka import (
    ExternalKafka,
    KafkaSettings,
    KafkaStorage,
    StrimziKafka,
    TopicSettings,
)
from infra.settings.loading import SECRET_KEYS, StackSecrets, load_settings, parse_settings
from infra.settings.namespaces import NamespaceSettings
from infra.settings.observability import (
    LogsSettings,
    ObservabilitySettings,
    PrometheusByteSize,
    PrometheusDuration,
    StorageClassName,
    TracingSettings,
)
from infra.settings.rules import RELEASE_IMAGES_HINT
from infra.settings.services import (
    AppIdKey,
    AppsSettings,
    ImageSettings,
    RequestLimits,
    ServiceSettings,
)
from infra.settings.stack import Settings
from infra.settings.types import (
    CONFIG_NAMESPACE,
    AppEnv,
    CpuQuantity,
    Digest,
    DnsLabel,
    DoDatabaseSize,
    DoDropletSize,
    DoRegion,
    ImageTag,
    JvmHeap,
    MemoryQuantity,
    Resources,
    SettingsError,
    SettingsModel,
    StackKind,
    jvm_bytes,
    memory_bytes,
)

__all__ = [
    "AppEnv",
    "AppIdKey",
    "AppsSettings",
    "CONFIG_NAMESPACE",
    "ClusterSettings",
    "ConnectionBudget",
    "ConnectionPool",
    "CpuQuantity",
    "DaprSettings",
    "DatabaseSettings",
    "Digest",
    "DnsLabel",
    "DoDatabaseSize",
    "DoDropletSize",
    "DoRegion",
    "DoksCluster",
    "DomainName",
    "EdgeSettings",
    "EmailAddress",
    "EphemeralSettings",
    "ExternalDatabase",
    "ExternalKafka",
    "IN_CLUSTER_DATABASE_PORT",
    "ImageSettings",
    "ImageTag",
    "InClusterDatabase",
    "Ipv4Network",
    "JvmHeap",
    "KafkaSettings",
    "KafkaStorage",
    "LOCAL_DOMAIN",
    "LocalCluster",
    "LogsSettings",
    "MANAGED_DATABASE_PORT",
    "MANAGED_POOL_PORT",
    "MIN_DOKS_MINOR",
    "MaintenanceWindow",
    "ManagedDatabase",
    "MemoryQuantity",
    "NamespaceSettings",
    "NodePool",
    "ONE_OFF_CONNECTIONS",
    "ObservabilitySettings",
    "PrometheusByteSize",
    "PrometheusDuration",
    "RELEASE_IMAGES_HINT",
    "Resources",
    "SECRET_KEYS",
    "STATE_STORE_MAX_CONNECTIONS",
    "RequestLimits",
    "ServiceConnections",
    "ServiceSettings",
    "Settings",
    "SettingsError",
    "SettingsModel",
    "SharedDatabase",
    "StackKind",
    "StackSecrets",
    "StorageClassName",
    "StrimziKafka",
    "TopicSettings",
    "TracingSettings",
    "connection_budget",
    "jvm_bytes",
    "load_settings",
    "managed_connection_limit",
    "memory_bytes",
    "parse_settings",
]
