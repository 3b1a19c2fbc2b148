"""The footprint: the pod groups summed, and whether they fit the capacity (in total, node
by node, with one node down)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from infra.tooling.plan.footprint.capacity import MINIKUBE, Capacity, capacity_of
from infra.tooling.plan.footprint.charts import helm_groups
from infra.tooling.plan.footprint.requests import (
    PodGroup,
    Requests,
    gateway_groups,
    strimzi_groups,
    workload_groups,
)
from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import KubernetesObject


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


def compute_footprint(
    objects: list[KubernetesObject], resources: Iterable[RecordedResource] = ()
) -> Footprint:
    footprint = Footprint(capacity=capacity_of(resources))
    # In URN order: the program's registration order varies between runs, and the rows
    # (and first-fit's ties) should not.
    objects = sorted(objects, key=lambda obj: obj.resource.urn)
    footprint.groups.extend(workload_groups(objects))
    footprint.groups.extend(strimzi_groups(objects))
    footprint.groups.extend(gateway_groups(objects))
    footprint.groups.extend(helm_groups(objects, footprint.notes))
    return footprint
