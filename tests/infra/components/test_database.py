"""Database: managed with firewall and grants, in-cluster hardened, or shared; URL as a Secret;
on the cloud stacks a connection pool in transaction mode for the services."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra.tooling.repo import STACKS_DIR
from tests.infra.components.plans import EPHEMERAL, by_type, depends_on, one, plan, pod_spec

SECRET = "kubernetes:core/v1:Secret"
POOL = "digitalocean:index/databaseConnectionPool:DatabaseConnectionPool"
APPS = ("backend", "notification", "recurring")


def test_prod_managed_cluster_with_standby_in_the_vpc() -> None:
    run = plan("prod")
    cluster = one(run, "database-pg")
    assert cluster.raw_inputs["nodeCount"] == 2 and cluster.raw_inputs["engine"] == "pg"
    assert cluster.raw_inputs["privateNetworkUuid"] == one(run, "cluster-vpc").raw_inputs.get(
        "id", cluster.raw_inputs["privateNetworkUuid"]
    )
    assert one(run, "cluster-vpc").urn in cluster.dependencies


def test_firewall_admits_only_the_cluster() -> None:
    run = plan("prod")
    firewall = one(run, "database-firewall")
    rules = firewall.raw_inputs["rules"]
    assert len(rules) == 1 and rules[0]["type"] == "k8s"
    assert one(run, "cluster-doks").urn in firewall.dependencies
    assert one(run, "database-pg").urn in firewall.dependencies


def test_grants_run_after_database_and_user_as_admin() -> None:
    run = plan("staging")
    job = one(run, "database-grants")
    assert one(run, "database-db").urn in job.dependencies
    assert one(run, "database-user").urn in job.dependencies
    container = pod_spec(job)["containers"][0]
    assert container["command"] == ["psql"]
    assert 'GRANT USAGE, CREATE ON SCHEMA public TO "todo";' in container["args"]
    assert "--dbname=$(DATABASE_ADMIN_URL)" in container["args"]
    # The admin URL is read from a Secret at run time, never written into the spec.
    assert container["env"][0]["valueFrom"]["secretKeyRef"]["key"] == "url"


def test_url_secret_is_masked_and_built_from_the_private_host() -> None:
    run = plan("staging")
    secret = one(run, "database-url")
    assert secret.has_secrets and secret.inputs["stringData"] == "[secret]"
    url = secret.raw_inputs["stringData"]["url"]
    assert url.startswith("postgresql://todo:plan-placeholder-password@private-")
    assert url.endswith(":25060/todo?sslmode=require")


def test_minikube_runs_a_hardened_postgres() -> None:
    run = plan("minikube")
    assert not by_type(run, "digitalocean:index/databaseCluster:DatabaseCluster")
    server = one(run, "database-server")
    assert server.type == "kubernetes:apps/v1:StatefulSet"
    spec = pod_spec(server)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["fsGroup"]
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"startupProbe", "readinessProbe", "livenessProbe", "resources"} <= set(container)
    claim = server.raw_inputs["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    passwords = [r.name for r in by_type(run, "random:index/randomPassword:RandomPassword")]
    assert {"database-admin-password", "database-app-password"} <= set(passwords)
    url = one(run, "database-url").raw_inputs["stringData"]["url"]
    assert url == (
        "postgresql://todo:plan-placeholder-database-app-password"
        "@postgresql.todo.svc.cluster.local:5432/todo"
    )


def test_ephemeral_database_lives_on_the_base_server() -> None:
    run = plan(EPHEMERAL)
    staging = plan("staging")
    db = one(run, "database-db")
    assert db.raw_inputs["clusterId"] == staging.outputs["databaseClusterId"]
    assert db.raw_inputs["name"] == "todo_dev_alice"
    assert one(run, "database-user").raw_inputs["name"] == "todo-dev-alice"
    assert not by_type(run, "digitalocean:index/databaseCluster:DatabaseCluster")
    assert depends_on(run, one(run, "database-grants"), db)


def test_no_secret_value_reaches_the_recorded_inputs() -> None:
    for stack in ("minikube", "staging", "prod", EPHEMERAL):
        run = plan(stack)
        for res in run.resources.values():
            assert "plan-placeholder" not in repr(res.inputs), (stack, res.name)
        for res in by_type(run, SECRET):
            assert res.inputs["stringData"] == "[secret]", (stack, res.name)


def _pool_setting(stack: str) -> dict[str, Any]:
    config = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    pool: dict[str, Any] = config["todo:database"]["pool"]
    return pool


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_cloud_stacks_get_a_transaction_pool_on_the_apps_database(stack: str) -> None:
    run = plan(stack)
    (pool,) = by_type(run, POOL)
    assert pool.name == "database-pool"
    inputs = pool.raw_inputs
    assert inputs["mode"] == "transaction"
    assert inputs["size"] == _pool_setting(stack)["size"]
    assert inputs["name"] == "todo-pool"  # "between 3 and 60 characters"
    # The app's own database and user (not defaultdb/doadmin), on this stack's cluster.
    assert (inputs["dbName"], inputs["user"]) == ("todo", "todo")
    for dependency in ("database-pg", "database-db", "database-user"):
        assert one(run, dependency).urn in pool.dependencies, dependency
    assert any(
        r.urn == pool.parent and r.type == "todo:database:Database" for r in run.resources.values()
    )


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_services_connect_through_the_pool_and_the_rest_directly(stack: str) -> None:
    run = plan(stack)
    pooled = one(run, "database-pool-url")
    assert pooled.has_secrets and pooled.inputs["stringData"] == "[secret]"
    # The pool's private URI as DigitalOcean documents it: the cluster's private host, port
    # 25061, the pool's name as the database; the scheme as the apps' contract has it.
    assert pooled.raw_inputs["stringData"]["url"] == (
        f"postgresql://todo:plan-placeholder-password@private-todo-{stack}-pg-do-user-0"
        ".db.ondigitalocean.example:25061/todo-pool?sslmode=require"
    )
    for app in APPS:
        container = pod_spec(one(run, f"{app}-deployment"))["containers"][0]
        env = {
            e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e
        }
        assert env["DATABASE_URL"] == {"name": "database-pool-url", "key": "url"}, app
        # No service holds a session of its own (App.session_connections): none is given
        # the direct URL, a secret fewer in their pods.
        assert "DATABASE_DIRECT_URL" not in env, app
        config = one(run, f"{app}-config").raw_inputs["data"]
        assert config["DB_TRANSACTION_POOLING"] == "true", app
    # Migrations and the Dapr state store keep the direct URL.
    job = pod_spec(one(run, "migrations-job"))["containers"][0]
    (database_url,) = [e for e in job["env"] if e["name"] == "DATABASE_URL"]
    assert database_url["valueFrom"]["secretKeyRef"]["name"] == "database-url"
    statestore = one(run, "dapr-statestore").raw_inputs["spec"]["metadata"]
    (connection,) = [m for m in statestore if m["name"] == "connectionString"]
    assert connection["secretKeyRef"] == {"name": "database-url", "key": "url"}


@pytest.mark.parametrize("stack", ["minikube", EPHEMERAL])
def test_without_a_pool_everything_connects_directly(stack: str) -> None:
    run = plan(stack)
    assert not by_type(run, POOL)
    assert not [r for r in run.resources.values() if r.name == "database-pool-url"]
    for app in APPS:
        container = pod_spec(one(run, f"{app}-deployment"))["containers"][0]
        names = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
        assert names["DATABASE_URL"] == {"name": "database-url", "key": "url"}
        assert "DATABASE_DIRECT_URL" not in names
        assert "DB_TRANSACTION_POOLING" not in one(run, f"{app}-config").raw_inputs["data"]
