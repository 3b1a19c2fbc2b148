"""The dependency graph, its critical path, and the Mermaid rendering."""

from __future__ import annotations

from typing import Any

from infra.tooling.plan.build import Plan
from infra.tooling.plan.durations import CLOUD_MINUTES, estimate_minutes
from infra.tooling.plan.graph import critical_path, mermaid, predecessors, short_type
from infra.tooling.plan.mocks import RecordedResource

STACK = "urn:pulumi:t::todo::pulumi:pulumi:Stack::todo-t"
CLUSTER_TYPE = "digitalocean:index/kubernetesCluster:KubernetesCluster"
DATABASE_TYPE = "digitalocean:index/databaseCluster:DatabaseCluster"


def _resource(
    name: str,
    type_: str,
    *,
    parent: str | None = STACK,
    provider: str | None = None,
    dependencies: tuple[str, ...] = (),
    custom: bool = True,
    inputs: dict[str, Any] | None = None,
) -> RecordedResource:
    return RecordedResource(
        urn=f"urn:{name}",
        type=type_,
        name=name,
        parent=parent,
        provider=f"{provider}::id" if provider else None,
        dependencies=dependencies,
        custom=custom,
        inputs=inputs or {},
        has_secrets=False,
        raw_inputs=inputs or {},
    )


def _graph(*resources: RecordedResource) -> dict[str, RecordedResource]:
    return {resource.urn: resource for resource in resources}


def test_edges_come_from_dependencies_providers_and_custom_parents() -> None:
    component = _resource("app", "todo:test:App", custom=False)
    cluster = _resource("cluster", CLUSTER_TYPE)
    provider = _resource("k8s", "pulumi:providers:kubernetes", dependencies=("urn:cluster",))
    deployment = _resource(
        "web", "kubernetes:apps/v1:Deployment", parent="urn:app", provider="urn:k8s"
    )
    child_of_custom = _resource("sub", "kubernetes:core/v1:ConfigMap", parent="urn:cluster")
    before = predecessors(_graph(component, cluster, provider, deployment, child_of_custom))

    assert before["urn:k8s"] == {"urn:cluster"}
    # The provider is an edge; the component parent is not (it creates nothing).
    assert before["urn:web"] == {"urn:k8s"}
    # A custom parent must exist before its children can be registered.
    assert before["urn:sub"] == {"urn:cluster"}


def test_critical_path_is_the_heaviest_chain_not_the_longest() -> None:
    # cluster (7) → provider (0) → deployment (1.5): 8.5 minutes over three resources;
    # db (8) alone is heavier than the cluster, but the chain through the cluster wins.
    cluster = _resource("cluster", CLUSTER_TYPE)
    provider = _resource("k8s", "pulumi:providers:kubernetes", dependencies=("urn:cluster",))
    deployment = _resource("web", "kubernetes:apps/v1:Deployment", provider="urn:k8s")
    database = _resource("db", DATABASE_TYPE)
    configmaps = [
        _resource(f"cm{i}", "kubernetes:core/v1:ConfigMap", dependencies=(f"urn:cm{i - 1}",))
        for i in range(1, 6)
    ]
    first = _resource("cm0", "kubernetes:core/v1:ConfigMap")
    path = critical_path(_graph(cluster, provider, deployment, database, first, *configmaps))

    assert path.urns == ("urn:cluster", "urn:k8s", "urn:web")
    assert path.length == 3
    expected = CLOUD_MINUTES[CLUSTER_TYPE] + estimate_minutes(deployment)
    assert path.minutes == round(expected, 2)


def test_durations_follow_what_the_engine_waits_for() -> None:
    plain_cr = _resource("kafka", "kubernetes:kafka.strimzi.io/v1:Kafka", inputs={})
    awaited_cr = _resource(
        "kafka2",
        "kubernetes:kafka.strimzi.io/v1:Kafka",
        inputs={"metadata": {"annotations": {"pulumi.com/waitFor": "condition=Ready"}}},
    )
    skipped = _resource(
        "web",
        "kubernetes:apps/v1:Deployment",
        inputs={"metadata": {"annotations": {"pulumi.com/skipAwait": "true"}}},
    )
    lb = _resource("lb", "kubernetes:core/v1:Service", inputs={"spec": {"type": "LoadBalancer"}})
    chart = _resource(
        "mon", "kubernetes:helm.sh/v3:Release", inputs={"chart": "kube-prometheus-stack"}
    )
    assert estimate_minutes(plain_cr) < 0.1 < estimate_minutes(awaited_cr)
    assert estimate_minutes(skipped) < estimate_minutes(
        _resource("w", "kubernetes:apps/v1:Deployment")
    )
    assert estimate_minutes(lb) > estimate_minutes(_resource("s", "kubernetes:core/v1:Service"))
    assert estimate_minutes(chart) > estimate_minutes(
        _resource("x", "kubernetes:helm.sh/v3:Release", inputs={"chart": "x", "skipAwait": True})
    )


def test_sample_program_critical_path_runs_through_the_cluster(sample_plan: Plan) -> None:
    names = [sample_plan.run.resources[urn].name for urn in sample_plan.critical.urns]
    # The cluster gates the provider, which gates every object; the Deployment waits for
    # the Dapr release (depends_on) and is the heaviest thing after it.
    assert names[:2] == ["cluster", "k8s"]
    assert names[-2:] == ["dapr", "backend"]
    assert sample_plan.critical.minutes > CLOUD_MINUTES[CLUSTER_TYPE]


def test_mermaid_has_every_resource_components_as_subgraphs_and_the_path(
    sample_plan: Plan,
) -> None:
    text = mermaid(sample_plan.run.resources, sample_plan.run.stack_urn, sample_plan.critical)
    assert text.startswith("flowchart LR\n")
    for resource in sample_plan.run.resources.values():
        assert f'<br/>{resource.name}"]' in text
    assert "subgraph r" in text and "App<br/>backend" in text
    assert text.count("==>") == sample_plan.critical.length - 1
    assert "class " in text and " critical" in text


def test_short_type_names() -> None:
    assert short_type("kubernetes:apps/v1:Deployment") == "apps/v1:Deployment"
    assert short_type("kubernetes:core/v1:Secret") == "v1:Secret"
    assert short_type(CLUSTER_TYPE) == "digitalocean:KubernetesCluster"
    assert short_type("pulumi:providers:kubernetes") == "provider:kubernetes"
    assert short_type("todo:components:Cluster") == "Cluster"
