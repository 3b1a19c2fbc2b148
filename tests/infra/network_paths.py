"""Which endpoint may talk to which, by the network policies a plan renders.

A small evaluator of `networking.k8s.io/v1` NetworkPolicy semantics, plus the part of
`cilium.io/v2` CiliumNetworkPolicy the program uses (`endpointSelector`, egress
`toEntities` with `toPorts`). A connection needs the source's egress and the
destination's ingress to allow it. A side that no policy selects (for that direction)
is open; otherwise one rule of one selecting policy, of either kind, must match the peer
and the port: Cilium enforces Kubernetes' and its own policies together, their allows
add up, and an endpoint is default-deny in a direction once any policy selects it for
that direction (Cilium docs, "Policy Enforcement Modes", default mode:
https://docs.cilium.io/en/stable/security/policy/intro/).

Peers are matched by namespace labels (the rendered Namespaces' labels plus
`kubernetes.io/metadata.name`) and pod labels. `ipBlock` peers never match pods, and
on Cilium they never match the API server either: "CIDR rules do not apply to traffic
where both sides are managed by Cilium or use an IP belonging to a node in the cluster"
(Cilium docs, Layer 3 policy, CIDR-based). The API server is reached there through the
`kube-apiserver` entity ("the kube-apiserver entity represents the kube-apiserver in
the cluster", Cilium docs, Layer 3 policy, Entities-based:
https://docs.cilium.io/en/stable/security/policy/language/#entities-based). On a
generic CNI (minikube) the API server is an address, matched by `ipBlock`.

Endpoints outside the pod network (`External`: the API server, the internet, a managed
database, the control plane calling webhooks) have an address and the Cilium entity
they fall under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from infra.tooling.plan.objects import KubernetesObject

Cni = Literal["generic", "cilium"]


@dataclass(frozen=True)
class PodPort:
    number: int
    name: str = ""
    protocol: str = "TCP"


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it."""

    namespace: str
    labels: Mapping[str, str]
    name: str = ""
    ports: tuple[PodPort, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class External:
    """An endpoint outside the pod network."""

    name: str
    address: str
    entity: str
    """Its Cilium entity: `kube-apiserver`, or `world` for anything outside the cluster."""
    ports: tuple[PodPort, ...] = ()

    @property
    def key(self) -> str:
        return self.name


Endpoint = Pod | External
Path = tuple[str, str, int, str]
"""(source key, destination key, port, protocol)."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    egress_by: tuple[str, ...] = ()
    """Policies that selected the source for egress (empty: egress not fenced)."""
    ingress_by: tuple[str, ...] = ()
    """Policies that selected the destination for ingress."""


@dataclass
class Policies:
    policies: list[Mapping[str, Any]] = field(default_factory=list)
    cilium_policies: list[Mapping[str, Any]] = field(default_factory=list)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    cni: Cni = "cilium"

    @classmethod
    def of(cls, objects: Iterable[KubernetesObject], cni: Cni = "cilium") -> Policies:
        result = cls(cni=cni)
        for obj in objects:
            if obj.kind == "NetworkPolicy":
                result.policies.append(obj.body)
            elif obj.kind == "CiliumNetworkPolicy":
                result.cilium_policies.append(obj.body)
            elif obj.kind == "Namespace":
                labels = dict(obj.body["metadata"].get("labels") or {})
                labels["kubernetes.io/metadata.name"] = obj.name
                result.namespace_labels[obj.name] = labels
        if result.cilium_policies and cni != "cilium":
            raise ValueError("CiliumNetworkPolicies rendered for a cluster without Cilium")
        return result

    def _namespace(self, name: str) -> dict[str, str]:
        return self.namespace_labels.get(name, {"kubernetes.io/metadata.name": name})

    def _peer(self, peer: Mapping[str, Any], other: Endpoint, policy_namespace: str) -> bool:
        if isinstance(other, External):
            block = peer.get("ipBlock")
            if block is None or (self.cni == "cilium" and other.entity != "world"):
                return False
            return _in_block(other.address, block)
        if "ipBlock" in peer:
            return False
        namespaces, pods = peer.get("namespaceSelector"), peer.get("podSelector")
        in_namespace = (
            selects(namespaces, self._namespace(other.namespace))
            if namespaces is not None
            else other.namespace == policy_namespace
        )
        return in_namespace and (pods is None or selects(pods, other.labels))

    def _side(
        self, pod: Pod, other: Endpoint, port: PodPort, direction: str
    ) -> tuple[bool, list[str]]:
        rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        selecting = [
            policy
            for policy in self.policies
            if policy["metadata"]["namespace"] == pod.namespace
            and direction in policy["spec"].get("policyTypes", [])
            and selects(policy["spec"].get("podSelector") or {}, pod.labels)
        ]
        cilium = [
            policy
            for policy in self.cilium_policies
            if policy["metadata"]["namespace"] == pod.namespace
            and policy["spec"].get(rules_key)
            and selects(policy["spec"].get("endpointSelector") or {}, pod.labels)
        ]
        names = [str(policy["metadata"]["name"]) for policy in (*selecting, *cilium)]
        if not names:
            return True, names
        for policy in selecting:
            for rule in policy["spec"].get(rules_key) or []:
                peers = rule.get(peers_key)
                peer_ok = peers is None or any(
                    self._peer(peer, other, pod.namespace) for peer in peers
                )
                if peer_ok and _port(rule.get("ports"), port):
                    return True, names
        if any(_cilium_rule(rule, other, port) for p in cilium for rule in p["spec"][rules_key]):
            return True, names
        return False, names

    def verdict(self, source: Endpoint, destination: Endpoint, port: int | PodPort) -> Verdict:
        port = port if isinstance(port, PodPort) else PodPort(port)
        egress, egress_by = (
            self._side(source, destination, port, "Egress")
            if isinstance(source, Pod)
            else (True, [])
        )
        ingress, ingress_by = (
            self._side(destination, source, port, "Ingress")
            if isinstance(destination, Pod)
            else (True, [])
        )
        return Verdict(egress and ingress, tuple(egress_by), tuple(ingress_by))

    def allowed_paths(
        self, sources: Iterable[Endpoint], destinations: Iterable[Endpoint]
    ) -> set[Path]:
        """Every (source, destination, port) allowed, over the ports destinations listen on."""
        destinations = list(destinations)
        return {
            (source.key, destination.key, port.number, port.protocol)
            for source in sources
            for destination in destinations
            if source.key != destination.key
            for port in destination.ports
            if self.verdict(source, destination, port).allowed
        }


def _cilium_rule(rule: Mapping[str, Any], other: Endpoint, port: PodPort) -> bool:
    """A CiliumNetworkPolicy rule by its entities and ports (the only peers we render)."""
    entities = set(rule.get("toEntities") or rule.get("fromEntities") or [])
    if isinstance(other, Pod):
        peer_ok = bool(entities & {"all", "cluster"})
    else:
        peer_ok = bool(entities & {"all", other.entity})
    if not peer_ok:
        return False
    to_ports = rule.get("toPorts")
    if not to_ports:
        return True
    return any(
        str(entry.get("port")) == str(port.number)
        and entry.get("protocol", "ANY") in (port.protocol, "ANY")
        for group in to_ports
        for entry in group.get("ports") or []
    )


def _in_block(address: str, block: Mapping[str, Any]) -> bool:
    ip = ipaddress.ip_address(address)
    if ip not in ipaddress.ip_network(str(block["cidr"]), strict=False):
        return False
    return not any(
        ip in ipaddress.ip_network(str(text), strict=False) for text in block.get("except") or []
    )


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector (`{}` selects everything)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and labels.get(key) in values)
            or (operator == "Exists" and key not in labels)
            or (operator == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def _port(ports: list[Mapping[str, Any]] | None, port: PodPort) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != port.protocol:
            continue
        low = entry.get("port")
        high = entry.get("endPort", low)
        if low is None or (isinstance(low, int) and low <= port.number <= int(high)):
            return True
        if isinstance(low, str) and low == port.name:  # a named port
            return True
    return False


# ------------------------------------------------------------------ the pods a plan runs

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
# What Dapr's sidecar injector adds to a pod annotated `dapr.io/enabled: "true"`: the
# `daprd` container's ports and three labels (dapr/dapr pkg/injector/consts.go:
# SidecarHTTPPortName "dapr-http", SidecarGRPCPortName "dapr-grpc",
# SidecarInternalGRPCPortName "dapr-internal", SidecarMetricsPortName "dapr-metrics";
# SidecarInjectedLabel, SidecarAppIDLabel, SidecarMetricsEnabledLabel). Ports are
# daprd's defaults (3500, 50001, 50002) and `dapr.io/metrics-port` (default 9090).
DAPR_SIDECAR_PORTS = (
    PodPort(3500, "dapr-http"),
    PodPort(50001, "dapr-grpc"),
    PodPort(50002, "dapr-internal"),
)


def _template_pod(obj: KubernetesObject) -> Pod:
    template = obj.body["spec"]["template"]
    metadata = template.get("metadata") or {}
    labels = dict(metadata.get("labels") or {})
    annotations = metadata.get("annotations") or {}
    ports = [
        PodPort(int(p["containerPort"]), str(p.get("name", "")), str(p.get("protocol", "TCP")))
        for container in template["spec"].get("containers") or []
        for p in container.get("ports") or []
    ]
    if annotations.get("dapr.io/enabled") == "true":
        metrics = annotations.get("dapr.io/enable-metrics", "true") == "true"
        labels["dapr.io/sidecar-injected"] = "true"
        labels["dapr.io/app-id"] = str(annotations.get("dapr.io/app-id", obj.name))
        labels["dapr.io/metrics-enabled"] = str(metrics).lower()
        ports.extend(DAPR_SIDECAR_PORTS)
        if metrics:
            ports.append(
                PodPort(int(annotations.get("dapr.io/metrics-port", 9090)), "dapr-metrics")
            )
    return Pod(obj.namespace or "default", labels, obj.name, tuple(ports))


def _strimzi_pods(kafka: KubernetesObject) -> list[Pod]:
    """The pods Strimzi runs for a Kafka resource, with the labels and ports it gives them.

    strimzi-kafka-operator, cluster-operator/.../model/KafkaCluster.java: control plane
    9090 (`tcp-ctrlplane`), replication 9091 (`tcp-replication`), agent 8443
    (`tcp-kafkaagent`), each listener's port; the exporter's metrics 9404
    (`tcp-prometheus`); the entity operator's health checks 8080/8081.
    """
    cluster, namespace = kafka.name, kafka.namespace or "default"
    spec = kafka.body.get("spec") or {}
    base = {"strimzi.io/cluster": cluster, "strimzi.io/kind": "Kafka"}
    listeners = tuple(
        PodPort(int(listener["port"]), f"tcp-{listener['name']}")
        for listener in (spec.get("kafka") or {}).get("listeners") or []
    )
    broker_ports = (
        PodPort(9090, "tcp-ctrlplane"),
        PodPort(9091, "tcp-replication"),
        PodPort(8443, "tcp-kafkaagent"),
        *listeners,
    )
    if (spec.get("kafka") or {}).get("metricsConfig"):
        broker_ports = (*broker_ports, PodPort(9404, "tcp-prometheus"))
    pods = [
        Pod(
            namespace,
            {**base, "strimzi.io/name": f"{cluster}-kafka", "strimzi.io/broker-role": "true"},
            "kafka-broker",
            broker_ports,
        )
    ]
    if "entityOperator" in spec:
        pods.append(
            Pod(
                namespace,
                {**base, "strimzi.io/name": f"{cluster}-entity-operator"},
                "entity-operator",
                (PodPort(8080, "healthcheck"), PodPort(8081, "healthcheck")),
            )
        )
    if "kafkaExporter" in spec:
        pods.append(
            Pod(
                namespace,
                {**base, "strimzi.io/name": f"{cluster}-kafka-exporter"},
                "kafka-exporter",
                (PodPort(9404, "tcp-prometheus"),),
            )
        )
    return pods


def workload_pods(objects: Iterable[KubernetesObject]) -> list[Pod]:
    """Pods of the rendered workloads (Dapr sidecars injected) and of Strimzi's Kafkas."""
    pods: list[Pod] = []
    for obj in objects:
        if obj.kind in WORKLOAD_KINDS:
            pods.append(_template_pod(obj))
        elif obj.kind == "Kafka" and obj.group == "kafka.strimzi.io":
            pods.extend(_strimzi_pods(obj))
    return pods


def strimzi_policies(
    objects: Iterable[KubernetesObject], operator_namespace: str
) -> list[dict[str, Any]]:
    """The NetworkPolicy Strimzi generates for each Kafka's brokers (not rendered offline).

    KafkaCluster.generateNetworkPolicy: 9090 from the cluster's own pods and the cluster
    operator; 9091 from those, the entity operator, the exporter and Cruise Control;
    8443 from the operator; each listener from its `networkPolicyPeers` (all when
    none); the metrics port, when metrics are on, from anyone. The operator peer has
    its namespace's selector (`clusterOperatorNamespaceSelector`): none in its own
    namespace, `{}` (any namespace) elsewhere when no labels are configured.
    """
    policies = []
    for kafka in objects:
        if kafka.kind != "Kafka" or kafka.group != "kafka.strimzi.io":
            continue
        cluster, namespace = kafka.name, kafka.namespace or "default"
        spec = kafka.body.get("spec") or {}
        operator: dict[str, Any] = {
            "podSelector": {"matchLabels": {"strimzi.io/kind": "cluster-operator"}}
        }
        if namespace != operator_namespace:
            operator["namespaceSelector"] = {}

        def own(name: str) -> dict[str, Any]:
            return {"podSelector": {"matchLabels": {"strimzi.io/name": name}}}

        brokers = {
            "strimzi.io/cluster": cluster,
            "strimzi.io/kind": "Kafka",
            "strimzi.io/name": f"{cluster}-kafka",
        }
        kafka_peer = {"podSelector": {"matchLabels": brokers}}
        rules: list[dict[str, Any]] = [
            {"ports": [{"port": 9090, "protocol": "TCP"}], "from": [kafka_peer, operator]},
            {
                "ports": [{"port": 9091, "protocol": "TCP"}],
                "from": [
                    operator,
                    kafka_peer,
                    own(f"{cluster}-entity-operator"),
                    own(f"{cluster}-kafka-exporter"),
                    own(f"{cluster}-cruise-control"),
                ],
            },
            {"ports": [{"port": 8443, "protocol": "TCP"}], "from": [operator]},
        ]
        for listener in (spec.get("kafka") or {}).get("listeners") or []:
            rule: dict[str, Any] = {"ports": [{"port": int(listener["port"]), "protocol": "TCP"}]}
            if listener.get("networkPolicyPeers"):
                rule["from"] = listener["networkPolicyPeers"]
            rules.append(rule)
        if (spec.get("kafka") or {}).get("metricsConfig"):
            rules.append({"ports": [{"port": 9404, "protocol": "TCP"}]})
        if "entityOperator" in spec:
            # EntityOperator.generateNetworkPolicy: the health-check ports, from anyone.
            policies.append(
                {
                    "metadata": {"name": f"{cluster}-entity-operator", "namespace": namespace},
                    "spec": {
                        "podSelector": {
                            "matchLabels": {"strimzi.io/name": f"{cluster}-entity-operator"}
                        },
                        "policyTypes": ["Ingress"],
                        "ingress": [
                            {"ports": [{"port": 8080, "protocol": "TCP"}]},
                            {"ports": [{"port": 8081, "protocol": "TCP"}]},
                        ],
                    },
                }
            )
        policies.append(
            {
                "metadata": {"name": f"{cluster}-network-policy-kafka", "namespace": namespace},
                "spec": {
                    "podSelector": {"matchLabels": brokers},
                    "policyTypes": ["Ingress"],
                    "ingress": rules,
                },
            }
        )
    return policies
