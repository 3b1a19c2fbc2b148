"""Cost: every line comes from the planned resources and the dated price table."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra.tooling.plan.build import Plan, execute
from infra.tooling.plan.cost import (
    DATABASE_TYPE,
    PriceTable,
    UnknownPriceError,
    estimate,
    load_prices,
)
from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import KubernetesObject, to_object
from infra.tooling.plan.runner import config_from_mapping
from infra.tooling.repo import STACKS_DIR
from tests.infra.conftest import SAMPLE_PROGRAM


def _resource(type_: str, name: str, inputs: dict[str, Any]) -> RecordedResource:
    return RecordedResource(
        urn=f"urn:{name}",
        type=type_,
        name=name,
        parent=None,
        provider=None,
        dependencies=(),
        custom=True,
        inputs=inputs,
        has_secrets=False,
        raw_inputs=inputs,
    )


def _line(plan_cost: Any, item: str) -> Any:
    return next(line for line in plan_cost.lines if line.item.startswith(item))


def test_price_table_is_dated_and_sourced() -> None:
    prices = load_prices()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices.as_of)
    assert prices.sources and all(url.startswith("https://") for url in prices.sources.values())
    for section in ("kubernetes", "droplets", "managed_databases", "load_balancers", "volumes"):
        assert prices.data[section], section


def test_sample_plan_cost_lines(sample_plan: Plan) -> None:
    prices = load_prices()
    cost = estimate(sample_plan.run.resources, sample_plan.objects, prices)
    droplet = prices.price("droplets", "s-2vcpu-4gb")

    pool = _line(cost, "node pool")
    assert (pool.monthly_min, pool.monthly_max) == (2 * droplet, 4 * droplet)
    ha = _line(cost, "HA control plane")
    assert ha.monthly_min == prices.price("kubernetes", "ha_control_plane")
    volumes = _line(cost, "volumes")
    # 3 Kafka brokers × 20Gi, plus Dapr's scheduler (HA: 3 replicas) at its chart's
    # default size (dapr_scheduler.cluster.storageSize in the vendored values: 16Gi).
    assert volumes.monthly_min == (60 + 48) * prices.price("volumes", "per_gib")
    assert "KafkaNodePool kafka/broker 3×20Gi" in volumes.detail
    assert "helm dapr: dapr-scheduler 3×16Gi" in volumes.detail
    assert cost.monthly_min == round(sum(line.monthly_min for line in cost.lines), 2)
    assert cost.monthly_max > cost.monthly_min


def test_no_ha_no_ha_line() -> None:
    config = config_from_mapping({"replicas": 1, "ha": False})
    plan = execute("sample-no-ha", config=config, program=SAMPLE_PROGRAM)
    cost = estimate(plan.run.resources, plan.objects)
    assert not any(line.item == "HA control plane" for line in cost.lines)


def test_database_with_standby_and_load_balancers() -> None:
    prices = load_prices()
    db = _resource(DATABASE_TYPE, "db", {"size": "db-s-1vcpu-2gb", "nodeCount": 2, "engine": "pg"})
    cluster = _resource(
        "digitalocean:index/kubernetesCluster:KubernetesCluster",
        "c",
        {"nodePool": {"name": "p", "size": "s-2vcpu-4gb", "nodeCount": 2}},
    )
    service = _object(
        "kubernetes:core/v1:Service",
        {"metadata": {"name": "lb", "namespace": "x"}, "spec": {"type": "LoadBalancer"}},
    )
    gateway = _object(
        "kubernetes:gateway.networking.k8s.io/v1:Gateway",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "metadata": {
                "name": "edge",
                "namespace": "x",
                "annotations": {"service.beta.kubernetes.io/do-loadbalancer-size-unit": "2"},
            },
            "spec": {"gatewayClassName": "envoy"},
        },
    )
    cost = estimate({"a": db, "b": cluster}, [service, gateway], prices)

    database = _line(cost, "managed pg")
    assert database.monthly_min == 2 * prices.price("managed_databases", "db-s-1vcpu-2gb")
    assert "1 standby" in database.detail
    balancers = _line(cost, "load balancers")
    assert balancers.monthly_min == 3 * prices.price("load_balancers", "per_node")
    assert "Gateway x/edge" in balancers.detail and "Service x/lb" in balancers.detail


def _object(type_: str, inputs: dict[str, Any]) -> KubernetesObject:
    return to_object(_resource(type_, str(inputs["metadata"]["name"]), inputs))


def test_unknown_size_is_an_error_naming_it() -> None:
    pool = _resource(
        "digitalocean:index/kubernetesCluster:KubernetesCluster",
        "c",
        {"nodePool": {"size": "s-99vcpu-1tb", "nodeCount": 1}},
    )
    with pytest.raises(UnknownPriceError, match="s-99vcpu-1tb"):
        estimate({"c": pool}, [])
    assert isinstance(load_prices(), PriceTable)


def _stack_config(stack: str) -> dict[str, Any]:
    return dict(yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"])


def test_prod_cost_follows_its_stack_settings(planned: Any) -> None:
    config = _stack_config("prod")
    plan = planned("prod")
    prices = load_prices()
    cost = estimate(plan.run.resources, plan.objects, prices)
    pool_config = config["todo:cluster"]["nodePool"]
    each = prices.price("droplets", pool_config["size"])

    pool = _line(cost, "node pool")
    assert pool.monthly_min == pool_config["minNodes"] * each
    assert pool.monthly_max == pool_config["maxNodes"] * each
    assert (
        any(line.item == "HA control plane" for line in cost.lines) == config["todo:cluster"]["ha"]
    )
    database = next(line for line in cost.lines if line.item.startswith("managed"))
    db_config = config["todo:database"]
    assert database.monthly_min == db_config["nodeCount"] * prices.price(
        "managed_databases", db_config["size"]
    )


def test_minikube_costs_nothing_on_digitalocean(planned: Any) -> None:
    plan = planned("minikube")
    cost = estimate(plan.run.resources, plan.objects)
    assert cost.lines == [] and cost.monthly_max == 0


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_cloud_stacks_pay_for_one_load_balancer_and_the_volumes_they_claim(
    planned: Any, stack: str
) -> None:
    plan = planned(stack)
    prices = load_prices()
    cost = estimate(plan.run.resources, plan.objects, prices)
    balancers = _line(cost, "load balancers")
    assert balancers.monthly_min == prices.price("load_balancers", "per_node")
    assert balancers.detail == "1 node(s): Gateway envoy-gateway-system/todo"
    volumes = _line(cost, "volumes")
    assert "kube-prometheus-stack: prometheus 1×20Gi" in volumes.detail
    # Tempo's traces (todo:observability.tracing.storageSize).
    assert f"helm tempo: tempo 1×{ {'staging': 5, 'prod': 10}[stack] }Gi" in volumes.detail
    # Loki's logs (todo:observability.logs.storageSize).
    assert f"helm loki: loki 1×{ {'staging': 5, 'prod': 10}[stack] }Gi" in volumes.detail
    # Dapr's scheduler is switched off: it claims no volumes.
    assert "scheduler" not in volumes.detail
