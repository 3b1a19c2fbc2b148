"""Pod requests: what one pod asks the scheduler for, and the program's own workloads
grouped by pod (Deployments, StatefulSets, DaemonSets, Strimzi's node pools, Envoy's proxies)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.tooling.plan.objects import KubernetesObject
from infra.tooling.plan.quantities import MIB, QuantityError, bytes_of, millicores

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


def at_path(values: Mapping[str, Any], path: str, default: Any = None) -> Any:
    current: Any = values
    for key in path.split("."):
        if not isinstance(current, Mapping) or key not in current:
            return default
        current = current[key]
    return current


def container_requests(container: Mapping[str, Any], label: str) -> Requests:
    requests = at_path(container, "resources.requests", {}) or {}
    limits = at_path(container, "resources.limits", {}) or {}
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
    annotations = at_path(template, "metadata.annotations", {}) or {}
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
            target = at_path(obj.body, "spec.scaleTargetRef", {}) or {}
            minimum = int(at_path(obj.body, "spec.minReplicas", 1) or 1)
            scaled[(obj.namespace, str(target.get("name")))] = minimum
    return scaled


def workload_groups(objects: list[KubernetesObject]) -> list[PodGroup]:
    hpa = _hpa_min_replicas(objects)
    groups: list[PodGroup] = []
    for obj in objects:
        template = at_path(obj.body, "spec.template", {}) or {}
        if obj.kind == "Deployment":
            replicas = hpa.get((obj.namespace, obj.name), at_path(obj.body, "spec.replicas", 1))
            groups.append(
                PodGroup(_label(obj), int(replicas), pod_requests(template), rolling=True)
            )
        elif obj.kind == "StatefulSet":
            replicas = int(at_path(obj.body, "spec.replicas", 1))
            groups.append(PodGroup(_label(obj), replicas, pod_requests(template), stateful=True))
        elif obj.kind == "DaemonSet":
            groups.append(PodGroup(_label(obj), 1, pod_requests(template), per_node=True))
        elif obj.kind == "Pod":
            groups.append(PodGroup(_label(obj), 1, pod_requests(obj.body)))
        elif obj.kind == "Job":
            parallelism = int(at_path(obj.body, "spec.parallelism", 1))
            groups.append(
                PodGroup(_label(obj), parallelism, pod_requests(template), transient=True)
            )
        elif obj.kind == "CronJob":
            job_template = at_path(obj.body, "spec.jobTemplate.spec.template", {}) or {}
            groups.append(PodGroup(_label(obj), 1, pod_requests(job_template), transient=True))
    return groups


def strimzi_groups(objects: list[KubernetesObject]) -> list[PodGroup]:
    groups: list[PodGroup] = []
    kafkas = {(o.namespace, o.name): o for o in objects if o.kind == "Kafka"}
    for obj in objects:
        if obj.kind == "KafkaNodePool" and obj.group == "kafka.strimzi.io":
            cluster = at_path(obj.body, "metadata.labels", {}).get("strimzi.io/cluster")
            kafka = kafkas.get((obj.namespace, str(cluster)))
            resources = at_path(obj.body, "spec.resources") or (
                at_path(kafka.body, "spec.kafka.resources") if kafka else None
            )
            groups.append(
                PodGroup(
                    _label(obj),
                    int(at_path(obj.body, "spec.replicas", 1)),
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
                    resources = at_path(entity, f"{operator}.resources")
                    requests += resources_requests(resources, operator)
            groups.append(PodGroup(f"{_label(kafka)} entity operator", 1, requests))
        for part, label in (("kafkaExporter", "exporter"), ("cruiseControl", "cruise control")):
            if isinstance(spec.get(part), Mapping):
                requests = resources_requests(at_path(spec, f"{part}.resources"), part)
                groups.append(PodGroup(f"{_label(kafka)} {label}", 1, requests))
    return groups


def gateway_groups(objects: list[KubernetesObject]) -> list[PodGroup]:
    proxies = [o for o in objects if o.kind == "EnvoyProxy"]
    deployment = (
        at_path(proxies[0].body, "spec.provider.kubernetes.envoyDeployment", {}) if proxies else {}
    )
    replicas = int((deployment or {}).get("replicas", 1))
    resources = at_path(deployment or {}, "container.resources")
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
