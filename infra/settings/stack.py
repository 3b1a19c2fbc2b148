"""`Settings`: every area of one stack, and what follows from them."""

from __future__ import annotations

from infra.settings.cluster import ClusterSettings
from infra.settings.dapr import DaprSettings
from infra.settings.database import (
    IN_CLUSTER_DATABASE_PORT,
    MANAGED_DATABASE_PORT,
    MANAGED_POOL_PORT,
    DatabaseSettings,
    ExternalDatabase,
    InClusterDatabase,
    ManagedDatabase,
)
from infra.settings.edge import EdgeSettings
from infra.settings.ephemeral import EphemeralSettings
from infra.settings.kafka import KafkaSettings
from infra.settings.namespaces import NamespaceSettings
from infra.settings.observability import ObservabilitySettings
from infra.settings.services import AppsSettings
from infra.settings.types import AppEnv, SettingsModel, StackKind


class Settings(SettingsModel):
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
    def proxy_protocol(self) -> bool:
        """PROXY protocol from the load balancer to Envoy (the client's address for the
        rate limit): exactly where the Envoy Service is a DigitalOcean load balancer, which
        is every cloud stack (`edge.serviceType` may only be LoadBalancer there); never
        minikube or kind, where nothing in front of Envoy sends the header."""
        return self.is_cloud

    @property
    def grafana_url(self) -> str:
        """Where Grafana is served (its `root_url`)."""
        return f"{'https' if self.tls else 'http'}://{self.edge.grafana_hostname}"

    @property
    def database_ports(self) -> tuple[int, ...]:
        """The ports database clients connect to: the server's, and a connection pool's."""
        if isinstance(self.database, ExternalDatabase):
            return (self.database.port,)
        if isinstance(self.database, InClusterDatabase):
            return (IN_CLUSTER_DATABASE_PORT,)
        if isinstance(self.database, ManagedDatabase) and self.database.pool is not None:
            return (MANAGED_DATABASE_PORT, MANAGED_POOL_PORT)
        return (MANAGED_DATABASE_PORT,)

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
