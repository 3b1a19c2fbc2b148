"""The paths monitoring and the edge need, through every stack's rendered NetworkPolicies.

Pods are described by the labels their upstream projects give them (prometheus-operator,
Grafana's chart, Envoy Gateway, Strimzi, Dapr, cert-manager), not by our own constants,
so a policy that admits the wrong pods, or whole namespaces, shows up here. Grafana is
reachable from the internet (through the Gateway): it must not reach the services, and
neither must any other pod of the monitoring or gateway namespaces but the ones that
need to.
"""

from __future__ import annotations

import copy
import fnmatch
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from apps.contracts.services import APP_IDS, PUBLIC_API_PREFIXES
from infra.settings import LocalCluster
from infra.tooling.plan.build import Plan
from infra.tooling.plan.objects import KubernetesObject
from tests.infra.conftest import EPHEMERAL_STACK, STACKS
from tests.infra.network_paths import (
    Cni,
    Endpoint,
    External,
    Path,
    Pod,
    PodPort,
    Policies,
    strimzi_policies,
    workload_pods,
)
from tests.infra.semantics import synthetic_object

APPS: tuple[str, ...] = APP_IDS
PUBLIC_APIS = tuple(PUBLIC_API_PREFIXES)
PROMETHEUS = Pod(
    "monitoring",
    {
        "app.kubernetes.io/name": "prometheus",
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "app.kubernetes.io/instance": "kube-prometheus-stack-prometheus",
        "prometheus": "kube-prometheus-stack-prometheus",
    },
    "prometheus",
    (PodPort(9090, "http-web"),),
)
GRAFANA = Pod(
    "monitoring",
    {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"},
    "grafana",
    (PodPort(3000, "grafana"),),
)
KUBE_STATE_METRICS = Pod(
    "monitoring",
    {"app.kubernetes.io/name": "kube-state-metrics"},
    "kube-state-metrics",
    (PodPort(8080, "http"),),
)
ENVOY = Pod(
    "envoy-gateway-system",
    {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/managed-by": "envoy-gateway",
        "gateway.envoyproxy.io/owning-gateway-name": "todo",
    },
    "envoy",
    (PodPort(10080), PodPort(10443), PodPort(19001, "metrics")),
)
GATEWAY_CONTROLLER = Pod(
    "envoy-gateway-system",
    {
        "control-plane": "envoy-gateway",
        "app.kubernetes.io/name": "gateway-helm",
        "app.kubernetes.io/instance": "envoy-gateway",
    },
    "envoy-gateway",
    (PodPort(18000, "grpc"), PodPort(19001, "metrics")),
)
# gateway-helm templates/certgen.yaml: the pre-install Job writing the xDS certificates.
CERTGEN = Pod(
    "envoy-gateway-system",
    {"app": "certgen", "batch.kubernetes.io/job-name": "envoy-gateway-gateway-helm-certgen"},
    "certgen",
)
ACME_SOLVER = Pod(
    "envoy-gateway-system",
    {"acme.cert-manager.io/http01-solver": "true"},
    "acme-solver",
    (PodPort(8089, "http"),),
)
DAPR_OPERATOR = Pod(
    "dapr-system",
    {"app": "dapr-operator", "app.kubernetes.io/name": "dapr"},
    "dapr-operator",
    (PodPort(6500), PodPort(19443), PodPort(9090, "metrics")),
)
STRIMZI_OPERATOR = Pod(
    "kafka",
    {"name": "strimzi-cluster-operator", "strimzi.io/kind": "cluster-operator"},
    "strimzi-cluster-operator",
    (PodPort(8080, "http"),),
)


def _app_pods(plan: Plan) -> dict[str, Pod]:
    pods = {}
    for obj in plan.objects:
        if obj.kind == "Deployment" and obj.name in APPS:
            labels = obj.body["spec"]["template"]["metadata"]["labels"]
            pods[obj.name] = Pod(str(obj.namespace), labels, obj.name)
    assert set(pods) == set(APPS)
    return pods


def _kafka_exporter(plan: Plan) -> Pod:
    (kafka,) = [o for o in plan.objects if o.kind == "Kafka"]
    cluster = kafka.name
    labels = {
        "strimzi.io/cluster": cluster,
        "strimzi.io/kind": "Kafka",
        "strimzi.io/name": f"{cluster}-kafka-exporter",
    }
    return Pod(str(kafka.namespace), labels, "kafka-exporter")


def _closed(policies: Policies, paths: list[tuple[Pod, Pod, int]]) -> list[str]:
    """The paths among `paths` that the policies do not allow."""
    return [
        f"{source.name} -> {destination.name}:{port} {policies.verdict(source, destination, port)}"
        for source, destination, port in paths
        if not policies.verdict(source, destination, port).allowed
    ]


def _open(policies: Policies, paths: list[tuple[Pod, Pod, int]]) -> list[str]:
    return [
        f"{source.name} -> {destination.name}:{port}"
        for source, destination, port in paths
        if policies.verdict(source, destination, port).allowed
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_monitoring_and_the_edge_reach_what_they_need(planned: Any, stack: str) -> None:
    plan = planned(stack)
    policies = Policies.of(plan.objects)
    apps = _app_pods(plan)
    needed = [
        *((PROMETHEUS, apps[app], port) for app in APPS for port in (8000, 9090)),
        *((ENVOY, apps[app], 8000) for app in PUBLIC_APIS),
        (PROMETHEUS, _kafka_exporter(plan), 9404),
        (PROMETHEUS, STRIMZI_OPERATOR, 8080),
        (PROMETHEUS, DAPR_OPERATOR, 9090),
        (PROMETHEUS, ENVOY, 19001),
        (ENVOY, GRAFANA, 3000),
        (GRAFANA, PROMETHEUS, 9090),
        (ENVOY, GATEWAY_CONTROLLER, 18000),  # xDS
    ]
    if stack != "minikube":
        needed.append((ENVOY, ACME_SOLVER, 8089))  # HTTP-01 challenges
    assert _closed(policies, needed) == []


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_else_in_monitoring_or_the_gateway_reaches_the_services(
    planned: Any, stack: str
) -> None:
    plan = planned(stack)
    policies = Policies.of(plan.objects)
    apps = _app_pods(plan)
    others = (GRAFANA, KUBE_STATE_METRICS, GATEWAY_CONTROLLER, ACME_SOLVER)
    unwanted = [
        *((pod, apps[app], port) for pod in others for app in APPS for port in (8000, 9090)),
        *((ENVOY, apps[app], 9090) for app in APPS),  # the sidecar's metrics stay inside
        (GRAFANA, _kafka_exporter(plan), 9404),
        (GRAFANA, DAPR_OPERATOR, 9090),
        (GRAFANA, ENVOY, 19001),
        (GATEWAY_CONTROLLER, GRAFANA, 3000),
        (KUBE_STATE_METRICS, STRIMZI_OPERATOR, 8080),
    ]
    assert _open(policies, unwanted) == []


def test_the_base_stacks_prometheus_scrapes_an_ephemeral_stack(planned: Any) -> None:
    plan = planned(EPHEMERAL_STACK)
    policies = Policies.of(plan.objects)
    apps = _app_pods(plan)
    exporter = _kafka_exporter(plan)
    assert exporter.namespace == apps["backend"].namespace == "todo-dev-alice"
    needed = [
        *((PROMETHEUS, apps[app], port) for app in APPS for port in (8000, 9090)),
        (PROMETHEUS, exporter, 9404),
    ]
    assert _closed(policies, needed) == []
    unwanted = [(GRAFANA, apps["backend"], 8000), (GRAFANA, exporter, 9404)]
    assert _open(policies, unwanted) == []


# --- the whole matrix: what is allowed is exactly what the design needs ------------------

DAPR_SENTRY = Pod(
    "dapr-system",
    {"app": "dapr-sentry", "app.kubernetes.io/name": "dapr"},
    "dapr-sentry",
    (PodPort(50001), PodPort(9090, "metrics")),
)
DAPR_INJECTOR = Pod(
    "dapr-system",
    {"app": "dapr-sidecar-injector", "app.kubernetes.io/name": "dapr"},
    "dapr-sidecar-injector",
    (PodPort(4000, "https"), PodPort(9090, "metrics")),
)
PROMETHEUS_OPERATOR = Pod(
    "monitoring",
    {
        "app": "kube-prometheus-stack-operator",
        "app.kubernetes.io/name": "kube-prometheus-stack-prometheus-operator",
    },
    "prometheus-operator",
    (PodPort(10250, "https"),),
)
ALERTMANAGER = Pod(
    "monitoring",
    {
        "app.kubernetes.io/name": "alertmanager",
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "alertmanager": "kube-prometheus-stack-alertmanager",
    },
    "alertmanager",
    (PodPort(9093, "http-web"), PodPort(8080, "reloader-web")),
)
# The chart's hook Jobs: the admission webhook's certificate (create, patch) and the CRD
# upgrade, whose pods carry the Job controller's labels and the `podLabels` we give them.
ADMISSION_JOB = Pod(
    "monitoring",
    {
        "app": "kube-prometheus-stack-admission-create",
        "app.kubernetes.io/name": "kube-prometheus-stack-prometheus-operator",
        "app.kubernetes.io/component": "prometheus-operator-webhook",
    },
    "admission-create",
)
CRD_UPGRADE_JOB = Pod(
    "monitoring",
    {
        "batch.kubernetes.io/job-name": "kube-prometheus-stack-crds-upgrade",
        "app.kubernetes.io/component": "crds-upgrade",
    },
    "crd-upgrade",
)
CERT_MANAGER = Pod(
    "cert-manager",
    {
        "app": "cert-manager",
        "app.kubernetes.io/name": "cert-manager",
        "app.kubernetes.io/instance": "cert-manager",
        "app.kubernetes.io/component": "controller",
    },
    "cert-manager",
    (PodPort(9402, "http-metrics"),),
)
CERT_MANAGER_WEBHOOK = Pod(
    "cert-manager",
    {
        "app": "webhook",
        "app.kubernetes.io/name": "webhook",
        "app.kubernetes.io/instance": "cert-manager",
        "app.kubernetes.io/component": "webhook",
    },
    "cert-manager-webhook",
    (PodPort(10250, "https"),),
)
CERT_MANAGER_CAINJECTOR = Pod(
    "cert-manager",
    {
        "app": "cainjector",
        "app.kubernetes.io/name": "cainjector",
        "app.kubernetes.io/instance": "cert-manager",
        "app.kubernetes.io/component": "cainjector",
    },
    "cert-manager-cainjector",
    (PodPort(9402, "http-metrics"),),
)
KUBE_DNS = Pod(
    "kube-system",
    {"k8s-app": "kube-dns"},
    "kube-dns",
    (PodPort(53, "dns", "UDP"), PodPort(53, "dns-tcp"), PodPort(9153, "metrics")),
)
# A pod of a namespace no policy of ours fences: catches rules that admit anyone.
# The tracing charts' pods, by their charts' selector labels (opentelemetry-collector's
# `selectorLabels` plus its `component`; tempo's `selectorLabels`) and the ports they
# listen on: OTLP gRPC/HTTP, the collector's metrics and health check; Tempo's HTTP API,
# gRPC and memberlist.
OTEL_COLLECTOR = Pod(
    "monitoring",
    {
        "app.kubernetes.io/name": "opentelemetry-collector",
        "app.kubernetes.io/instance": "otel-collector",
        "component": "standalone-collector",
    },
    "otel-collector",
    (PodPort(4317), PodPort(4318), PodPort(8888), PodPort(13133)),
)
TEMPO = Pod(
    "monitoring",
    {"app.kubernetes.io/name": "tempo", "app.kubernetes.io/instance": "tempo"},
    "tempo",
    (PodPort(3200), PodPort(9095), PodPort(4317), PodPort(4318), PodPort(7946)),
)
# The logs charts' pods: Loki's single binary (loki's `selectorLabels` plus its
# `component`) on its HTTP API, gRPC and memberlist ports; Alloy (alloy's
# `selectorLabels`) on its HTTP server.
LOKI = Pod(
    "monitoring",
    {
        "app.kubernetes.io/name": "loki",
        "app.kubernetes.io/instance": "loki",
        "app.kubernetes.io/component": "single-binary",
    },
    "loki",
    (PodPort(3100), PodPort(9095), PodPort(7946)),
)
ALLOY = Pod(
    "monitoring",
    {"app.kubernetes.io/name": "alloy", "app.kubernetes.io/instance": "alloy"},
    "alloy",
    (PodPort(12345),),
)
OUTSIDER = Pod("default", {"app": "outsider"}, "outsider", (PodPort(8080),))
# The internet: webhook receivers and the ACME server (TEST-NET-3, RFC 5737).
INTERNET = External("internet", "203.0.113.10", "world", (PodPort(443), PodPort(80)))
DOKS_API_SERVER_PORT = 443


def _cni(plan: Plan) -> Cni:
    if plan.config.values.get("todo:kind") != "minikube":
        return "cilium"  # DOKS always runs Cilium
    cluster = json.loads(plan.config.values.get("todo:cluster", "{}"))
    cni: Cni = cluster.get("cni", LocalCluster().cni)
    return cni


def _api_server(plan: Plan) -> tuple[External, External]:
    """The API server as a destination, and as the source of webhook calls."""
    if _cni(plan) == "cilium":
        address, port = "10.110.0.2", DOKS_API_SERVER_PORT  # any node-side address
        entity = "kube-apiserver"
    else:
        cluster = json.loads(plan.config.values.get("todo:cluster", "{}"))
        defaults = LocalCluster()
        cidr = cluster.get("apiServerCidr", defaults.api_server_cidr)
        address = str(next(iter(ipaddress.ip_network(cidr))))
        port, entity = int(cluster.get("apiServerPort", defaults.api_server_port)), "world"
    return (
        External("api-server", address, entity, (PodPort(port),)),
        External("control-plane", address, entity),
    )


def _kubelet(plan: Plan) -> External:
    """The kubelets: on Cilium the nodes (`remote-node`, or `host` for a pod's own node); on
    minikube its one node, which also serves the API server."""
    if _cni(plan) == "cilium":
        return External("kubelet", "10.110.0.3", "remote-node", (PodPort(10250),))
    api_server, _ = _api_server(plan)
    return External("kubelet", api_server.address, "world", (PodPort(10250),))


def _database(plan: Plan) -> External | None:
    """The managed database: an address in the VPC (None: PostgreSQL runs in the cluster;
    an ephemeral stack's is its base stack's), on its own port and, where this stack has a
    connection pool, the pool's (25061)."""
    types = {resource.type for resource in plan.run.resources.values()}
    ports: tuple[PodPort, ...] = (PodPort(25060),)
    if "digitalocean:index/databaseConnectionPool:DatabaseConnectionPool" in types:
        ports = (PodPort(25060), PodPort(25061))
    for resource in (plan.base or plan).run.resources.values():
        if resource.type == "digitalocean:index/vpc:Vpc":
            network = ipaddress.ip_network(str(resource.inputs["ipRange"]))
            return External("database", str(network[10]), "world", ports)
    return None


def _fenced_namespaces(objects: Iterable[KubernetesObject]) -> set[str]:
    return {str(o.namespace) for o in objects if o.kind == "NetworkPolicy"}


def _tracing(objects: list[KubernetesObject]) -> bool:
    """Whether the objects hold the tracing charts (the collector and Tempo)."""
    return any(
        o.is_helm_release and str(o.body["spec"].get("chart")) == "opentelemetry-collector"
        for o in objects
    )


def _logs(objects: list[KubernetesObject]) -> bool:
    """Whether the objects hold the logs charts (Loki and Alloy)."""
    return any(o.is_helm_release and str(o.body["spec"].get("chart")) == "loki" for o in objects)


def _matrix_inputs(
    plan: Plan, objects: list[KubernetesObject]
) -> tuple[Policies, list[Endpoint], list[Endpoint]]:
    namespaces = _fenced_namespaces(objects)
    policies = Policies.of(objects, _cni(plan))
    policies.policies.extend(strimzi_policies(objects, STRIMZI_OPERATOR.namespace))
    platform = [
        PROMETHEUS,
        GRAFANA,
        KUBE_STATE_METRICS,
        PROMETHEUS_OPERATOR,
        # Alertmanager runs on cloud stacks only; the policies are the same everywhere.
        ALERTMANAGER,
        ADMISSION_JOB,
        CRD_UPGRADE_JOB,
        ENVOY,
        GATEWAY_CONTROLLER,
        CERTGEN,
        ACME_SOLVER,
        DAPR_OPERATOR,
        DAPR_SENTRY,
        DAPR_INJECTOR,
        STRIMZI_OPERATOR,
        CERT_MANAGER,
        CERT_MANAGER_WEBHOOK,
        CERT_MANAGER_CAINJECTOR,
    ]
    if _tracing(objects):
        platform += [OTEL_COLLECTOR, TEMPO]
    if _logs(objects):
        platform += [LOKI, ALLOY]
    pods = [
        *(pod for pod in platform if pod.namespace in namespaces),
        *workload_pods(objects),
        KUBE_DNS,
        OUTSIDER,
    ]
    api_server, control_plane = _api_server(plan)
    database = _database(plan)
    externals = [api_server, _kubelet(plan), INTERNET, *([database] if database else [])]
    return policies, [*pods, INTERNET, control_plane], [*pods, *externals]


def _allowed(plan: Plan, objects: list[KubernetesObject]) -> set[Path]:
    policies, sources, destinations = _matrix_inputs(plan, objects)
    namespaces = _fenced_namespaces(objects)

    def ours(key: str) -> bool:
        return key.split("/", 1)[0] in namespaces if "/" in key else False

    # Paths between endpoints none of our policies fence are not ours to judge.
    return {
        path
        for path in policies.allowed_paths(sources, destinations)
        if ours(path[0]) or ours(path[1])
    }


@dataclass(frozen=True)
class Need:
    """Paths the design needs: sources → destinations on ports, and why.

    Sources and destinations are endpoint keys (`namespace/pod`, or an external's name),
    with shell-style wildcards; ports are `"8000"`, `"53/UDP"`, or `"*"` for every port
    the destination listens on.
    """

    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    ports: tuple[str, ...]
    why: str


ANY = ("*",)
STRIMZI_KAFKA_PODS = ("kafka-broker", "entity-operator", "kafka-exporter")
# Endpoints whose egress no policy of ours fences.
UNFENCED_SOURCES = ("default/*", "kube-system/*", "internet", "control-plane")
# Admission webhooks: the API server calls them from outside the pod network and no
# peer selector matches it on every CNI (Cilium sees it as the `kube-apiserver`, `host`
# or `remote-node` entity, never as an ipBlock), so their policies are ports-only
# ingress rules, which "match all sources" (NetworkPolicy API). Explicitly: anything
# whose egress is unfenced may reach a webhook port.
WEBHOOKS = (
    "dapr-system/dapr-sidecar-injector:4000",
    "dapr-system/dapr-operator:19443",
    "monitoring/prometheus-operator:10250",
    "cert-manager/cert-manager-webhook:10250",
)
# The platform pods that watch or write through the API server (each by its own policy).
API_SERVER_CLIENTS = (
    "monitoring/prometheus",
    "monitoring/prometheus-operator",
    "monitoring/kube-state-metrics",
    "monitoring/admission-create",
    "monitoring/crd-upgrade",
    # Grafana's dashboard and datasource sidecars share its pod, so Grafana's network
    # identity: NetworkPolicies cannot tell the containers apart.
    "monitoring/grafana",
    # Alloy discovers its node's pods and reads their logs (where logs are on).
    "monitoring/alloy",
    "envoy-gateway-system/envoy-gateway",
    "envoy-gateway-system/certgen",
    "cert-manager/cert-manager",
    "cert-manager/cert-manager-webhook",
    "cert-manager/cert-manager-cainjector",
)
# observability.SCRAPE_PORTS: what Prometheus may reach in any namespace.
SCRAPE_PORTS = ("8000", "9090", "9404", "8080", "19001")


def _needs(plan: Plan, objects: list[KubernetesObject]) -> list[Need]:
    apps = sorted({str(o.namespace) for o in objects if o.kind == "Deployment" and o.name in APPS})
    kafka = sorted({str(o.namespace) for o in objects if o.kind == "Kafka"})
    # The namespace Envoy's routes point into: the stack's own, never an ephemeral one's.
    routed = sorted(
        {str(o.namespace) for o in objects if (o.kind, o.name) == ("HTTPRoute", "todo-api")}
    )
    tls = any(o.kind == "ClusterIssuer" for o in objects)
    # PROXY protocol: in-cluster clients of the public names go through the load balancer.
    proxy_protocol = any(o.kind == "ClientTrafficPolicy" for o in objects)
    app_pods = tuple(f"{ns}/{app}" for ns in apps for app in APPS)
    routed_apps = tuple(f"{ns}/{app}" for ns in routed for app in PUBLIC_APIS)
    db_clients = (*app_pods, *(f"{ns}/{job}-*" for ns in apps for job in ("migrate", "db-grants")))
    strimzi = tuple(f"{ns}/{pod}" for ns in kafka for pod in STRIMZI_KAFKA_PODS)
    in_cluster_db = any(o.kind == "StatefulSet" and o.name == "postgresql" for o in objects)
    database = tuple(f"{ns}/postgresql" for ns in apps) if in_cluster_db else ("database",)
    prometheus = ("monitoring/prometheus",)
    envoy = ("envoy-gateway-system/envoy",)
    return [
        # -- the Dapr and Kafka namespaces talk to themselves (their default-deny's one hole)
        Need(("dapr-system/*",), ("dapr-system/*",), ANY, "Dapr control plane internals"),
        Need(("kafka/*",), ("kafka/*",), ANY, "the Strimzi operator and its Kafka"),
        *(
            Need(own, own, ANY, "a Kafka cluster's own pods")
            for own in (tuple(f"{ns}/{pod}" for pod in STRIMZI_KAFKA_PODS) for ns in kafka)
        ),
        # -- everyone resolves names
        Need(("*/*",), ("kube-system/kube-dns",), ("53", "53/UDP"), "DNS"),
        # -- the API server: controllers, Dapr sidecars (the Kubernetes secret store)
        Need(
            ("dapr-system/*", *strimzi, "kafka/*", *app_pods, *API_SERVER_CLIENTS),
            ("api-server",),
            ANY,
            "watches and the secret store",
        ),
        # -- webhooks and listeners that admit anyone; see WEBHOOKS
        *(
            Need(
                UNFENCED_SOURCES, (hook.split(":")[0],), (hook.split(":")[1],), "admission webhook"
            )
            for hook in WEBHOOKS
        ),
        Need(UNFENCED_SOURCES, envoy, ("10080", "10443"), "client traffic"),
        Need(
            UNFENCED_SOURCES,
            tuple(f"{ns}/entity-operator" for ns in kafka),
            ("8080", "8081"),
            "Strimzi opens the entity operator's health checks to all",
        ),
        # -- the Todo services
        *_app_namespace_needs(apps, kafka),
        Need(
            app_pods,
            ("dapr-system/dapr-sentry", "dapr-system/dapr-operator"),
            ("50001", "6500"),
            "sidecars: certificates from sentry, components from the operator",
        ),
        Need(db_clients, database, ANY, "the database"),
        Need(
            tuple(f"{ns}/notification" for ns in apps), ("internet",), ("443", "80"), "webhooks out"
        ),
        # -- Envoy: its routes' backends, and its xDS server
        Need(envoy, routed_apps, ("8000",), "the public API"),
        Need(envoy, ("monitoring/grafana",), ("3000",), "Grafana"),
        Need(envoy, ("envoy-gateway-system/envoy-gateway",), ("18000",), "xDS"),
        *(
            [Need(envoy, ("envoy-gateway-system/acme-solver",), ("8089",), "HTTP-01 challenges")]
            if tls
            else []
        ),
        # -- cert-manager: the ACME server, and the self-check through the Gateway (through
        # the load balancer, on the internet side, with PROXY protocol)
        *(
            [Need(("cert-manager/cert-manager",), ("internet",), ("443", "80"), "ACME")]
            if tls
            else []
        ),
        *(
            [Need(("cert-manager/cert-manager",), envoy, ("10080",), "HTTP-01 self-check")]
            if tls and not proxy_protocol
            else []
        ),
        # -- Grafana: its datasources
        Need(("monitoring/grafana",), prometheus, ("9090",), "the Prometheus datasource"),
        Need(("monitoring/grafana",), ("monitoring/alertmanager",), ("9093",), "Alertmanager"),
        # -- Prometheus scrapes
        Need(prometheus, app_pods, ("8000", "9090"), "app and sidecar metrics"),
        Need(prometheus, ("dapr-system/*",), ("9090",), "Dapr metrics"),
        Need(
            prometheus,
            (*strimzi, "kafka/*"),
            ("9404", "8080"),
            "Kafka exporter and Strimzi operator metrics",
        ),
        Need(
            prometheus,
            ("envoy-gateway-system/envoy", "envoy-gateway-system/envoy-gateway"),
            ("19001",),
            "Envoy and Envoy Gateway metrics",
        ),
        Need(
            prometheus,
            ("monitoring/kube-state-metrics", "monitoring/alertmanager"),
            ("8080", "9093"),
            "kube-state-metrics, Alertmanager (alerts too) and its config reloader",
        ),
        Need(prometheus, ("monitoring/prometheus-operator",), ("10250",), "the operator"),
        Need(prometheus, ("monitoring/grafana",), ("3000",), "Grafana's metrics"),
        Need(prometheus, ("kube-system/kube-dns",), ("9153",), "CoreDNS metrics"),
        Need(prometheus, ("kubelet",), ("10250",), "kubelet and cAdvisor metrics"),
        Need(
            prometheus,
            ("default/*",),
            SCRAPE_PORTS,
            "a scrape port of an unfenced pod: Prometheus's egress is by port, not by target",
        ),
        # -- traces: the apps and their sidecars (one pod) → the collector → Tempo
        *(
            [
                Need(
                    tuple(f"{ns}/{app}" for ns in routed for app in APPS),
                    ("monitoring/otel-collector",),
                    ("4317", "4318"),
                    "OTLP from this stack's apps and sidecars (not an ephemeral stack's)",
                ),
                Need(("monitoring/otel-collector",), ("monitoring/tempo",), ("4317",), "export"),
                Need(("monitoring/grafana",), ("monitoring/tempo",), ("3200",), "Tempo datasource"),
                Need(
                    prometheus,
                    ("monitoring/otel-collector", "monitoring/tempo"),
                    ("8888", "3200"),
                    "the collector's and Tempo's metrics",
                ),
            ]
            if _tracing(objects)
            else []
        ),
        # -- logs: Alloy (API server: pods and their logs) → Loki ← Grafana
        *(
            [
                Need(("monitoring/alloy",), ("monitoring/loki",), ("3100",), "log push"),
                Need(("monitoring/grafana",), ("monitoring/loki",), ("3100",), "Loki datasource"),
                Need(
                    prometheus,
                    ("monitoring/loki", "monitoring/alloy"),
                    ("3100", "12345"),
                    "Loki's and Alloy's metrics",
                ),
            ]
            if _logs(objects)
            else []
        ),
        # -- the Strimzi operator reconciles Kafka clusters in other namespaces
        Need(
            ("kafka/strimzi-cluster-operator",),
            tuple(f"{ns}/kafka-broker" for ns in kafka),
            ("9090", "9091", "8443"),
            "control plane, replication, agent",
        ),
    ]


def _app_namespace_needs(apps: list[str], kafka: list[str]) -> list[Need]:
    """Inside one Todo namespace only: an ephemeral stack's apps never reach the base's."""
    needs = []
    for ns in apps:
        pods = tuple(f"{ns}/{app}" for app in APPS)
        broker = f"{ns}/kafka-broker" if ns in kafka else "kafka/kafka-broker"
        needs.append(Need(pods, pods, ("50002",), "Dapr service invocation, sidecar to sidecar"))
        needs.append(Need(pods, (broker,), ("9092",), "pub/sub, to this stack's own Kafka"))
    return needs


def _expand(needs: list[Need], sources: list[Endpoint], destinations: list[Endpoint]) -> set[Path]:
    def matches(key: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)

    def port_ok(port: PodPort, patterns: tuple[str, ...]) -> bool:
        text = str(port.number) if port.protocol == "TCP" else f"{port.number}/{port.protocol}"
        return "*" in patterns or text in patterns

    return {
        (source.key, destination.key, port.number, port.protocol)
        for need in needs
        for source in sources
        if matches(source.key, need.sources)
        for destination in destinations
        if destination.key != source.key and matches(destination.key, need.destinations)
        for port in destination.ports
        if port_ok(port, need.ports)
    }


def _objects(plan: Plan) -> list[KubernetesObject]:
    """An ephemeral stack's objects run beside its base's."""
    return [*(plan.base.objects if plan.base else []), *plan.objects]


def _matrix(plan: Plan, objects: list[KubernetesObject]) -> dict[str, list[str]]:
    """The paths the design needs but the policies close, and those they open beyond it."""
    _, sources, destinations = _matrix_inputs(plan, objects)
    expected = _expand(_needs(plan, objects), sources, destinations)
    namespaces = _fenced_namespaces(objects)
    # Only paths with an end our policies fence: the rest is not ours to judge.
    expected = {
        p for p in expected if any(k.split("/")[0] in namespaces for k in p[:2] if "/" in k)
    }
    assert len(expected) > 100  # the matrix is not vacuous
    allowed = _allowed(plan, objects)
    return {"missing": _show(expected - allowed), "extra": _show(allowed - expected)}


def _show(paths: set[Path]) -> list[str]:
    return sorted(f"{s} -> {d}:{port}/{protocol}" for s, d, port, protocol in paths)


@pytest.mark.parametrize("stack", (*STACKS, EPHEMERAL_STACK))
def test_policies_allow_exactly_the_paths_the_design_needs(planned: Any, stack: str) -> None:
    plan = planned(stack)
    assert _matrix(plan, _objects(plan)) == {"missing": [], "extra": []}


def _without(objects: list[KubernetesObject], kind: str, name: str) -> list[KubernetesObject]:
    kept = [o for o in objects if (o.kind, o.name) != (kind, name)]
    assert len(kept) < len(objects), f"no {kind} {name}"
    return kept


def _policy(namespace: str, name: str, spec: dict[str, Any]) -> KubernetesObject:
    return synthetic_object(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def _grafana_to_the_apps(*, egress: bool) -> list[KubernetesObject]:
    """A mistaken hole from Grafana into the backend: its ingress side, and if asked its
    egress side too."""
    grafana = {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
    backend = {"matchLabels": {"app.kubernetes.io/name": "backend"}}
    port = [{"protocol": "TCP", "port": 8000}]
    holes = [
        _policy(
            "todo",
            "oops",
            {
                "podSelector": backend,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [{"namespaceSelector": {}, "podSelector": grafana}], "ports": port}
                ],
            },
        )
    ]
    if egress:
        holes.append(
            _policy(
                "monitoring",
                "oops-out",
                {
                    "podSelector": grafana,
                    "policyTypes": ["Egress"],
                    "egress": [
                        {"to": [{"namespaceSelector": {}, "podSelector": backend}], "ports": port}
                    ],
                },
            )
        )
    return holes


def test_an_extra_allowed_path_fails_the_matrix(planned: Any) -> None:
    plan = planned("staging")
    result = _matrix(plan, [*plan.objects, *_grafana_to_the_apps(egress=True)])
    assert result == {
        "missing": [],
        "extra": ["monitoring/grafana -> todo/backend:8000/TCP"],
    }


def test_a_hole_in_the_apps_ingress_alone_does_not_let_grafana_in(planned: Any) -> None:
    # Grafana's own egress fence stops it: both ends must be wrong for the path to open.
    plan = planned("staging")
    result = _matrix(plan, [*plan.objects, *_grafana_to_the_apps(egress=False)])
    assert result == {"missing": [], "extra": []}


# --- what each internet-facing or platform role may reach, exactly ----------------------


def _reach(plan: Plan, source: Pod) -> set[str]:
    """Every destination (`key:port/protocol`) the policies let `source` reach."""
    objects = _objects(plan)
    policies, _, destinations = _matrix_inputs(plan, objects)
    return {
        f"{d}:{port}/{protocol}"
        for _, d, port, protocol in policies.allowed_paths([source], destinations)
    }


def _api_server_port(plan: Plan) -> int:
    api_server, _ = _api_server(plan)
    return api_server.ports[0].number


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_reaches_its_datasources_and_for_its_sidecars_the_api_server(
    planned: Any, stack: str
) -> None:
    plan = planned(stack)
    # Exactly: not the database, the kubelets, the internet, a webhook, an app or Kafka.
    assert _reach(plan, GRAFANA) == {
        "kube-system/kube-dns:53/UDP",
        "kube-system/kube-dns:53/TCP",
        "monitoring/prometheus:9090/TCP",
        "monitoring/alertmanager:9093/TCP",
        # The Tempo datasource (every stack here runs tracing): its query API only.
        "monitoring/tempo:3200/TCP",
        # Grafana's dashboard and datasource sidecars share its pod; a NetworkPolicy
        # cannot allow them the API server without allowing the Grafana container.
        f"api-server:{_api_server_port(plan)}/TCP",
        # The Loki datasource where the stack runs central logs (not minikube).
        *(["monitoring/loki:3100/TCP"] if stack != "minikube" else []),
    }


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_logs_flow_from_alloy_to_loki_and_alloy_reaches_nothing_else(
    planned: Any, stack: str
) -> None:
    plan = planned(stack)
    policies = Policies.of(plan.objects)
    needed = [(ALLOY, LOKI, 3100), (GRAFANA, LOKI, 3100), (PROMETHEUS, LOKI, 3100)]
    assert _closed(policies, needed) == []
    # Alloy reads the logs through the API server and writes to Loki's HTTP port: not
    # the kubelets, the apps, the database, the internet or another monitoring pod.
    assert _reach(plan, ALLOY) == {
        "kube-system/kube-dns:53/UDP",
        "kube-system/kube-dns:53/TCP",
        "monitoring/loki:3100/TCP",
        f"api-server:{_api_server_port(plan)}/TCP",
    }
    # Nobody outside the monitoring namespace pushes to (or reads from) Loki.
    unwanted = [(OUTSIDER, LOKI, 3100), (ENVOY, LOKI, 3100)]
    assert _open(policies, unwanted) == []


def test_without_central_logs_there_is_no_loki_path(planned: Any) -> None:
    plan = planned("minikube")
    assert not _logs(_objects(plan))
    assert "monitoring/loki:3100/TCP" not in _reach(plan, GRAFANA)


@pytest.mark.parametrize("stack", STACKS)
def test_traces_flow_from_the_apps_through_the_collector_to_tempo_and_nowhere_else(
    planned: Any, stack: str
) -> None:
    plan = planned(stack)
    policies = Policies.of(plan.objects)
    apps = _app_pods(plan)
    needed = [
        *((apps[app], OTEL_COLLECTOR, port) for app in APPS for port in (4317, 4318)),
        (OTEL_COLLECTOR, TEMPO, 4317),
        (GRAFANA, TEMPO, 3200),
        (PROMETHEUS, OTEL_COLLECTOR, 8888),
        (PROMETHEUS, TEMPO, 3200),
    ]
    assert _closed(policies, needed) == []
    # The collector exports to Tempo's OTLP port only; it reaches no app, no other
    # monitoring pod, not Tempo's API; nobody outside the apps sends it spans.
    assert _reach(plan, OTEL_COLLECTOR) == {
        "kube-system/kube-dns:53/UDP",
        "kube-system/kube-dns:53/TCP",
        "monitoring/tempo:4317/TCP",
    }
    unwanted = [
        (OUTSIDER, OTEL_COLLECTOR, 4317),
        (ENVOY, OTEL_COLLECTOR, 4318),
        (GRAFANA, OTEL_COLLECTOR, 4317),
        *((apps[app], TEMPO, port) for app in APPS for port in (3200, 4317)),
    ]
    assert _open(policies, unwanted) == []


@pytest.mark.parametrize("stack", STACKS)
def test_envoy_reaches_its_backends_grafana_and_its_xds_server_only(
    planned: Any, stack: str
) -> None:
    plan = planned(stack)
    expected = {
        "kube-system/kube-dns:53/UDP",
        "kube-system/kube-dns:53/TCP",
        *(f"todo/{app}:8000/TCP" for app in PUBLIC_APIS),
        "monitoring/grafana:3000/TCP",
        "envoy-gateway-system/envoy-gateway:18000/TCP",
    }
    if stack not in ("minikube",):
        expected.add("envoy-gateway-system/acme-solver:8089/TCP")
    # Not the database, the API server, the kubelets, the internet or any webhook.
    assert _reach(plan, ENVOY) == expected


@pytest.mark.parametrize("stack", ("staging", "prod"))
def test_neither_grafana_nor_envoy_reaches_the_managed_database(planned: Any, stack: str) -> None:
    plan = planned(stack)
    database = _database(plan)
    assert database is not None
    policies = Policies.of(_objects(plan), _cni(plan))
    for source in (GRAFANA, ENVOY, PROMETHEUS, CERT_MANAGER):
        for port in (25060, 25061):  # the server and its connection pool
            assert not policies.verdict(source, database, port).allowed, (source.name, port)
    # ... while the services still do (the check is not vacuous): every service reaches
    # the pool (DATABASE_URL) and the server (its sidecar's state store; the backend's LISTEN).
    for app, pod in _app_pods(plan).items():
        for port in (25060, 25061):
            assert policies.verdict(pod, database, port).allowed, (app, port)


def test_on_minikube_grafana_cannot_reach_the_in_cluster_database(planned: Any) -> None:
    plan = planned("minikube")
    policies = Policies.of(plan.objects, _cni(plan))
    (postgres,) = [p for p in workload_pods(plan.objects) if p.name == "postgresql"]
    port = postgres.ports[0].number
    assert not policies.verdict(GRAFANA, postgres, port).allowed
    assert not policies.verdict(ENVOY, postgres, port).allowed
    assert policies.verdict(_app_pods(plan)["backend"], postgres, port).allowed


@pytest.mark.parametrize("stack", ("staging", "prod"))
def test_cert_manager_reaches_public_addresses_only_on_http_and_https(
    planned: Any, stack: str
) -> None:
    plan = planned(stack)
    policies = Policies.of(_objects(plan), _cni(plan))
    for port in (80, 443):
        assert policies.verdict(CERT_MANAGER, INTERNET, port).allowed
    assert not policies.verdict(CERT_MANAGER, INTERNET, 22).allowed
    # The VPC (nodes, the managed database) and the metadata service are excepted.
    for address in ("10.110.0.5", "169.254.169.254"):
        inside = External("inside", address, "world")
        assert not policies.verdict(CERT_MANAGER, inside, 443).allowed, address
    # Its webhook and cainjector reach no address outside at all.
    for pod in (CERT_MANAGER_WEBHOOK, CERT_MANAGER_CAINJECTOR):
        assert not policies.verdict(pod, INTERNET, 443).allowed, pod.name


def test_a_missing_path_fails_the_matrix(planned: Any) -> None:
    plan = planned("prod")
    result = _matrix(plan, _without(plan.objects, "NetworkPolicy", "allow-kafka"))
    assert result["extra"] == []
    assert result["missing"] == [f"todo/{app} -> kafka/kafka-broker:9092/TCP" for app in APPS]


def test_on_cilium_the_api_server_is_reached_only_through_the_entity(planned: Any) -> None:
    plan = planned("staging")
    without = _without(plan.objects, "CiliumNetworkPolicy", "sidecars-to-api-server")
    assert _matrix(plan, without)["missing"] == [
        f"todo/{app} -> api-server:443/TCP" for app in APPS
    ]
    # An ipBlock holding the API server's address does not stand in for it on Cilium.
    api_server, _ = _api_server(plan)
    block = synthetic_object(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "api-by-address", "namespace": "todo"},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": f"{api_server.address}/32"}}]}],
            },
        }
    )
    assert _matrix(plan, [*without, block])["missing"] == _matrix(plan, without)["missing"]


def test_on_minikube_the_api_server_is_an_ipblock_on_its_address(planned: Any) -> None:
    plan = planned("minikube")
    assert _cni(plan) == "generic"
    api_server = LocalCluster().api_server_cidr
    elsewhere = "198.51.100.7/32"  # TEST-NET-2: not the API server
    moved = copy.deepcopy(plan.objects)
    blocks = [
        peer["ipBlock"]
        for obj in moved
        if obj.kind == "NetworkPolicy"
        for rule in obj.body["spec"].get("egress") or []
        for peer in rule.get("to") or []
        if peer.get("ipBlock", {}).get("cidr") == api_server
    ]
    assert blocks
    for block in blocks:
        block["cidr"] = elsewhere
    missing = _matrix(plan, moved)["missing"]
    assert "todo/backend -> api-server:8443/TCP" in missing
    assert "dapr-system/dapr-operator -> api-server:8443/TCP" in missing
