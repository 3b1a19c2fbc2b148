"""What the planned system asks the scheduler for: CPU and memory requests of every pod.

Method. Requests, not limits or usage, decide whether pods fit on a node, so the
footprint is the sum of requests of everything that runs steadily:

- the program's own workloads: Deployments (the HPA's `minReplicas` when an HPA scales
  them), StatefulSets, DaemonSets (once per node) and bare Pods; a pod's request is
  `max(sum(containers) + restartable init containers, largest init container)`, as the
  scheduler computes it, plus the Dapr sidecar when the pod is annotated for one (its
  `dapr.io/sidecar-*-request` annotations); Jobs are listed apart, they release their
  requests when they finish;
- operator-managed pods the program declares through custom resources: Strimzi's
  brokers/controllers (KafkaNodePool replicas × resources), entity operator, exporter,
  Cruise Control; Envoy Gateway's proxy per Gateway (EnvoyProxy resources, else Envoy
  Gateway's own defaults);
- Helm releases' pods, from the release's values merged over the chart's default values
  (`infra.tooling.plan.reference`), by a small model of each chart's workloads.

Containers with no request reserve nothing; they are counted and named, not guessed.

Capacity. What the pods must fit is the nodes' allocatable resources, not the Droplets'
size: on DOKS, DigitalOcean's published allocatable memory per node size (a 4 GB node
offers pods 2.5 GiB), less the requests of the pods DOKS itself runs (per node and once
per cluster; an assumed allowance, see DOKS_NODE_PODS). A plan fits when the steady pods
and one extra pod of the largest Deployment (a rolling update) fit in total and, packed
first-fit-decreasing with Kafka-style replicas one per node, node by node. What happens
with one node down is reported apart (`Footprint.one_node_down`).
"""

from infra.tooling.plan.footprint.capacity import CLUSTER_TYPE, MINIKUBE, Capacity, capacity_of
from infra.tooling.plan.footprint.charts import CHART_MODELS, dapr_component_enabled, release_values
from infra.tooling.plan.footprint.fit import Footprint, compute_footprint
from infra.tooling.plan.footprint.requests import PodGroup, Requests

__all__ = [
    "CHART_MODELS",
    "CLUSTER_TYPE",
    "MINIKUBE",
    "Capacity",
    "Footprint",
    "PodGroup",
    "Requests",
    "capacity_of",
    "compute_footprint",
    "dapr_component_enabled",
    "release_values",
]
