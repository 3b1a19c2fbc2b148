"""Rules that span areas: what each kind of stack may use, what production needs,
the images a stack must name, the database connection budget."""

from __future__ import annotations

from apps.contracts import ephemeral as ephemeral_contract
from apps.contracts.services import APP_IDS
from infra.settings.cluster import DoksCluster
from infra.settings.connections import connection_budget
from infra.settings.database import ManagedDatabase
from infra.settings.edge import LOCAL_DOMAIN
from infra.settings.ephemeral import EphemeralSettings
from infra.settings.errors import allowed_keys
from infra.settings.kafka import StrimziKafka
from infra.settings.stack import Settings
from infra.settings.types import CONFIG_NAMESPACE, AppEnv, StackKind

_KIND_RULES: dict[StackKind, dict[str, tuple[str, ...]]] = {
    StackKind.MINIKUBE: {"cluster": ("LocalCluster",), "database": ("inCluster", "external")},
    StackKind.CLOUD: {"cluster": ("DoksCluster",), "database": ("managed", "external")},
    StackKind.EPHEMERAL: {"cluster": ("None",), "database": ("shared", "external")},
}


def cross_checks(settings: Settings, secret_keys: set[str]) -> list[str]:
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
                else f"{allowed_keys(DoksCluster)}"
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
                f"(keys: {allowed_keys(EphemeralSettings)})"
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
    """The services at max replicas fit the connection pool, and the pool with the direct
    connections fits the managed plan (infra/settings/connections.py)."""
    return connection_budget(settings).errors()
