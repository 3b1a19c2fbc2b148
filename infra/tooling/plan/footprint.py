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

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import KubernetesObject, helm_release_values
from infra.tooling.plan.quantities import GIB, MIB, QuantityError, bytes_of, millicores
from infra.tooling.plan.reference import chart_defaults, deep_merge

# `minikube start --cpus 4 --memory 8g`.
MINIKUBE_CPU_M = 4000
MINIKUBE_MEMORY = 8 * GIB
# What a kubeadm-style control plane and minikube's add-ons request on that node:
# kube-apiserver 250m, kube-controller-manager 200m, kube-scheduler 100m, etcd
# 100m/100Mi, coredns 100m/70Mi.
SYSTEM_CPU_M = 750
SYSTEM_MEMORY = 170 * MIB

# Envoy Gateway's defaults for the proxy Deployment it creates per Gateway
# (api/v1alpha1/shared_types.go: DefaultDeploymentCPUResourceRequests and
# DefaultDeploymentMemoryResourceRequests for the envoy container; every proxy pod also
# runs Envoy Gateway's shutdown-manager container, DefaultShutdownManager*ResourceRequests).
ENVOY_PROXY_DEFAULT_CPU_M = 100
ENVOY_PROXY_DEFAULT_MEMORY = 512 * MIB
ENVOY_SHUTDOWN_MANAGER = (10, 32 * MIB)


@dataclass(frozen=True)
class Requests:
    cpu_m: int = 0
    memory: int = 0
    unrequested: tuple[str, ...] = ()
    """Containers that set no CPU or no memory request."""

    def __add__(self, other: Requests) -> Requests:
        return Requests(
            self.cpu_m + other.cpu_m,
            self.memory + other.memory,
            self.unrequested + other.unrequested,
        )


@dataclass(frozen=True)
class PodGroup:
    """Identical pods from one source."""

    source: str
    replicas: int
    per_pod: Requests
    per_node: bool = False
    transient: bool = False
    rolling: bool = False
    """A Deployment's pods: a rolling update runs one more pod of them for a while."""
    stateful: bool = False
    """Pods that keep data on a volume or in a quorum (Kafka nodes, StatefulSets)."""


@dataclass(frozen=True)
class Capacity:
    """Where the pods must fit: what the scheduler may place on the nodes (allocatable),
    and what the platform's own pods, which the plan does not hold, request of it."""

    label: str
    nodes: int
    cpu_m: int
    """Allocatable CPU of all nodes."""
    memory: int
    """Allocatable memory of all nodes."""
    system_cpu_m: int
    system_memory: int
    source: str = ""
    """Where the allocatable and system figures come from (printed with the fit)."""

    @property
    def node_cpu_m(self) -> int:
        """What one node leaves to the plan's pods (its share of the system's pods off)."""
        return (self.cpu_m - self.system_cpu_m) // max(self.nodes, 1)

    @property
    def node_memory(self) -> int:
        return (self.memory - self.system_memory) // max(self.nodes, 1)


MINIKUBE = Capacity(
    "`minikube start --cpus 4 --memory 8g`",
    1,
    MINIKUBE_CPU_M,
    MINIKUBE_MEMORY,
    SYSTEM_CPU_M,
    SYSTEM_MEMORY,
    "the VM's size, less the control plane's and add-ons' requests",
)
_DROPLET_SIZE = re.compile(r"(\d+)vcpu-(\d+)gb")
CLUSTER_TYPE = "digitalocean:index/kubernetesCluster:KubernetesCluster"

DOKS_ALLOCATABLE_SOURCE = (
    "https://docs.digitalocean.com/products/kubernetes/details/limits/#allocatable-memory"
)
DOKS_ALLOCATABLE_MEMORY_GIB: dict[int, float] = {
    2: 1,
    3: 1.66,
    4: 2.5,
    8: 6,
    16: 13,
    32: 28,
    48: 43,
    64: 58,
    96: 88.5,
    128: 119.5,
    160: 151,
    192: 182,
}
"""DigitalOcean's "maximum pod allocatable memory" by node memory (GiB), as published at
DOKS_ALLOCATABLE_SOURCE (the page as last edited 2025-11-10, read on 2026-11-27 from a
public copy of it: re-check on the page itself). The difference is the kubelet's
kube-reserved and system-reserved, which DigitalOcean sizes for the kubelet, containerd,
the OS and its own node agents."""
DOKS_UNLISTED_RESERVED_SHARE = 0.25
"""ASSUMPTION (re-check against a node's `status.allocatable`): for a size the table does
not list, a quarter of the node's memory is reserved, more than the table's share for any
size of 4 GiB and up."""
DOKS_RESERVED_CPU_SHARE = 0.1
"""ASSUMPTION (re-check with `kubectl get node -o jsonpath='{.status.allocatable.cpu}'`):
DigitalOcean publishes no allocatable CPU; 10% of each node's vCPUs is taken as reserved."""
DOKS_NODE_PODS = (400, 400 * MIB)
"""ASSUMPTION (re-check with `kubectl describe node` on a DOKS node): the requests of the
pods DOKS runs on every node (cilium, csi-do-node, do-node-agent, konnectivity-agent,
cpc-bridge-proxy; kube-proxy where it still runs). They count against allocatable like
any pod, next to the reservation above; a round, generous allowance per node."""
DOKS_CLUSTER_PODS = (300, 256 * MIB)
"""ASSUMPTION (as above): DOKS's cluster-wide pods (two coredns replicas, the cilium
operator), once per cluster."""


def doks_allocatable(size: str) -> tuple[int, int] | None:
    """(CPU in millicores, memory in bytes) one node of this Droplet size offers pods."""
    match = _DROPLET_SIZE.search(size)
    if match is None:
        return None
    vcpus, memory_gib = int(match.group(1)), int(match.group(2))
    listed = DOKS_ALLOCATABLE_MEMORY_GIB.get(memory_gib)
    memory_gib_allocatable = (
        listed if listed is not None else memory_gib * (1 - DOKS_UNLISTED_RESERVED_SHARE)
    )
    cpu_m = round(vcpus * 1000 * (1 - DOKS_RESERVED_CPU_SHARE))
    return cpu_m, round(memory_gib_allocatable * GIB)


def doks_capacity(size: str, nodes: int) -> Capacity | None:
    """The node pool at `nodes` nodes of `size`, as DOKS' scheduler sees it."""
    allocatable = doks_allocatable(size)
    if allocatable is None:
        return None
    cpu_m, memory = allocatable
    listed = _DROPLET_SIZE.search(size)
    assumed = "" if listed and int(listed.group(2)) in DOKS_ALLOCATABLE_MEMORY_GIB else ", assumed"
    return Capacity(
        f"{nodes} × {size} (node pool minimum)",
        nodes,
        nodes * cpu_m,
        nodes * memory,
        nodes * DOKS_NODE_PODS[0] + DOKS_CLUSTER_PODS[0],
        nodes * DOKS_NODE_PODS[1] + DOKS_CLUSTER_PODS[1],
        f"allocatable {cpu_m}m / {memory // MIB} Mi a node (memory: DigitalOcean's table"
        f"{assumed}; CPU: {DOKS_RESERVED_CPU_SHARE:.0%} reserved, assumed); DOKS's own pods "
        f"{DOKS_NODE_PODS[0]}m / {DOKS_NODE_PODS[1] // MIB} Mi a node + "
        f"{DOKS_CLUSTER_PODS[0]}m / {DOKS_CLUSTER_PODS[1] // MIB} Mi (assumed)",
    )


def capacity_of(resources: Iterable[RecordedResource]) -> Capacity:
    """The planned cluster's node pool at its minimum size, or minikube's VM."""
    for resource in resources:
        if resource.type != CLUSTER_TYPE:
            continue
        pool = resource.inputs.get("nodePool") or {}
        size = str(pool.get("size", ""))
        nodes = int(pool.get("minNodes") or pool.get("nodeCount") or 1)
        capacity = doks_capacity(size, nodes)
        if capacity is not None:
            return capacity
    return MINIKUBE


@dataclass
class Footprint:
    groups: list[PodGroup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    capacity: Capacity = MINIKUBE

    @property
    def nodes(self) -> int:
        return self.capacity.nodes

    def _count(self, group: PodGroup) -> int:
        return group.replicas * (self.nodes if group.per_node else 1)

    @property
    def steady(self) -> list[PodGroup]:
        return [group for group in self.groups if not group.transient]

    @property
    def cpu_m(self) -> int:
        return sum(self._count(g) * g.per_pod.cpu_m for g in self.steady)

    @property
    def memory(self) -> int:
        return sum(self._count(g) * g.per_pod.memory for g in self.steady)

    @property
    def pods(self) -> int:
        return sum(self._count(g) for g in self.steady)

    @property
    def unrequested(self) -> list[str]:
        return [
            f"{group.source}: {container}"
            for group in self.steady
            for container in group.per_pod.unrequested
        ]

    @property
    def headroom_cpu_m(self) -> int:
        return self.capacity.cpu_m - self.capacity.system_cpu_m - self.cpu_m

    @property
    def headroom_memory(self) -> int:
        return self.capacity.memory - self.capacity.system_memory - self.memory

    @property
    def surge(self) -> Requests:
        """One extra pod of the largest Deployment, as a rolling update runs (maxSurge 1)."""
        pods = [g.per_pod for g in self.steady if g.rolling]
        return max(pods, key=lambda r: (r.memory, r.cpu_m), default=Requests())

    def unplaced(self, nodes: int | None = None) -> list[str]:
        """Pods (a rolling update's extra pod included) that a first-fit-decreasing packing
        onto `nodes` nodes (default: all) cannot place, each node offering its share of
        the capacity. Replicas of a stateful group go to different nodes, as their hard
        topology spread asks. An estimate of the scheduler, which places pods one at a
        time as they come and can do worse."""
        count = self.capacity.nodes if nodes is None else nodes
        free = [[self.capacity.node_cpu_m, self.capacity.node_memory] for _ in range(count)]
        holds: list[set[str]] = [set() for _ in range(count)]
        pods: list[tuple[str, Requests, bool]] = []
        for group in self.steady:
            if group.per_node:  # on every node already: take it off each node's share
                for node in free:
                    node[0] -= group.per_pod.cpu_m
                    node[1] -= group.per_pod.memory
                continue
            pods.extend(
                (group.source, group.per_pod, group.stateful) for _ in range(group.replicas)
            )
        if any(g.rolling for g in self.steady):
            pods.append(("rolling update's extra pod", self.surge, False))
        pods.sort(key=lambda pod: (pod[1].memory, pod[1].cpu_m), reverse=True)
        left: list[str] = []
        for source, requests, spread in pods:
            for index, node in enumerate(free):
                if spread and source in holds[index]:
                    continue
                if node[0] >= requests.cpu_m and node[1] >= requests.memory:
                    node[0] -= requests.cpu_m
                    node[1] -= requests.memory
                    holds[index].add(source)
                    break
            else:
                left.append(source)
        return left

    def fits(self) -> bool:
        """Every steady pod's requests, plus a rolling update's extra pod, within what the
        nodes offer, in total and pod by pod onto the nodes."""
        surge = self.surge
        return (
            self.headroom_cpu_m >= surge.cpu_m
            and self.headroom_memory >= surge.memory
            and not self.unplaced()
        )

    def one_node_down(self) -> tuple[int, int]:
        """Headroom (CPU m, memory bytes) left on the other nodes when one is lost and its
        pods wait to be placed elsewhere (negative: that much stays pending)."""
        nodes = self.capacity.nodes - 1
        per_node = [g for g in self.steady if g.per_node]
        lost_daemons = sum((g.per_pod for g in per_node), Requests())
        return (
            nodes * self.capacity.node_cpu_m - (self.cpu_m - lost_daemons.cpu_m),
            nodes * self.capacity.node_memory - (self.memory - lost_daemons.memory),
        )

    def stateful_requests(self) -> Requests:
        """The pods that hold data on volumes and in quorums: Kafka nodes, StatefulSets,
        Prometheus and Alertmanager."""
        return Requests(
            sum(g.replicas * g.per_pod.cpu_m for g in self.steady if g.stateful),
            sum(g.replicas * g.per_pod.memory for g in self.steady if g.stateful),
        )


def _get(values: Mapping[str, Any], path: str, default: Any = None) -> Any:
    current: Any = values
    for key in path.split("."):
        if not isinstance(current, Mapping) or key not in current:
            return default
        current = current[key]
    return current


def container_requests(container: Mapping[str, Any], label: str) -> Requests:
    requests = _get(container, "resources.requests", {}) or {}
    limits = _get(container, "resources.limits", {}) or {}
    # Kubernetes defaults a missing request to the limit when a limit is set.
    cpu = requests.get("cpu", limits.get("cpu"))
    memory = requests.get("memory", limits.get("memory"))
    try:
        cpu_m = millicores(cpu) if cpu is not None else 0
        memory_b = bytes_of(memory) if memory is not None else 0
    except QuantityError:
        cpu_m, memory_b = 0, 0
    missing = () if cpu is not None and memory is not None else (label,)
    return Requests(cpu_m, memory_b, missing)


def resources_requests(resources: Any, label: str) -> Requests:
    """Requests from a bare `resources:` block (Helm values, CR specs)."""
    return container_requests({"resources": resources or {}}, label)


def _dapr_sidecar(annotations: Mapping[str, Any]) -> Requests:
    if str(annotations.get("dapr.io/enabled", "")).lower() != "true":
        return Requests()
    sidecar = {
        "resources": {
            "requests": {
                key: annotations[f"dapr.io/sidecar-{key}-request"]
                for key in ("cpu", "memory")
                if f"dapr.io/sidecar-{key}-request" in annotations
            },
            "limits": {
                key: annotations[f"dapr.io/sidecar-{key}-limit"]
                for key in ("cpu", "memory")
                if f"dapr.io/sidecar-{key}-limit" in annotations
            },
        }
    }
    return container_requests(sidecar, "daprd (sidecar)")


def pod_requests(template: Mapping[str, Any]) -> Requests:
    """The scheduler's view of one pod built from a pod template (or a Pod)."""
    spec = template.get("spec") or {}
    annotations = _get(template, "metadata.annotations", {}) or {}
    app = Requests()
    for container in spec.get("containers") or []:
        app += container_requests(container, str(container.get("name", "?")))
    largest_init = Requests()
    for container in spec.get("initContainers") or []:
        requests = container_requests(container, f"{container.get('name', '?')} (init)")
        if container.get("restartPolicy") == "Always":  # a native sidecar runs throughout
            app += requests
        elif (requests.cpu_m, requests.memory) > (largest_init.cpu_m, largest_init.memory):
            largest_init = requests
    app += _dapr_sidecar(annotations)
    return Requests(
        max(app.cpu_m, largest_init.cpu_m),
        max(app.memory, largest_init.memory),
        app.unrequested,
    )


def _label(obj: KubernetesObject) -> str:
    return f"{obj.kind} {obj.namespace + '/' if obj.namespace else ''}{obj.name}"


def _hpa_min_replicas(objects: Iterable[KubernetesObject]) -> dict[tuple[str | None, str], int]:
    scaled: dict[tuple[str | None, str], int] = {}
    for obj in objects:
        if obj.kind == "HorizontalPodAutoscaler":
            target = _get(obj.body, "spec.scaleTargetRef", {}) or {}
            minimum = int(_get(obj.body, "spec.minReplicas", 1) or 1)
            scaled[(obj.namespace, str(target.get("name")))] = minimum
    return scaled


def _workload_groups(objects: list[KubernetesObject]) -> list[PodGroup]:
    hpa = _hpa_min_replicas(objects)
    groups: list[PodGroup] = []
    for obj in objects:
        template = _get(obj.body, "spec.template", {}) or {}
        if obj.kind == "Deployment":
            replicas = hpa.get((obj.namespace, obj.name), _get(obj.body, "spec.replicas", 1))
            groups.append(
                PodGroup(_label(obj), int(replicas), pod_requests(template), rolling=True)
            )
        elif obj.kind == "StatefulSet":
            replicas = int(_get(obj.body, "spec.replicas", 1))
            groups.append(PodGroup(_label(obj), replicas, pod_requests(template), stateful=True))
        elif obj.kind == "DaemonSet":
            groups.append(PodGroup(_label(obj), 1, pod_requests(template), per_node=True))
        elif obj.kind == "Pod":
            groups.append(PodGroup(_label(obj), 1, pod_requests(obj.body)))
        elif obj.kind == "Job":
            parallelism = int(_get(obj.body, "spec.parallelism", 1))
            groups.append(
                PodGroup(_label(obj), parallelism, pod_requests(template), transient=True)
            )
        elif obj.kind == "CronJob":
            job_template = _get(obj.body, "spec.jobTemplate.spec.template", {}) or {}
            groups.append(PodGroup(_label(obj), 1, pod_requests(job_template), transient=True))
    return groups


def _strimzi_groups(objects: list[KubernetesObject]) -> list[PodGroup]:
    groups: list[PodGroup] = []
    kafkas = {(o.namespace, o.name): o for o in objects if o.kind == "Kafka"}
    for obj in objects:
        if obj.kind == "KafkaNodePool" and obj.group == "kafka.strimzi.io":
            cluster = _get(obj.body, "metadata.labels", {}).get("strimzi.io/cluster")
            kafka = kafkas.get((obj.namespace, str(cluster)))
            resources = _get(obj.body, "spec.resources") or (
                _get(kafka.body, "spec.kafka.resources") if kafka else None
            )
            groups.append(
                PodGroup(
                    _label(obj),
                    int(_get(obj.body, "spec.replicas", 1)),
                    resources_requests(resources, "kafka"),
                    stateful=True,
                )
            )
    for kafka in kafkas.values():
        spec = kafka.body.get("spec") or {}
        entity = spec.get("entityOperator")
        if isinstance(entity, Mapping):
            requests = Requests()
            for operator in ("topicOperator", "userOperator"):
                if operator in entity:
                    requests += resources_requests(_get(entity, f"{operator}.resources"), operator)
            groups.append(PodGroup(f"{_label(kafka)} entity operator", 1, requests))
        for part, label in (("kafkaExporter", "exporter"), ("cruiseControl", "cruise control")):
            if isinstance(spec.get(part), Mapping):
                requests = resources_requests(_get(spec, f"{part}.resources"), part)
                groups.append(PodGroup(f"{_label(kafka)} {label}", 1, requests))
    return groups


def _gateway_groups(objects: list[KubernetesObject]) -> list[PodGroup]:
    proxies = [o for o in objects if o.kind == "EnvoyProxy"]
    deployment = (
        _get(proxies[0].body, "spec.provider.kubernetes.envoyDeployment", {}) if proxies else {}
    )
    replicas = int((deployment or {}).get("replicas", 1))
    resources = _get(deployment or {}, "container.resources")
    per_pod = (
        resources_requests(resources, "envoy")
        if resources
        else Requests(ENVOY_PROXY_DEFAULT_CPU_M, ENVOY_PROXY_DEFAULT_MEMORY)
    ) + Requests(*ENVOY_SHUTDOWN_MANAGER)
    return [
        PodGroup(f"{_label(obj)} (Envoy proxy)", replicas, per_pod, rolling=True)
        for obj in objects
        if obj.kind == "Gateway" and obj.group == "gateway.networking.k8s.io"
    ]


ChartModel = Callable[[str, Mapping[str, Any]], list[PodGroup]]


def dapr_component_enabled(values: Mapping[str, Any], component: str) -> bool:
    """Whether the dapr chart renders a control-plane service with these values.

    Placement runs only with actors on (`global.actors.enabled`, served by `placement`),
    the scheduler only with `global.scheduler.enabled`; both default to on.
    """
    if _get(values, f"dapr_{component}.enabled", True) is False:
        return False
    if component == "placement":
        return _get(values, "global.actors.enabled", True) is not False and (
            _get(values, "global.actors.serviceName", "placement") == "placement"
        )
    if component == "scheduler":
        return _get(values, "global.scheduler.enabled", True) is not False
    return True


def _dapr_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    ha = bool(_get(values, "global.ha.enabled", False))
    ha_count = int(_get(values, "global.ha.replicaCount", 3))
    groups = []
    for component in ("operator", "sentry", "sidecar_injector", "placement", "scheduler"):
        sub = f"dapr_{component}"
        if not dapr_component_enabled(values, component):
            continue
        replicas = ha_count if ha else int(_get(values, f"{sub}.replicaCount", 1))
        requests = resources_requests(_get(values, f"{sub}.resources"), component)
        groups.append(
            PodGroup(f"helm {release}: dapr-{component.replace('_', '-')}", replicas, requests)
        )
    return groups


def _strimzi_operator_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    requests = resources_requests(values.get("resources"), "strimzi-cluster-operator")
    return [PodGroup(f"helm {release}: cluster operator", int(values.get("replicas", 1)), requests)]


def _kube_prometheus_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    """Prometheus and Alertmanager (each with the operator's config-reloader), the
    operator, Grafana (with one container per enabled sidecar), kube-state-metrics and
    node-exporter (per node), each where enabled."""
    reloader = resources_requests(
        _get(values, "prometheusOperator.prometheusConfigReloader.resources"), "config-reloader"
    )
    groups: list[PodGroup] = []

    def add(
        enabled: str, name: str, replicas: int, requests: Requests, per_node: bool = False
    ) -> None:
        if _get(values, enabled, True):
            stateful = name in ("prometheus", "alertmanager")  # StatefulSets with volumes
            groups.append(
                PodGroup(f"helm {release}: {name}", replicas, requests, per_node, stateful=stateful)
            )

    add(
        "prometheus.enabled",
        "prometheus",
        int(_get(values, "prometheus.prometheusSpec.replicas", 1) or 1),
        resources_requests(_get(values, "prometheus.prometheusSpec.resources"), "prometheus")
        + reloader,
    )
    add(
        "alertmanager.enabled",
        "alertmanager",
        int(_get(values, "alertmanager.alertmanagerSpec.replicas", 1) or 1),
        resources_requests(_get(values, "alertmanager.alertmanagerSpec.resources"), "alertmanager")
        + reloader,
    )
    add(
        "prometheusOperator.enabled",
        "prometheus-operator",
        1,
        resources_requests(_get(values, "prometheusOperator.resources"), "operator"),
    )
    grafana = resources_requests(_get(values, "grafana.resources"), "grafana")
    for sidecar in ("dashboards", "datasources", "alerts", "notifiers", "plugins"):
        if _get(values, f"grafana.sidecar.{sidecar}.enabled", False):
            grafana += resources_requests(
                _get(values, "grafana.sidecar.resources"), f"grafana-sc-{sidecar}"
            )
    add("grafana.enabled", "grafana", int(_get(values, "grafana.replicas", 1) or 1), grafana)
    add(
        "kubeStateMetrics.enabled",
        "kube-state-metrics",
        int(_get(values, "kube-state-metrics.replicas", 1) or 1),
        resources_requests(_get(values, "kube-state-metrics.resources"), "kube-state-metrics"),
    )
    add(
        "nodeExporter.enabled",
        "node-exporter",
        1,
        resources_requests(_get(values, "prometheus-node-exporter.resources"), "node-exporter"),
        per_node=True,
    )
    return groups


def _cert_manager_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    groups = [
        PodGroup(
            f"helm {release}: controller",
            int(values.get("replicaCount", 1)),
            resources_requests(values.get("resources"), "controller"),
        ),
        PodGroup(
            f"helm {release}: webhook",
            int(_get(values, "webhook.replicaCount", 1)),
            resources_requests(_get(values, "webhook.resources"), "webhook"),
        ),
    ]
    if _get(values, "cainjector.enabled", True):
        groups.append(
            PodGroup(
                f"helm {release}: cainjector",
                int(_get(values, "cainjector.replicaCount", 1)),
                resources_requests(_get(values, "cainjector.resources"), "cainjector"),
            )
        )
    return groups


def _envoy_gateway_model(release: str, values: Mapping[str, Any]) -> list[PodGroup]:
    return [
        PodGroup(
            f"helm {release}: envoy-gateway",
            int(_get(values, "deployment.replicas", 1) or 1),
            resources_requests(_get(values, "deployment.envoyGateway.resources"), "envoy-gateway"),
        )
    ]


CRD_ONLY_CHARTS = frozenset({"gateway-crds-helm"})
"""Charts that install CustomResourceDefinitions and nothing that runs."""

CHART_MODELS: dict[str, ChartModel] = {
    "dapr": _dapr_model,
    "strimzi-kafka-operator": _strimzi_operator_model,
    "kube-prometheus-stack": _kube_prometheus_model,
    "cert-manager": _cert_manager_model,
    "gateway-helm": _envoy_gateway_model,
}


def release_values(obj: KubernetesObject) -> tuple[dict[str, Any], bool]:
    """The release's effective values and whether chart defaults were found for them."""
    spec = obj.body["spec"]
    defaults = chart_defaults(str(spec.get("chart", "")), str(spec.get("version", "")))
    values = helm_release_values(obj)
    if defaults is None:
        return values, False
    return deep_merge(defaults, values), True


def _helm_groups(objects: list[KubernetesObject], notes: list[str]) -> list[PodGroup]:
    groups: list[PodGroup] = []
    for obj in objects:
        if not obj.is_helm_release:
            continue
        chart = str(obj.body["spec"].get("chart", "")).rsplit("/", 1)[-1]
        if chart in CRD_ONLY_CHARTS:
            continue
        model = CHART_MODELS.get(chart)
        if model is None:
            notes.append(
                f"helm release {obj.name}: chart {chart!r} has no workload model; not counted"
            )
            continue
        values, with_defaults = release_values(obj)
        if not with_defaults:
            notes.append(
                f"helm release {obj.name}: no default values for {chart} "
                f"{obj.body['spec'].get('version')}; counted from the release's values only"
            )
        # What is neither per node nor stateful is a Deployment (dapr's placement and
        # scheduler are StatefulSets without volumes: rolled like one here, harmlessly).
        groups.extend(
            replace(group, rolling=not (group.per_node or group.stateful))
            for group in model(obj.name, values)
        )
    return groups


def compute_footprint(
    objects: list[KubernetesObject], resources: Iterable[RecordedResource] = ()
) -> Footprint:
    footprint = Footprint(capacity=capacity_of(resources))
    footprint.groups.extend(_workload_groups(objects))
    footprint.groups.extend(_strimzi_groups(objects))
    footprint.groups.extend(_gateway_groups(objects))
    footprint.groups.extend(_helm_groups(objects, footprint.notes))
    return footprint
