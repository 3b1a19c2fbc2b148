"""The Todo platform: settings → components → exports. Wiring only.

Every resource in the cluster is created through the Cluster's explicit provider. Order
comes from data flow and from the few `depends_on` that data flow cannot express (custom
resources after the release that installs their CRDs; apps after migrations, Kafka and
their Dapr resources).

Stacks with a cluster of their own (minikube, staging, prod) also get the monitoring stack
and the edge; ephemeral stacks are apps only, scraped by their base stack's Prometheus.
"""

import pulumi

from apps.contracts.services import APP_PORT, APPS, AppId, Role
from infra.components import base_stack as base_outputs
from infra.components.app_secrets import AppSecrets, AppSecretsArgs
from infra.components.base_stack import BaseStack, BaseStackArgs
from infra.components.cluster import CLUSTER_VERSION_OUTPUT, Cluster, ClusterArgs
from infra.components.dapr import Dapr, DaprArgs
from infra.components.database import Database, DatabaseArgs, SharedServer
from infra.components.edge import ENVOY_PROXY_POD_LABELS, ApiPath, Edge, EdgeArgs
from infra.components.fastapi_service import FastApiService, FastApiServiceArgs, OtlpExport
from infra.components.kafka import Kafka, KafkaArgs
from infra.components.migrations import Migrations, MigrationsArgs
from infra.components.namespaces import Namespaces, NamespacesArgs
from infra.components.observability import (
    COLLECTOR_POD_LABELS,
    GRAFANA_CONTAINER_PORT,
    GRAFANA_POD_LABELS,
    GRAFANA_SERVICE_PORT,
    OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    PROMETHEUS_POD_LABELS,
    Observability,
    ObservabilityArgs,
    collector_endpoint,
)
from infra.settings import (
    DoksCluster,
    ExternalDatabase,
    InClusterDatabase,
    LocalCluster,
    StackKind,
    load_settings,
)

settings, stack_secrets = load_settings()
ephemeral = settings.kind is StackKind.EPHEMERAL
names = settings.namespaces
apps_namespace = settings.apps_namespace

base = (
    BaseStack("base", BaseStackArgs(stack=settings.ephemeral.base_stack))
    if settings.ephemeral is not None
    else None
)

cluster = Cluster(
    "cluster",
    ClusterArgs(
        resource_prefix=settings.resource_prefix,
        settings=settings.cluster,
        existing_cluster_name=base.cluster_name if base else None,
    ),
)
in_cluster = pulumi.ResourceOptions(providers=[cluster.provider])

database_cidr: pulumi.Input[str] | None
if isinstance(settings.database, InClusterDatabase):
    database_cidr = None
elif isinstance(settings.database, ExternalDatabase):
    database_cidr = "0.0.0.0/0"
else:
    database_cidr = base.vpc_ip_range if base else cluster.vpc_ip_range

namespaces = Namespaces(
    "namespaces",
    NamespacesArgs(
        apps=apps_namespace,
        dapr=base.dapr_namespace if base else names.dapr,
        kafka=apps_namespace if ephemeral else names.kafka,
        api_server=cluster.api_server,
        database_ports=settings.database_ports,
        database_cidr=database_cidr,
        create_system_namespaces=not ephemeral,
        kafka_settings=settings.kafka,
        monitoring=base.monitoring_namespace if base else names.monitoring,
        monitoring_pod_labels=PROMETHEUS_POD_LABELS,
    ),
    opts=in_cluster,
)

database = Database(
    "database",
    DatabaseArgs(
        namespace=namespaces.apps,
        settings=settings.database,
        resource_prefix=settings.resource_prefix,
        database_name=f"todo_{settings.stack.replace('-', '_')}" if ephemeral else "todo",
        user_name=f"todo-{settings.stack}" if ephemeral else "todo",
        region=settings.cluster.region if isinstance(settings.cluster, DoksCluster) else None,
        vpc_id=cluster.vpc_id,
        kubernetes_cluster_id=cluster.cluster_id,
        shared_server=(
            SharedServer(cluster_id=base.database_cluster_id, admin_url=base.database_admin_url)
            if base
            else None
        ),
        external_url=stack_secrets.database_url,
    ),
    opts=in_cluster,
)

kafka = Kafka(
    "kafka",
    KafkaArgs(
        settings=settings.kafka,
        namespace=namespaces.kafka,
        apps_namespace=namespaces.apps,
        install_operator=not ephemeral,
        user_name=f"{apps_namespace}-apps",
        external_password=stack_secrets.kafka_password,
    ),
    opts=in_cluster,
)

app_secrets = AppSecrets(
    "app-secrets",
    AppSecretsArgs(
        namespace=namespaces.apps,
        auth_jwt_secret=stack_secrets.auth_jwt_secret,
        images=settings.apps.images,
        pull_token=stack_secrets.image_pull_token,
    ),
    opts=in_cluster,
)

# Traces: stacks with a cluster of their own run the collector and Tempo in the monitoring
# namespace; the sidecars (Dapr's Configuration) and the apps (OTEL_* env) send there.
# Ephemeral stacks send none: their base stack's collector does not admit them.
tracing = None if ephemeral or not settings.observability.tracing.enabled else names.monitoring
dapr_settings = (
    settings.dapr.model_copy(
        update={"otel_endpoint": settings.dapr.otel_endpoint or collector_endpoint(tracing)}
    )
    if tracing is not None
    else settings.dapr
)
otlp = (
    OtlpExport(
        endpoint=f"http://{collector_endpoint(tracing, OTLP_HTTP_PORT)}",
        sampler_ratio=settings.dapr.tracing_sampling_rate,
        collector_namespace=tracing,
        collector_pod_labels=COLLECTOR_POD_LABELS,
        ports=(OTLP_GRPC_PORT, OTLP_HTTP_PORT),
    )
    if tracing is not None
    else None
)

dapr = Dapr(
    "dapr",
    DaprArgs(
        settings=dapr_settings,
        namespace=namespaces.dapr,
        apps_namespace=namespaces.apps,
        kafka_bootstrap=kafka.bootstrap,
        kafka_credentials_secret=kafka.credentials_secret,
        kafka_sasl_mechanism=kafka.sasl_mechanism,
        kafka_tls=kafka.tls,
        # Direct, never the pool: the state store's pgx caches prepared statements by
        # default, which transaction pooling breaks (infra/settings/connections.py).
        database_secret=database.secret_name,
        reminder_scan_schedule=settings.apps.reminder_scan_schedule,
        install_control_plane=not ephemeral,
    ),
    opts=in_cluster,
)

backend_image = settings.apps.image(AppId.BACKEND)
migrations = Migrations(
    "migrations",
    MigrationsArgs(
        namespace=namespaces.apps,
        image=backend_image,
        database_secret=database.secret_name,  # direct: a migration is one session
        log_level=settings.apps.log_level,
        after=database.ready,
        image_pull_secret=app_secrets.image_pull_secret,
    ),
    opts=in_cluster,
)

observability = (
    None
    if ephemeral
    else Observability(
        "observability",
        ObservabilityArgs(
            namespace=names.monitoring,
            apps_namespaces=[apps_namespace],
            api_server=cluster.api_server,
            retention=settings.observability.retention,
            retention_size=settings.observability.retention_size,
            storage_size=settings.observability.storage_size,
            storage_class=settings.observability.storage_class,
            alertmanager=settings.observability.alertmanager,
            grafana_url=settings.grafana_url,
            gateway_namespace=names.gateway,
            gateway_pod_labels=ENVOY_PROXY_POD_LABELS,
            prometheus_resources=settings.observability.prometheus.manifest(),
            grafana_resources=settings.observability.grafana.manifest(),
            tracing=settings.observability.tracing if tracing is not None else None,
            # Central logs where the stack turns them on (every pod of the cluster,
            # ephemeral stacks' included, ships through its base stack's Alloy).
            logs=settings.observability.logs if settings.observability.logs.enabled else None,
            trace_sender_namespaces=[namespaces.apps],
        ),
        opts=in_cluster,
    )
)
# The release installs the ServiceMonitor CRD, so the apps' monitors wait for it; an
# ephemeral stack's monitors need nothing: its base stack's release installed the CRD.
monitoring_release: list[pulumi.Resource] = [observability.release] if observability else []
gateway_namespace = base.gateway_namespace if base else names.gateway

services = {
    app.app_id: FastApiService(
        app.app_id,
        FastApiServiceArgs(
            app_id=app.app_id,
            role=app.role,
            namespace=namespaces.apps,
            image=settings.apps.image(app.app_id),
            settings=settings.apps.service(app.app_id),
            app_env=settings.environment.value,
            log_level=settings.apps.log_level,
            dapr_config=dapr.config_names[app.app_id],
            dapr_sidecar=settings.dapr.sidecar,
            dapr_log_level=settings.dapr.log_level,
            # Through the connection pool where there is one; sessions of their own
            # (App.session_connections) and the migrations go straight to the database.
            database_secret=database.service_secret_name,
            transaction_pooling=database.transaction_pooling,
            database_direct_secret=(
                database.secret_name
                if database.transaction_pooling and app.session_connections
                else None
            ),
            auth_secret=app_secrets.auth_secret,
            app_token_secret=app_secrets.app_token_secret,
            dapr_api_token_secret=app_secrets.dapr_api_token_secret,
            monitoring_namespace=base.monitoring_namespace if base else names.monitoring,
            monitoring_pod_labels=PROMETHEUS_POD_LABELS,
            # The Envoy proxies reach the services with a public API.
            ingress_namespaces=[gateway_namespace] if app.public_api_prefixes else [],
            ingress_pod_labels=ENVOY_PROXY_POD_LABELS,
            public_egress_ports=app.public_egress_ports,
            otlp=otlp,
            extra_env=settings.apps.limits.app_env(),
            image_pull_secret=app_secrets.image_pull_secret,
            service_monitor_after=monitoring_release,
            depends_on=[migrations.job, *kafka.ready, *dapr.ready],
        ),
        opts=in_cluster,
    )
    for app in APPS
}

if observability is not None:
    edge = Edge(
        "edge",
        EdgeArgs(
            namespace=names.gateway,
            api_hostname=settings.edge.api_hostname,
            backend_service=services[AppId.BACKEND].service_name,
            backend_namespace=namespaces.apps,
            backend_port=APP_PORT,
            # The backend's `/api` is the catch-all; the workers' longer prefixes win.
            extra_api_paths=[
                ApiPath(prefix, services[app.app_id].service_name, APP_PORT)
                for app in APPS
                if app.role is not Role.API
                for prefix in app.public_api_prefixes
            ],
            grafana_hostname=settings.edge.grafana_hostname,
            grafana_service=observability.grafana_service,
            grafana_namespace=observability.namespace,
            grafana_port=GRAFANA_SERVICE_PORT,
            grafana_target_port=GRAFANA_CONTAINER_PORT,
            grafana_pod_labels=GRAFANA_POD_LABELS,
            api_server=cluster.api_server,
            # DOKS ships the Gateway API CRDs; minikube has none.
            install_gateway_api_crds=not settings.is_cloud,
            tls=settings.tls,
            acme_email=settings.edge.acme_email,
            acme_staging=settings.edge.acme_staging,
            service_type=settings.edge.service_type,
            load_balancer_name=f"{settings.resource_prefix}-edge" if settings.is_cloud else None,
            # Both ends of PROXY protocol (the load balancer's annotation, Envoy's policy).
            proxy_protocol=settings.proxy_protocol,
            envoy_replicas=settings.edge.envoy_replicas,
            rate_limit_per_minute=settings.edge.rate_limit.requests_per_minute,
            monitoring_namespace=observability.namespace,
            monitoring_pod_labels=PROMETHEUS_POD_LABELS,
        ),
        opts=in_cluster,
    )
    pulumi.export("apiUrl", edge.api_url)
    pulumi.export("grafanaUrl", edge.grafana_url)

pulumi.export("stackKind", settings.kind.value)
pulumi.export("appsNamespace", namespaces.apps)
pulumi.export("backendUrl", services[AppId.BACKEND].url)
# Encrypted in state like every secret; the deploy's smoke test reads it with
# `pulumi stack output authJwtKey --show-secrets` to sign a throw-away user's token.
pulumi.export("authJwtKey", app_secrets.jwt_key)
pulumi.export("kafkaBootstrap", kafka.bootstrap)
pulumi.export(
    base_outputs.NAMESPACES,
    {
        "apps": namespaces.apps,
        "dapr": namespaces.dapr,
        "kafka": namespaces.kafka,
        "monitoring": names.monitoring,
        "gateway": names.gateway,
    },
)
if isinstance(settings.cluster, LocalCluster):
    pulumi.export("kubeContext", settings.cluster.kube_context)
if cluster.kubeconfig is not None:
    pulumi.export("kubeconfig", cluster.kubeconfig)
if cluster.version is not None:
    # Read back by the next run (Cluster._kubernetes_version): never ask for less than this.
    pulumi.export(CLUSTER_VERSION_OUTPUT, cluster.version)
if settings.is_cloud:
    # What ephemeral stacks read through their StackReference (base_stack.py).
    pulumi.export(base_outputs.CLUSTER_NAME, cluster.cluster_name)
    pulumi.export(base_outputs.VPC_IP_RANGE, cluster.vpc_ip_range)
    if database.cluster_id is not None and database.admin_url is not None:
        pulumi.export(base_outputs.DATABASE_CLUSTER_ID, database.cluster_id)
        pulumi.export(base_outputs.DATABASE_ADMIN_URL, database.admin_url)
if settings.ephemeral is not None:
    pulumi.export("owner", settings.ephemeral.owner)
    pulumi.export("expiresAt", settings.ephemeral.expires_at.isoformat())
