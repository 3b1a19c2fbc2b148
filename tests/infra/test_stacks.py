"""Each stack's whole program under mocks: graph order, pinning, hardening and exports."""

from __future__ import annotations

from typing import Any

import pytest

from apps.contracts.services import APPS
from infra.policy.rules import SECRET_MASK
from infra.tooling.plan.footprint import Footprint, compute_footprint
from infra.tooling.plan.objects import kubernetes_objects
from infra.tooling.plan.quantities import GIB, MIB
from infra.tooling.plan.runner import PlanRun
from tests.infra.components.plans import (
    EPHEMERAL,
    by_type,
    depends_on,
    helm_installs,
    one,
    plan,
    pod_spec,
)

WORKLOADS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:batch/v1:Job",
)
# Which release (or chart) installs the CRDs of which API group. On DOKS the Gateway API
# CRDs are the cluster's own; our Gateway API objects still wait for the Envoy Gateway
# CRD chart, which the GatewayClass's EnvoyProxy needs anyway.
CRD_OWNERS = {
    "kafka.strimzi.io": "kafka-operator",
    "dapr.io": "dapr-control-plane",
    "monitoring.coreos.com": "observability-stack",
    "gateway.networking.k8s.io": "edge-gateway-crds",
    "gateway.envoyproxy.io": "edge-gateway-crds",
    "cert-manager.io": "edge-cert-manager",
}
ALL = ["minikube", "staging", "prod", EPHEMERAL]
RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"


def _workloads(run: PlanRun) -> list[Any]:
    return [res for res in run.resources.values() if res.type in WORKLOADS]


@pytest.mark.parametrize("stack", ["minikube", "staging", "prod"])
def test_custom_resources_follow_the_release_that_installs_their_crd(stack: str) -> None:
    run = plan(stack)
    checked: dict[str, int] = {}
    for res in run.resources.values():
        group = res.type.split(":")[1].split("/")[0]
        owner = CRD_OWNERS.get(group)
        if owner is not None:
            assert one(run, owner).urn in res.dependencies, res.name
            checked[group] = checked.get(group, 0) + 1
    # 2 PodMonitors, the PrometheusRule and 3 ServiceMonitors; the EnvoyProxy and the
    # API's rate limit (a BackendTrafficPolicy), + PROXY protocol's ClientTrafficPolicy on
    # cloud; the GatewayClass, Gateway and 2 routes (+ the HTTPS redirect and the TLS
    # objects on cloud).
    assert checked["monitoring.coreos.com"] == 6
    assert checked["gateway.envoyproxy.io"] == (2 if stack == "minikube" else 3)
    assert checked["gateway.networking.k8s.io"] == (4 if stack == "minikube" else 5)
    assert checked.get("cert-manager.io", 0) == (0 if stack == "minikube" else 2)
    assert checked["dapr.io"] == 7 and checked["kafka.strimzi.io"] >= 7


@pytest.mark.parametrize("stack", ["minikube", "staging", "prod"])
def test_releases_are_pinned_and_independent(stack: str) -> None:
    run = plan(stack)
    releases = {r.name: r for r in helm_installs(run) if r.name != "edge-gateway-crds"}
    expected = {
        "kafka-operator": "1.2.0",
        "dapr-control-plane": "1.18.3",
        "observability-stack": "88.5.3",
        "edge-envoy-gateway": "v1.9.0",
        "observability-tracing-collector": "0.170.0",
        "observability-tracing-tempo": "2.2.4",
    }
    if stack != "minikube":
        expected["edge-cert-manager"] = "v1.21.1"
        # Central logs: on in staging and prod (todo:observability.logs), off on minikube.
        expected["observability-logs-loki"] = "18.11.0"
        expected["observability-logs-alloy"] = "1.11.1"
    assert {n: r.raw_inputs["version"] for n, r in releases.items()} == expected
    assert one(run, "edge-gateway-crds").raw_inputs["version"] == "v1.9.0"
    # The tracing charts create ServiceMonitors: they wait for kube-prometheus-stack's
    # release (its CRDs), and for nothing else.
    stack_release = releases["observability-stack"].urn
    monitored = {
        "observability-tracing-collector",
        "observability-tracing-tempo",
        "observability-logs-loki",
        "observability-logs-alloy",
    } & set(releases)
    for name in monitored:
        assert stack_release in releases[name].dependencies
    # Alloy's first lines go to a Loki that is there.
    if "observability-logs-alloy" in releases:
        loki = releases["observability-logs-loki"].urn
        assert loki in releases["observability-logs-alloy"].dependencies
    # No other release waits for another, nor for the database: they install in parallel.
    for release in releases.values():
        others = {r.urn for r in releases.values() if r is not release}
        if release.name in monitored:
            others.discard(stack_release)
        if release.name == "observability-logs-alloy":
            others.discard(releases["observability-logs-loki"].urn)
        assert not others & set(release.dependencies)
        assert not [d for d in release.dependencies if "database" in d]
    # Charts whose CRDs live under crds/ (Helm never upgrades those) are applied as v4
    # Charts, which render and apply crds/ on every update; kube-prometheus-stack has its
    # own CRD upgrade job instead.
    v4 = {r.name for r in by_type(run, "kubernetes:helm.sh/v4:Chart")}
    assert {"kafka-operator", "dapr-control-plane"} <= v4
    monitoring = releases["observability-stack"].raw_inputs["values"]["crds"]["upgradeJob"]
    assert monitoring["enabled"] is True and monitoring["forceConflicts"] is True
    tags = {name: image["tag"] for name, image in monitoring["image"].items()}
    assert tags == {"busybox": "1.37.0", "kubectl": "v1.34.2"}  # pinned, not the chart's
    assert monitoring["resources"]["limits"]


@pytest.mark.parametrize("stack", ["minikube", "staging", "prod"])
def test_service_monitors_wait_for_the_monitoring_release(stack: str) -> None:
    run = plan(stack)
    release = one(run, "observability-stack")
    assert release.raw_inputs["name"] == "kube-prometheus-stack"
    monitors = by_type(run, SERVICE_MONITOR)
    assert {m.raw_inputs["metadata"]["name"] for m in monitors} == {
        "backend",
        "notification",
        "recurring",
    }
    assert all(release.urn in m.dependencies for m in monitors)
    # The apps do not wait for monitoring: only their monitors do.
    for app in ("backend", "notification", "recurring"):
        assert not depends_on(run, one(run, f"{app}-deployment"), release)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_cloud_stacks_serve_https_through_one_gateway_and_one_load_balancer(stack: str) -> None:
    run = plan(stack)
    (gateway,) = by_type(run, GATEWAY)
    assert gateway.raw_inputs["spec"]["gatewayClassName"] == "envoy"
    listeners = {lst["name"]: lst for lst in gateway.raw_inputs["spec"]["listeners"]}
    assert listeners["https"]["protocol"] == "HTTPS" and listeners["https"]["port"] == 443
    assert listeners["https"]["tls"]["certificateRefs"] == [
        {"kind": "Secret", "name": "todo-edge-tls"}
    ]
    (issuer,) = by_type(run, "kubernetes:cert-manager.io/v1:ClusterIssuer")
    assert issuer.raw_inputs["spec"]["acme"]["server"].startswith("https://acme-v02.")
    (certificate,) = by_type(run, "kubernetes:cert-manager.io/v1:Certificate")
    domain = "example.com" if stack == "prod" else "staging.example.com"
    assert certificate.raw_inputs["spec"]["dnsNames"] == [f"api.{domain}", f"grafana.{domain}"]
    # Envoy Gateway makes the one load balancer; the program creates no LoadBalancer Service.
    services = by_type(run, "kubernetes:core/v1:Service")
    assert not [s for s in services if s.raw_inputs["spec"].get("type") == "LoadBalancer"]
    (proxy,) = by_type(run, "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy")
    service = proxy.raw_inputs["spec"]["provider"]["kubernetes"]["envoyService"]
    annotations = service["annotations"]
    assert annotations["service.beta.kubernetes.io/do-loadbalancer-name"] == f"todo-{stack}-edge"
    # DOKS ships the Gateway API CRDs: the chart installs Envoy Gateway's only.
    crds = one(run, "edge-gateway-crds").raw_inputs["values"]["crds"]
    assert crds["gatewayAPI"]["enabled"] is False
    replicas = proxy.raw_inputs["spec"]["provider"]["kubernetes"]["envoyDeployment"]["replicas"]
    assert replicas == (2 if stack == "prod" else 1)
    assert run.outputs["apiUrl"] == f"https://api.{domain}/api/v1"
    assert run.outputs["grafanaUrl"] == f"https://grafana.{domain}"


def test_minikube_serves_plain_http_and_creates_no_cloud_resource() -> None:
    run = plan("minikube")
    assert not [r for r in run.resources.values() if r.type.startswith("digitalocean:")]
    assert not [r for r in run.resources.values() if "cert-manager" in r.type]
    assert not [r for r in run.resources.values() if r.name == "edge-cert-manager"]
    (gateway,) = by_type(run, GATEWAY)
    assert [lst["protocol"] for lst in gateway.raw_inputs["spec"]["listeners"]] == ["HTTP"]
    crds = one(run, "edge-gateway-crds").raw_inputs["values"]["crds"]
    assert crds["gatewayAPI"] == {"enabled": True, "channel": "standard"}
    values = one(run, "observability-stack").raw_inputs["values"]
    assert values["alertmanager"]["enabled"] is False
    assert "storageSpec" not in values["prometheus"]["prometheusSpec"]
    assert run.outputs["apiUrl"] == "http://api.todo.localhost/api/v1"
    assert run.outputs["grafanaUrl"] == "http://grafana.todo.localhost"


def test_the_public_api_host_routes_each_prefix_to_its_service() -> None:
    route = one(plan("prod"), "edge-api-route").raw_inputs["spec"]
    backends = {
        rule["matches"][0]["path"]["value"]: rule["backendRefs"][0]["name"]
        for rule in route["rules"]
    }
    assert backends == {prefix: app.app_id for app in APPS for prefix in app.public_api_prefixes}


def test_ephemeral_stacks_are_apps_only() -> None:
    run = plan(EPHEMERAL)
    assert not by_type(run, RELEASE)
    assert not by_type(run, GATEWAY)
    assert not [r for r in run.resources.values() if r.type.startswith("todo:observability")]
    assert not [r for r in run.resources.values() if r.type.startswith("todo:edge")]
    # Scraped by the base stack's Prometheus, whose release installed the CRD.
    assert len(by_type(run, SERVICE_MONITOR)) == 3
    assert "apiUrl" not in run.outputs


@pytest.mark.parametrize("stack", ALL)
def test_every_workload_is_hardened(stack: str) -> None:
    run = plan(stack)
    workloads = _workloads(run)
    assert len(workloads) >= 4
    for res in workloads:
        spec = pod_spec(res)
        assert spec["automountServiceAccountToken"] is False, res.name
        assert spec["securityContext"]["runAsNonRoot"] is True, res.name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, res.name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, res.name
            assert context["allowPrivilegeEscalation"] is False, res.name
            assert context["capabilities"] == {"drop": ["ALL"]}, res.name
            assert set(container["resources"]) == {"requests", "limits"}, res.name
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


@pytest.mark.parametrize("stack", ALL)
def test_every_resource_is_parented_by_a_component(stack: str) -> None:
    run = plan(stack)
    top_level = {r.type for r in run.resources.values() if r.parent == run.stack_urn}
    assert all(t.startswith("todo:") for t in top_level), top_level


def test_exports_per_stack() -> None:
    minikube = plan("minikube").outputs
    assert minikube["backendUrl"] == "http://backend.todo.svc.cluster.local:8000"
    assert "kubeconfig" not in minikube and "databaseAdminUrl" not in minikube
    staging = plan("staging").outputs
    assert staging["kubeconfig"] == "[secret]" and staging["databaseAdminUrl"] == "[secret]"
    assert {"clusterName", "clusterVersion", "databaseClusterId", "vpcIpRange"} <= set(staging)
    # An HA cluster has no single API-server address (issue 9): nothing exports one.
    assert "apiServerCidr" not in staging
    assert staging["clusterVersion"] == "1.34.2-do.1"
    dev = plan(EPHEMERAL).outputs
    assert dev["appsNamespace"] == "todo-dev-alice" and dev["owner"] == "alice"
    assert dev["expiresAt"] == "2026-01-04T18:00:00+00:00"


def _footprint(stack: str) -> Footprint:
    run = plan(stack)
    return compute_footprint(kubernetes_objects(run.resources.values()), run.resources.values())


def test_minikube_footprint_fits_a_4_cpu_8_gib_node() -> None:
    footprint = _footprint("minikube")
    # Every pod counted: our workloads, the operators' pods and every chart's pods.
    assert footprint.notes == [] and footprint.unrequested == []
    sources = {group.source for group in footprint.steady}
    assert "helm kube-prometheus-stack: prometheus" in sources
    assert "Gateway envoy-gateway-system/todo (Envoy proxy)" in sources
    assert not [s for s in sources if "placement" in s or "scheduler" in s]  # switched off
    # Requests fit `minikube start --cpus 4 --memory 8g` next to the control plane, with a
    # quarter of the VM to spare for what requests do not cover (minikube's own add-ons,
    # the page cache, the kubelet).
    assert footprint.fits()
    assert footprint.headroom_cpu_m >= 1000 and footprint.headroom_memory >= 2 * GIB


def test_prod_requests_fit_the_node_pool_minimum_with_room_for_a_rolling_update() -> None:
    footprint = _footprint("prod")
    assert footprint.notes == [] and footprint.unrequested == []
    capacity = footprint.capacity
    assert capacity.nodes == 6 and capacity.label.startswith("6 × s-2vcpu-4gb")
    # Every pod and a rolling update's extra pod fit the allocatable memory, less DOKS's
    # own pods, in total and node by node (brokers and controllers one per node).
    assert footprint.fits() and footprint.unplaced() == []
    assert footprint.headroom_memory >= footprint.surge.memory + 512 * MIB
    # One node down, the stateful pods still fit on the other four, one replica a node;
    # what does not (the memory is short) waits for the autoscaler's replacement node.
    stateful = footprint.stateful_requests()
    assert stateful.memory <= (capacity.nodes - 1) * capacity.node_memory
    stateful_only = Footprint(
        groups=[g for g in footprint.groups if g.stateful or g.per_node], capacity=capacity
    )
    assert stateful_only.unplaced(capacity.nodes - 1) == []


@pytest.mark.parametrize("stack", ALL)
def test_the_jwt_key_is_exported_only_as_a_secret(stack: str) -> None:
    # The deploy's smoke test signs with it; it must never be readable in plain.
    run = plan(stack)
    assert run.outputs["authJwtKey"] == SECRET_MASK
    (auth,) = [r for r in by_type(run, "kubernetes:core/v1:Secret") if r.name == "app-secrets-auth"]
    assert auth.inputs["stringData"] == SECRET_MASK
