"""How long the engine waits on each kind of resource during `pulumi up`: estimates.

The numbers are minutes of wall-clock time from "create started" to "the engine moves
on to what depends on it", for a first deployment, from DigitalOcean's and the
projects' documented behaviour and typical runs; they are estimates, used to rank
dependency chains and to say roughly how long a first `pulumi up` takes, not promises.

What Pulumi waits for matters more than what the cluster does afterwards: the
Kubernetes provider waits for Deployments to roll out, StatefulSets to be ready, Jobs to
complete, Services to get endpoints, PVCs to bind; a Helm release waits for its
resources (unless `skipAwait`); a custom resource returns as soon as the API server
accepts it, unless annotated `pulumi.com/waitFor`, in which case it takes as long as its
operator needs (Kafka: brokers rolled out and ready).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.tooling.plan.mocks import RecordedResource

# Cloud resources, by type token.
CLOUD_MINUTES: dict[str, float] = {
    # DOKS: control plane plus the first node pool joining, typically 5-8 minutes.
    "digitalocean:index/kubernetesCluster:KubernetesCluster": 7.0,
    "digitalocean:index/kubernetesNodePool:KubernetesNodePool": 4.0,
    # Managed PostgreSQL: a new cluster is "online" after about 5-10 minutes.
    "digitalocean:index/databaseCluster:DatabaseCluster": 8.0,
    "digitalocean:index/databaseDb:DatabaseDb": 0.2,
    "digitalocean:index/databaseUser:DatabaseUser": 0.2,
    "digitalocean:index/databaseFirewall:DatabaseFirewall": 0.3,
    "digitalocean:index/databaseConnectionPool:DatabaseConnectionPool": 0.3,
    "digitalocean:index/vpc:Vpc": 0.2,
    "digitalocean:index/containerRegistry:ContainerRegistry": 0.2,
    "digitalocean:index/project:Project": 0.1,
    "digitalocean:index/projectResources:ProjectResources": 0.1,
    "digitalocean:index/loadBalancer:LoadBalancer": 2.0,
    "digitalocean:index/domain:Domain": 0.1,
    "digitalocean:index/record:Record": 0.1,
    "digitalocean:index/dnsRecord:DnsRecord": 0.1,
}

# Kubernetes kinds the provider awaits, by kind.
KUBERNETES_MINUTES: dict[str, float] = {
    "Deployment": 1.5,  # image pull, probes, rollout
    "StatefulSet": 2.0,  # ordered start, volumes attached
    "DaemonSet": 1.0,
    "Job": 1.5,  # migrations: pull, connect, run to completion
    "PersistentVolumeClaim": 0.5,
    "Pod": 1.0,
}
# Services wait for endpoints (their pods), LoadBalancers for an address as well.
SERVICE_MINUTES = 0.1
LOAD_BALANCER_SERVICE_MINUTES = 2.0
# Anything else the API server simply stores.
STORED_OBJECT_MINUTES = 0.05

# Helm releases wait for every resource of the chart, by chart name.
HELM_CHART_MINUTES: dict[str, float] = {
    "kube-prometheus-stack": 4.0,  # CRDs, operator, Prometheus, Grafana, hooks
    "dapr": 2.5,  # sentry first, then the rest of the control plane
    "strimzi-kafka-operator": 1.5,
    "cert-manager": 2.0,  # includes the startupapicheck hook job
    "gateway-helm": 1.5,
    "gateway-crds-helm": 0.3,  # CRDs only: applied, established in seconds
}
HELM_DEFAULT_MINUTES = 2.0

# Operators' time to make a custom resource ready, when Pulumi is told to wait for it.
OPERATOR_READY_MINUTES: dict[str, float] = {
    "Kafka": 6.0,  # controllers and brokers rolled out, entity operator up
    "KafkaNodePool": 0.1,  # reconciled as part of its Kafka
    "KafkaTopic": 0.3,
    "KafkaUser": 0.3,
    "Certificate": 2.0,  # ACME HTTP-01 round trip
    "Gateway": 2.0,  # the data plane and its DigitalOcean load balancer
}

WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"


def _annotations(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = inputs.get("metadata")
    if isinstance(metadata, Mapping):
        annotations = metadata.get("annotations")
        if isinstance(annotations, Mapping):
            return annotations
    return {}


def estimate_minutes(resource: RecordedResource) -> float:
    """The estimated time the engine spends on `resource` before its dependents can start."""
    if resource.type == "kubernetes:helm.sh/v4:Chart":
        # A component whose children (the chart's objects) exist only at deploy time.
        chart = str(resource.inputs.get("chart", "")).rsplit("/", 1)[-1]
        return HELM_CHART_MINUTES.get(chart, HELM_DEFAULT_MINUTES)
    if not resource.custom or resource.type.startswith("pulumi:providers:"):
        return 0.0
    if resource.type in CLOUD_MINUTES:
        return CLOUD_MINUTES[resource.type]
    if resource.type.startswith("random:"):
        return 0.0
    if resource.type == "kubernetes:helm.sh/v3:Release":
        if resource.inputs.get("skipAwait") is True:
            return STORED_OBJECT_MINUTES
        chart = str(resource.inputs.get("chart", "")).rsplit("/", 1)[-1]
        return HELM_CHART_MINUTES.get(chart, HELM_DEFAULT_MINUTES)
    if resource.type.startswith("kubernetes:"):
        return _kubernetes_minutes(resource)
    return 0.5  # an unknown cloud resource: a typical API round trip plus polling


def _kubernetes_minutes(resource: RecordedResource) -> float:
    kind = resource.type.rsplit(":", 1)[-1]
    annotations = _annotations(resource.inputs)
    if str(annotations.get(SKIP_AWAIT_ANNOTATION, "")).lower() == "true":
        return STORED_OBJECT_MINUTES
    if kind == "Service":
        spec = resource.inputs.get("spec")
        if isinstance(spec, Mapping) and spec.get("type") == "LoadBalancer":
            return LOAD_BALANCER_SERVICE_MINUTES
        return SERVICE_MINUTES
    if kind in KUBERNETES_MINUTES:
        return KUBERNETES_MINUTES[kind]
    if WAIT_FOR_ANNOTATION in annotations:
        return OPERATOR_READY_MINUTES.get(kind, 1.0)
    return STORED_OBJECT_MINUTES
