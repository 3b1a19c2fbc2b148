"""Kafka: Strimzi operator first, then a KRaft cluster, topics, a SCRAM user and the exporter."""

from __future__ import annotations

from tests.infra.components.plans import EPHEMERAL, by_type, one, plan

RELEASE = "kubernetes:helm.sh/v3:Release"
STRIMZI = "kubernetes:kafka.strimzi.io/v1:"


def test_operator_is_pinned_and_restricted() -> None:
    operator = one(plan("prod"), "kafka-operator")
    assert operator.raw_inputs["chart"] == "strimzi-kafka-operator"
    assert operator.raw_inputs["version"] == "1.2.0"
    values = operator.raw_inputs["values"]
    assert {"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"} in values[
        "extraEnvs"
    ]
    assert values["watchAnyNamespace"] is False
    assert one(plan("staging"), "kafka-operator").raw_inputs["values"]["watchAnyNamespace"] is True


def test_custom_resources_wait_for_the_operator_release() -> None:
    for stack in ("minikube", "prod"):
        run = plan(stack)
        operator = one(run, "kafka-operator")
        strimzi = [r for r in run.resources.values() if r.type.startswith(STRIMZI)]
        assert len(strimzi) >= 7
        assert all(operator.urn in r.dependencies for r in strimzi), stack


def test_prod_topology() -> None:
    run = plan("prod")
    pools = {
        r.raw_inputs["metadata"]["name"]: r.raw_inputs["spec"]
        for r in by_type(run, STRIMZI + "KafkaNodePool")
    }
    assert pools["controllers"]["replicas"] == 3 and pools["controllers"]["roles"] == ["controller"]
    assert pools["brokers"]["replicas"] == 3 and pools["brokers"]["roles"] == ["broker"]
    assert pools["brokers"]["storage"]["volumes"][0]["size"] == "20Gi"
    assert pools["controllers"]["storage"]["volumes"][0]["size"] == "5Gi"
    # Memory requests equal limits; the heap is fixed at half the container.
    for pool, memory, heap in (("controllers", "512Mi", "256m"), ("brokers", "1Gi", "512m")):
        resources = pools[pool]["resources"]
        assert resources["requests"]["memory"] == resources["limits"]["memory"] == memory
        assert pools[pool]["jvmOptions"] == {"-Xms": heap, "-Xmx": heap}
        # One replica per node, strictly: one node lost costs one broker and one controller.
        spread = pools[pool]["template"]["pod"]["topologySpreadConstraints"][0]
        assert spread["whenUnsatisfiable"] == "DoNotSchedule"
    kafka = one(run, "kafka-cluster")
    config = kafka.raw_inputs["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["auto.create.topics.enable"] is False
    assert all(one(run, f"kafka-pool-{p}").urn in kafka.dependencies for p in pools)
    assert kafka.raw_inputs["spec"]["kafkaExporter"]["groupRegex"] == ".*"


def test_minikube_runs_one_dual_role_node() -> None:
    pools = by_type(plan("minikube"), STRIMZI + "KafkaNodePool")
    assert len(pools) == 1
    assert "jvmOptions" not in pools[0].raw_inputs["spec"]  # Strimzi sizes the heap
    assert pools[0].raw_inputs["spec"]["roles"] == ["controller", "broker"]
    assert pools[0].raw_inputs["spec"]["replicas"] == 1


def test_topics_follow_settings() -> None:
    run = plan("prod")
    topics = {
        r.raw_inputs["metadata"]["name"]: r.raw_inputs["spec"]
        for r in by_type(run, STRIMZI + "KafkaTopic")
    }
    assert set(topics) == {"task-events", "reminders", "task-events-dlq", "reminders-dlq"}
    assert topics["task-events"]["partitions"] == 12 and topics["task-events"]["replicas"] == 3
    assert topics["task-events"]["config"]["retention.ms"] == 168 * 3_600_000
    assert topics["reminders-dlq"]["config"]["retention.ms"] == 720 * 3_600_000
    assert topics["task-events"]["config"]["min.insync.replicas"] == 2


def test_user_password_is_generated_and_acls_are_tight() -> None:
    run = plan("prod")
    user = one(run, "kafka-user")
    spec = user.raw_inputs["spec"]
    assert spec["authentication"]["type"] == "scram-sha-512"
    assert "valueFrom" in spec["authentication"]["password"]
    acls = spec["authorization"]["acls"]
    assert {a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"} == {
        "backend",
        "notification",
        "recurring",
    }
    assert all(a["resource"]["patternType"] == "literal" for a in acls)
    credentials = one(run, "kafka-credentials")
    assert credentials.inputs["stringData"] == "[secret]"
    assert credentials.raw_inputs["stringData"]["username"] == "todo-apps"


def test_ephemeral_stack_runs_its_own_cluster_without_an_operator() -> None:
    run = plan(EPHEMERAL)
    assert not by_type(run, RELEASE)
    kafka = one(run, "kafka-cluster")
    assert kafka.raw_inputs["metadata"]["namespace"] == "todo-dev-alice"
    assert run.outputs["kafkaBootstrap"] == "todo-kafka-bootstrap.todo-dev-alice.svc:9092"
