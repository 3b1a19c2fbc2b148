"""What the pods must fit: the nodes' allocatable CPU and memory (minikube's VM, DOKS
node sizes), less what the system itself requests."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.quantities import GIB, MIB

# `minikube start --cpus 4 --memory 8g`.
MINIKUBE_CPU_M = 4000
MINIKUBE_MEMORY = 8 * GIB
# What a kubeadm-style control plane and minikube's add-ons request on that node:
# kube-apiserver 250m, kube-controller-manager 200m, kube-scheduler 100m, etcd
# 100m/100Mi, coredns 100m/70Mi.
SYSTEM_CPU_M = 750
SYSTEM_MEMORY = 170 * MIB


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
