"""Stack settings: the committed stacks parse, and bad config names key, value and rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from infra.settings import (
    AppEnv,
    DoksCluster,
    ManagedDatabase,
    RequestLimits,
    SettingsError,
    StackKind,
    StrimziKafka,
    connection_budget,
    parse_settings,
)
from infra.tooling.plan.ephemeral_config import ephemeral_stack_config
from infra.tooling.plan.release_images import PLACEHOLDER_REGISTRY
from infra.tooling.plan.runner import config_from_mapping, load_stack_config, run_program
from infra.tooling.repo import STACKS_DIR


def _raw(stack: str) -> dict[str, Any]:
    config = load_stack_config(stack)
    raw: dict[str, Any] = {}
    for key, value in config.values.items():
        short = key.split(":", 1)[1]
        raw[short] = json.loads(value) if value.startswith(("{", "[")) else value
    return raw


def _minikube(**overrides: Any) -> dict[str, Any]:
    raw = _raw("minikube")
    raw.update(overrides)
    return raw


def _error(stack: str, raw: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings(stack, raw, **kwargs)
    return str(caught.value)


@pytest.mark.parametrize("stack", ["minikube", "staging", "prod"])
def test_committed_stacks_are_valid(stack: str) -> None:
    settings = parse_settings(stack, _raw(stack))
    assert settings.stack == stack
    images = settings.apps.images
    assert images is not None and images.tag != "latest"
    # Cloud stack files name no images: the release pins them (issue 9); an offline plan
    # fills in placeholders that cannot resolve.
    in_file = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert ("images" in in_file["todo:apps"]) == (stack == "minikube")
    assert (images.registry == PLACEHOLDER_REGISTRY) == (stack != "minikube")


def test_prod_is_highly_available() -> None:
    settings = parse_settings("prod", _raw("prod"))
    assert settings.kind is StackKind.CLOUD and settings.environment is AppEnv.PROD
    assert isinstance(settings.cluster, DoksCluster) and settings.cluster.ha
    assert isinstance(settings.database, ManagedDatabase) and settings.database.node_count >= 2
    assert isinstance(settings.kafka, StrimziKafka)
    assert (settings.kafka.controllers, settings.kafka.brokers) == (3, 3)
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)
    assert settings.dapr.ha


def test_wrong_value_names_key_value_and_allowed() -> None:
    raw = _raw("staging")
    raw["cluster"] = {**raw["cluster"], "region": "mars1"}
    message = _error("staging", raw)
    assert "todo:cluster.region: got 'mars1'" in message
    assert "'fra1'" in message and "'nyc3'" in message


def test_missing_key_is_named() -> None:
    raw = _minikube()
    del raw["apps"]
    assert "todo:apps: required but missing" in _error("minikube", raw)


def test_misspelt_key_lists_the_allowed_ones() -> None:
    raw = _minikube(dapr={"logLevl": "debug"})
    message = _error("minikube", raw)
    assert "todo:dapr.logLevl: got 'debug'; unknown key; allowed keys: ha, logLevel" in message


def test_misspelt_key_in_a_mode_lists_that_modes_keys() -> None:
    message = _error("minikube", _minikube(database={"mode": "inCluster", "storag": "1Gi"}))
    assert "todo:database.storag: got '1Gi'; unknown key; allowed keys: image, mode," in message


def test_unknown_top_level_key() -> None:
    message = _error("minikube", _minikube(clsuter={"kubeContext": "x"}))
    assert "todo:clsuter: unknown key; allowed keys:" in message and "cluster" in message


def test_bad_mode_lists_the_modes() -> None:
    message = _error("minikube", _minikube(database={"mode": "mysql"}))
    assert "todo:database: got {'mode': 'mysql'}" in message
    assert "'inCluster', 'managed', 'external', 'shared'" in message


def test_cross_field_rules() -> None:
    kafka = {"mode": "strimzi", "brokers": 1, "replicationFactor": 3}
    message = _error("minikube", _minikube(kafka=kafka))
    assert "replicationFactor (3) must be <= brokers (1)" in message
    pool = {
        "region": "fra1",
        "versionPrefix": "1.34.",
        "vpcIpRange": "10.1.0.0/20",
        "nodePool": {"minNodes": 4, "maxNodes": 2},
    }
    message = _error("staging", {**_raw("staging"), "cluster": pool})
    assert (
        "todo:cluster.nodePool: got" in message
        and "maxNodes (2) must be >= minNodes (4)" in message
    )


def test_jvm_heap_leaves_a_quarter_of_the_limit() -> None:
    small = {"cpuRequest": "250m", "memoryRequest": "1Gi", "cpuLimit": "1", "memoryLimit": "1Gi"}
    kafka: dict[str, Any] = {"mode": "strimzi", "resources": small, "heap": "800m"}
    assert "heap (800m) must be at most 3/4 of the memory limit (1Gi)" in _error(
        "minikube", _minikube(kafka=kafka)
    )
    kafka = {"mode": "strimzi", "controllers": 1, "controllerHeap": "1g"}
    assert "controllerHeap (1g) must be at most 3/4" in _error("minikube", _minikube(kafka=kafka))
    kafka = {"mode": "strimzi", "heap": "512MB"}
    assert "todo:kafka.heap: got '512MB'" in _error("minikube", _minikube(kafka=kafka))
    parse_settings(
        "minikube", _minikube(kafka={"mode": "strimzi", "resources": small, "heap": "768m"})
    )


def test_standby_nodes_need_a_2gb_plan() -> None:
    raw = _raw("prod")
    raw["database"] = {**raw["database"], "size": "db-s-1vcpu-1gb"}
    message = _error("prod", raw)
    assert "todo:database: got" in message
    assert "nodeCount 2 (standby nodes) needs a plan with >= 2 GB RAM" in message


def test_the_services_must_fit_the_connection_pool() -> None:
    raw = _raw("prod")
    raw["apps"] = {**raw["apps"], "backend": {"minReplicas": 3, "maxReplicas": 5, "dbPoolSize": 2}}
    message = _error("prod", raw)
    # backend 5 × 2 × 2 = 20, notification and recurring 3 × 2 × 1 = 6 each: 32 > 28.
    assert (
        "todo:apps.*.maxReplicas/dbPoolSize, todo:database.pool.size: the services may open "
        "32 connections to the pool at max replicas (backend 5 × 4 = 20, notification 3 × 2 = "
        "6, recurring 3 × 2 = 6: max replicas × 2 × dbPoolSize); database.pool.size is 28: "
        "lower them or raise it"
    ) in message


def test_the_pool_and_the_direct_connections_must_fit_the_database_plan() -> None:
    raw = _raw("prod")
    raw["database"] = {**raw["database"], "pool": {"size": 40}}
    message = _error("prod", raw)
    # Pool 40 + direct 12 (sidecars 10, jobs 2) = 52 > 47.
    assert (
        "todo:database.pool.size: got 40; with the direct 12: sidecars' state stores and "
        "sessions 10, jobs 2 the database would need 52 connections and database.size "
        "'db-s-1vcpu-2gb' accepts 47 (DigitalOcean: 25 per GB of RAM, 3 reserved)"
    ) in message
    raw["database"] = {**raw["database"], "size": "db-s-2vcpu-4gb"}  # 97
    assert parse_settings("prod", raw).database.mode == "managed"


def test_without_a_pool_every_connection_counts_against_the_plan() -> None:
    raw = _raw("prod")
    raw["database"] = {k: v for k, v in raw["database"].items() if k != "pool"}
    raw["apps"] = {**raw["apps"], "backend": {"minReplicas": 3, "maxReplicas": 8, "dbPoolSize": 4}}
    message = _error("prod", raw)
    # Pools: backend 8 × 8 = 64, 6, 6 = 76; direct: sidecars 14 + jobs 2 = 16.
    assert (
        "todo:apps.*.maxReplicas/dbPoolSize: the services may open 92 database connections "
        "at max replicas (pools 76: backend 8 × 8 = 64, notification 3 × 2 = 6, recurring "
        "3 × 2 = 6; direct 16: sidecars' state stores and sessions 14, jobs 2); "
        "database.size 'db-s-1vcpu-2gb' accepts 47"
    ) in message


def test_pool_keys_are_checked_and_named() -> None:
    raw = _raw("staging")
    raw["database"] = {**raw["database"], "pool": {"size": 20, "mode": "session"}}
    assert "todo:database.pool.mode: got 'session'" in _error("staging", raw)
    raw["database"] = {**raw["database"], "pool": {"size": 0}}
    assert "todo:database.pool.size: got 0; Input should be greater than or equal to 1" in _error(
        "staging", raw
    )
    raw["database"] = {**raw["database"], "pool": {"size": 20, "sise": 3}}
    assert "todo:database.pool.sise: got 3; unknown key; allowed keys: mode, size" in _error(
        "staging", raw
    )


@pytest.mark.parametrize(
    ("stack", "pool", "pooled", "direct", "limit"),
    [("staging", 20, 20, 9, 47), ("prod", 28, 28, 12, 47)],
)
def test_committed_cloud_stacks_fit_their_pool_and_plan(
    stack: str, pool: int, pooled: int, direct: int, limit: int
) -> None:
    budget = connection_budget(parse_settings(stack, _raw(stack)))
    assert (budget.pool_size, budget.pooled, budget.direct, budget.limit) == (
        pool,
        pooled,
        direct,
        limit,
    )
    assert budget.errors() == []
    backend = next(s for s in budget.services if s.app == "backend")
    assert backend.direct_per_pod == 1  # the sidecar's state store (no LISTEN any more)


def test_staging_leaves_room_for_a_developer_stack() -> None:
    staging = connection_budget(parse_settings("staging", _raw("staging")))
    now = datetime(2026, 1, 4, 10, 0, tzinfo=UTC)
    config = ephemeral_stack_config(
        "dev-alice",
        owner="alice",
        base_stack="acme/todo/staging",
        image_tag="sha-0123abc",
        image_registry="ghcr.io/todo-platform",
        ttl=timedelta(hours=8),
        now=now,
    )
    raw = {key.split(":", 1)[1]: value for key, value in config.items()}
    developer = connection_budget(parse_settings("dev-alice", raw))
    assert developer.pool_size is None and developer.limit is None  # staging's database
    assert staging.headroom is not None and staging.headroom >= developer.database == 11


def test_latest_tag_is_refused() -> None:
    message = _error("minikube", _minikube(apps={"images": {"tag": "latest"}}))
    assert "todo:apps.images.tag: got 'latest'; must be a version or commit tag" in message


def test_kind_decides_what_is_allowed() -> None:
    message = _error("minikube", _minikube(database={"mode": "managed"}))
    assert (
        "todo:database.mode: got 'managed'; kind 'minikube' allows ['inCluster', 'external']"
        in message
    )
    raw = _raw("staging")
    raw["cluster"] = {"kubeContext": "minikube"}
    assert "kind 'cloud' needs a DoksCluster" in _error("staging", raw)


def test_prod_rules_name_each_key() -> None:
    raw = _raw("prod")
    raw["cluster"] = {**raw["cluster"], "ha": False}
    raw["database"] = {**raw["database"], "nodeCount": 1}
    raw["dapr"] = {"ha": False}
    message = _error("prod", raw)
    assert "todo:cluster.ha: got False; environment 'prod' needs true" in message
    assert "todo:database.nodeCount: got 1; environment 'prod' needs >= 2" in message
    assert "todo:dapr.ha: got False" in message


def test_secrets_must_be_secret_and_present() -> None:
    raw = _minikube(database={"mode": "external"})
    assert "todo:databaseUrl: required but missing for database.mode 'external'" in _error(
        "minikube", raw
    )
    raw["databaseUrl"] = "postgresql://u:p@h/db"
    assert "todo:databaseUrl: must be set as a secret" in _error("minikube", raw)
    assert parse_settings("minikube", raw, secret_keys=["databaseUrl"]).database.mode == "external"


def test_ephemeral_config_is_generated_and_valid() -> None:
    now = datetime(2026, 1, 4, 10, 0, tzinfo=UTC)
    config = ephemeral_stack_config(
        "dev-alice",
        owner="alice",
        base_stack="acme/todo/staging",
        image_tag="sha-1234567",
        image_registry="ghcr.io/acme",
        ttl=timedelta(hours=8),
        now=now,
    )
    assert config["todo:kind"] == "ephemeral"
    assert config["todo:ephemeral"]["expiresAt"] == "2026-01-04T18:00:00Z"
    raw = {key.split(":", 1)[1]: value for key, value in config.items()}
    settings = parse_settings("dev-alice", raw)
    assert settings.apps_namespace == "todo-dev-alice"
    assert settings.cluster is None and settings.database.mode == "shared"


def test_ephemeral_rules() -> None:
    kwargs: dict[str, Any] = {
        "owner": "a",
        "base_stack": "acme/todo/staging",
        "image_tag": "t",
        "image_registry": "ghcr.io/acme",
    }
    with pytest.raises(SettingsError, match="ttl: got 30 days"):
        ephemeral_stack_config("dev-a", ttl=timedelta(days=30), **kwargs)
    with pytest.raises(SettingsError, match="stack name: got 'alice'"):
        ephemeral_stack_config("alice", ttl=timedelta(hours=1), **kwargs)
    raw = {
        k.split(":", 1)[1]: v
        for k, v in ephemeral_stack_config("pr-42", ttl=timedelta(hours=1), **kwargs).items()
    }
    raw["cluster"] = {"kubeContext": "minikube"}
    assert "an ephemeral stack uses its base stack's cluster" in _error("pr-42", raw)
    raw.pop("cluster")
    raw["ephemeral"] = {**raw["ephemeral"], "expiresAt": "2026-01-04T18:00:00"}
    assert "todo:ephemeral.expiresAt: got" in _error("pr-42", raw)


def test_the_program_fails_with_the_message() -> None:
    raw = _minikube(kafka={"mode": "strimzi", "brokers": 0})
    with pytest.raises(Exception, match=r"todo:kafka.brokers: got 0; Input should be greater"):
        run_program("minikube", config_from_mapping(raw))


def test_a_typo_in_the_stack_file_fails_the_program() -> None:
    raw = _minikube(databse={"mode": "inCluster"})
    with pytest.raises(Exception, match="todo:databse: unknown key"):
        run_program("minikube", config_from_mapping(raw))


def test_observability_and_edge_per_kind() -> None:
    minikube = parse_settings("minikube", _raw("minikube"))
    assert minikube.observability.storage_size is None  # emptyDir
    assert (minikube.observability.retention, minikube.observability.alertmanager) == ("2d", False)
    assert not minikube.tls and minikube.grafana_url == "http://grafana.todo.localhost"
    assert minikube.edge.api_hostname == "api.todo.localhost"
    prod = parse_settings("prod", _raw("prod"))
    assert prod.tls and prod.edge.acme_email and prod.edge.envoy_replicas >= 2
    assert prod.observability.storage_size == "20Gi" and prod.observability.alertmanager
    assert prod.grafana_url == f"https://grafana.{prod.edge.domain}"
    staging = parse_settings("staging", _raw("staging"))
    assert staging.edge.api_hostname == "api.staging.example.com"


def test_observability_messages_name_key_value_and_rule() -> None:
    raw = _minikube(observability={"retention": "2 days"})
    assert "todo:observability.retention: got '2 days'" in _error("minikube", raw)
    raw = _minikube(observability={"retentionSize": "30GiB", "storageSize": "20Gi"})
    assert "retentionSize (30GiB) must be at most 90% of storageSize (20Gi)" in _error(
        "minikube", raw
    )
    raw = _minikube(observability={"storageClass": "do-block-storage"})
    assert "storageClass ('do-block-storage') needs storageSize" in _error("minikube", raw)
    message = _error("minikube", _minikube(observability={"alertmanger": True}))
    assert "todo:observability.alertmanger: got True; unknown key; allowed keys: alertmanager," in (
        message
    )
    raw = _raw("prod")
    raw["observability"] = {"retention": "15d"}
    message = _error("prod", raw)
    assert "todo:observability.storageSize: required but missing for environment 'prod'" in message
    assert "todo:observability.alertmanager: got False; environment 'prod' needs true" in message


def test_edge_rules_follow_the_kind() -> None:
    raw = _raw("staging")
    raw["edge"] = {"serviceType": "NodePort"}
    message = _error("staging", raw)
    assert "todo:edge.domain: got 'todo.localhost'; kind 'cloud' serves HTTPS" in message
    assert "todo:edge.acmeEmail: required but missing for kind 'cloud'" in message
    assert "todo:edge.serviceType: got 'NodePort'; kind 'cloud' allows ['LoadBalancer']" in message
    raw["edge"] = {"domain": "Example.COM", "acmeEmail": "not-an-address"}
    message = _error("staging", raw)
    assert "todo:edge.domain: got 'Example.COM'" in message
    assert "todo:edge.acmeEmail: got 'not-an-address'" in message
    minikube = _minikube(edge={"acmeEmail": "ops@example.com"})
    assert "kind 'minikube' serves plain HTTP without a certificate" in _error("minikube", minikube)
    raw = _raw("prod")
    raw["edge"] = {**raw["edge"], "envoyReplicas": 1}
    assert "todo:edge.envoyReplicas: got 1; environment 'prod' needs >= 2" in _error("prod", raw)
    raw["edge"] = {**_raw("prod")["edge"], "rateLimit": {"requestsPerMinute": 0}}
    assert "todo:edge.rateLimit.requestsPerMinute: got 0" in _error("prod", raw)
    raw["edge"] = {**_raw("prod")["edge"], "rateLimit": {"perMinute": 5}}
    assert "todo:edge.rateLimit.perMinute" in _error("prod", raw)


def test_request_limits_are_bounded_and_reach_the_apps() -> None:
    raw = _raw("prod")
    raw["apps"] = {**raw["apps"], "limits": {"maxBodyBytes": 10, "maxHeaderBytes": 128 * 1024}}
    message = _error("prod", raw)
    assert "todo:apps.limits.maxBodyBytes: got 10" in message
    # Envoy refuses heads over 60 KiB first: a larger limit would never apply.
    assert "todo:apps.limits.maxHeaderBytes: got 131072" in message
    raw["apps"] = {**_raw("prod")["apps"], "limits": {"maxHeaderBytes": 8192}}
    assert "maxTokenBytes (8192) must leave room in maxHeaderBytes (8192)" in _error("prod", raw)
    limits = RequestLimits.model_validate({"maxBodyBytes": 4096, "maxTokenBytes": 1024})
    assert limits.app_env() == {
        "HTTP_MAX_BODY_BYTES": "4096",
        "HTTP_MAX_HEADER_BYTES": "32768",
        "AUTH_MAX_TOKEN_BYTES": "1024",
    }


def test_proxy_protocol_follows_the_load_balancer_and_is_not_a_setting() -> None:
    # On wherever the Envoy Service is a DigitalOcean load balancer, off everywhere else.
    for stack in ("staging", "prod"):
        assert parse_settings(stack, _raw(stack)).proxy_protocol, stack
    for stack in ("minikube", "kind"):
        assert not parse_settings(stack, _raw(stack)).proxy_protocol, stack
    # No key turns it off on DOKS (every client would share a rate-limit bucket) or on
    # where nothing sends the header (Envoy would refuse every connection).
    raw = _raw("prod")
    raw["edge"] = {**raw["edge"], "proxyProtocol": False}
    message = _error("prod", raw)
    assert "todo:edge.proxyProtocol: got False; unknown key; allowed keys:" in message
    minikube = _minikube(edge={**_raw("minikube")["edge"], "proxyProtocol": True})
    assert "todo:edge.proxyProtocol: got True; unknown key" in _error("minikube", minikube)


def test_ephemeral_stacks_take_no_monitoring_or_edge() -> None:
    kwargs: dict[str, Any] = {
        "owner": "a",
        "base_stack": "acme/todo/staging",
        "image_tag": "t",
        "image_registry": "ghcr.io/acme",
    }
    config = ephemeral_stack_config("pr-7", ttl=timedelta(hours=1), **kwargs)
    raw = {key.split(":", 1)[1]: value for key, value in config.items()}
    raw["observability"] = {"retention": "1d"}
    raw["edge"] = {"domain": "pr-7.example.com"}
    message = _error("pr-7", raw)
    assert "todo:observability: got an object; an ephemeral stack uses its base stack's" in message
    assert "todo:edge: got an object; an ephemeral stack uses its base stack's gateway" in message


def test_tracing_per_stack() -> None:
    minikube = parse_settings("minikube", _raw("minikube")).observability.tracing
    assert (minikube.enabled, minikube.retention, minikube.storage_size) == (True, "24h", None)
    staging = parse_settings("staging", _raw("staging")).observability.tracing
    assert (staging.retention, staging.storage_size) == ("72h", "5Gi")
    prod = parse_settings("prod", _raw("prod")).observability.tracing
    assert (prod.retention, prod.storage_size, prod.collector_replicas) == ("168h", "10Gi", 2)


def test_tracing_messages_name_the_key() -> None:
    def tracing(**values: Any) -> str:
        return _error("minikube", _minikube(observability={"tracing": values}))

    message = tracing(retention="12h")
    assert "todo:observability.tracing.retention: got '12h'" in message
    assert "at least 24h" in message
    assert "todo:observability.tracing.retention: got '3d'" in tracing(retention="3d")
    assert "todo:observability.tracing.storageSize: got '10GB'" in tracing(storageSize="10GB")
    assert "todo:observability.tracing.collectorReplicas: got 0" in tracing(collectorReplicas=0)
    message = tracing(enabled=True, sampling="1")
    assert "todo:observability.tracing.sampling: got '1'; unknown key" in message


def test_logs_per_stack() -> None:
    minikube = parse_settings("minikube", _raw("minikube")).observability.logs
    assert minikube.enabled is False  # `kubectl logs` is at hand; the room stays
    staging = parse_settings("staging", _raw("staging")).observability.logs
    assert (staging.enabled, staging.retention, staging.storage_size) == (True, "72h", "5Gi")
    prod = parse_settings("prod", _raw("prod")).observability.logs
    assert (prod.enabled, prod.retention, prod.storage_size) == (True, "168h", "10Gi")


def test_logs_messages_name_the_key() -> None:
    def logs(**values: Any) -> str:
        return _error("minikube", _minikube(observability={"logs": values}))

    message = logs(enabled=True, retention="6h")
    assert "todo:observability.logs.retention: got '6h'" in message
    assert "at least 24h" in message
    assert "todo:observability.logs.storageSize: got '5GB'" in logs(storageSize="5GB")
    assert "todo:observability.logs.enabled: got 'sometimes'" in logs(enabled="sometimes")
    message = logs(enabled=True, shipper="promtail")
    assert "todo:observability.logs.shipper: got 'promtail'; unknown key" in message
    message = logs(loki={"memoryLimit": "lots"})
    assert "todo:observability.logs.loki.memoryLimit: got 'lots'" in message
