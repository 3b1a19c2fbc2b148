"""Database: managed with firewall and grants, in-cluster hardened, or shared; URL as a Secret."""

from __future__ import annotations

from tests.infra.components.plans import EPHEMERAL, by_type, depends_on, one, plan, pod_spec

SECRET = "kubernetes:core/v1:Secret"


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
    for stack in ("minikube", "prod", EPHEMERAL):
        run = plan(stack)
        for res in run.resources.values():
            assert "plan-placeholder" not in repr(res.inputs), (stack, res.name)
        for res in by_type(run, SECRET):
            assert res.inputs["stringData"] == "[secret]", (stack, res.name)
