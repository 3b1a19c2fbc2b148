"""The edge component under the offline harness: Envoy Gateway, the one Gateway, its
routes, cert-manager and the Let's Encrypt issuer, per stack shape."""

from __future__ import annotations

from typing import Any

import pytest

from infra.components import edge
from infra.tooling.plan.runner import PlanRun
from tests.infra.components.obs_edge_checks import (
    by_name,
    chart_defaults,
    kubernetes_objects,
    of_kind,
    run_component,
    unknown_value_keys,
    validate_builtin,
    validate_custom_resource,
)
from tests.infra.components.plans import depends_on, one, plan
from tests.infra.validation import validate_custom

PROGRAM = """
import json

import pulumi
import pulumi_kubernetes as k8s

from infra.components.cluster import ApiServerAccess
from infra.components.edge import ApiPath, Edge, EdgeArgs

args = json.loads(pulumi.Config().require("args"))
args["api_server"] = ApiServerAccess(**args["api_server"])
args["extra_api_paths"] = [ApiPath(**path) for path in args.get("extra_api_paths", [])]
provider = k8s.Provider("k8s", context="minikube")
component = Edge("edge", EdgeArgs(**args), opts=pulumi.ResourceOptions(providers=[provider]))
pulumi.export("api_url", component.api_url)
pulumi.export("grafana_url", component.grafana_url)
"""

COMMON: dict[str, Any] = {
    "namespace": "envoy-gateway-system",
    "backend_service": "backend",
    "backend_namespace": "todo",
    "backend_port": 8000,
    "grafana_service": "kube-prometheus-stack-grafana",
    "grafana_namespace": "monitoring",
    "grafana_port": 80,
    "grafana_target_port": 3000,
}
PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}
CLOUD: dict[str, Any] = {
    **COMMON,
    "api_hostname": "api.todo.example.com",
    "grafana_hostname": "grafana.todo.example.com",
    "install_gateway_api_crds": False,
    "tls": True,
    "acme_email": "ops@example.com",
    "load_balancer_name": "todo-prod-edge",
    "proxy_protocol": True,
    "envoy_replicas": 2,
    "monitoring_pod_labels": PROMETHEUS,
    "grafana_pod_labels": {"app.kubernetes.io/name": "grafana"},
    "api_server": {"cni": "cilium"},
}
MINIKUBE: dict[str, Any] = {
    **COMMON,
    "api_hostname": "api.todo.localhost",
    "grafana_hostname": "grafana.todo.localhost",
    "install_gateway_api_crds": True,
    "tls": False,
    "service_type": "NodePort",
    "api_server": {"cni": "generic", "cidr": "192.168.49.2/32", "port": 8443},
}
GATEWAY_API = "gateway.networking.k8s.io/v1"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> PlanRun:
    return run_component(tmp_path_factory.mktemp("edge"), PROGRAM, {"args": CLOUD})


@pytest.fixture(scope="module")
def minikube(tmp_path_factory: pytest.TempPathFactory) -> PlanRun:
    return run_component(tmp_path_factory.mktemp("edge"), PROGRAM, {"args": MINIKUBE})


def _spec(run: PlanRun, name: str) -> Any:
    return by_name(run)[name].raw_inputs["spec"]


def test_charts_are_pinned_and_use_the_callers_provider(cloud: PlanRun) -> None:
    names = by_name(cloud)
    crds, controller, cert_manager = (
        names["edge-gateway-crds"],
        names["edge-envoy-gateway"],
        names["edge-cert-manager"],
    )
    assert crds.type == "kubernetes:helm.sh/v4:Chart"
    assert crds.inputs["chart"] == "oci://docker.io/envoyproxy/gateway-crds-helm"
    assert controller.inputs["chart"] == "oci://docker.io/envoyproxy/gateway-helm"
    assert crds.inputs["version"] == controller.inputs["version"] == "v1.9.0"
    assert cert_manager.inputs["chart"] == "cert-manager"
    assert cert_manager.inputs["version"] == "v1.21.1"
    assert cert_manager.inputs["repositoryOpts"] == {"repo": "https://charts.jetstack.io"}
    component, provider = names["edge"], names["k8s"].urn
    assert component.type == "todo:edge:Edge"
    for res in cloud.resources.values():
        if res.name in ("k8s", "edge"):
            continue
        assert res.parent == component.urn, res.name
        if res.custom:
            assert res.provider_urn == provider, res.name


def test_doks_gateway_api_crds_are_left_alone(cloud: PlanRun) -> None:
    names = by_name(cloud)
    crd_values = names["edge-gateway-crds"].raw_inputs["values"]["crds"]
    assert crd_values["envoyGateway"] == {"enabled": True}
    assert crd_values["gatewayAPI"]["enabled"] is False
    # The controller chart's crds subchart would bring the experimental channel.
    assert names["edge-envoy-gateway"].raw_inputs["values"]["crds"] == {"enabled": False}


def test_minikube_gets_standard_channel_crds(minikube: PlanRun) -> None:
    crd_values = by_name(minikube)["edge-gateway-crds"].raw_inputs["values"]["crds"]
    assert crd_values["gatewayAPI"] == {"enabled": True, "channel": "standard"}


def test_one_gateway_of_our_class_backed_by_the_envoy_proxy_config(cloud: PlanRun) -> None:
    (gateway_class,) = of_kind(cloud, "GatewayClass")
    (gateway,) = of_kind(cloud, "Gateway")
    (proxy,) = of_kind(cloud, "EnvoyProxy")
    assert gateway_class.raw_inputs["metadata"]["name"] == "envoy"
    spec = gateway_class.raw_inputs["spec"]
    assert spec["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    assert spec["parametersRef"] == {
        "group": "gateway.envoyproxy.io",
        "kind": "EnvoyProxy",
        "name": proxy.raw_inputs["metadata"]["name"],
        "namespace": "envoy-gateway-system",
    }
    assert gateway.raw_inputs["spec"]["gatewayClassName"] == "envoy"
    assert proxy.urn in gateway_class.dependencies
    assert gateway_class.urn in gateway.dependencies


def test_envoy_service_is_the_one_do_load_balancer(cloud: PlanRun) -> None:
    (proxy,) = of_kind(cloud, "EnvoyProxy")
    kubernetes = proxy.raw_inputs["spec"]["provider"]["kubernetes"]
    service = kubernetes["envoyService"]
    assert service["type"] == "LoadBalancer"
    assert service["externalTrafficPolicy"] == "Local"
    annotations = service["annotations"]
    assert annotations["service.beta.kubernetes.io/do-loadbalancer-name"] == "todo-prod-edge"
    assert all(key.startswith("service.beta.kubernetes.io/do-") for key in annotations)
    assert all(isinstance(value, str) for value in annotations.values())
    deployment = kubernetes["envoyDeployment"]
    assert deployment["replicas"] == 2
    container = deployment["container"]
    assert container["resources"]["limits"]["memory"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert deployment["pod"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # We create no Service ourselves, let alone one of type LoadBalancer.
    assert of_kind(cloud, "Service") == []


def test_minikube_uses_a_node_port_and_no_load_balancer_settings(minikube: PlanRun) -> None:
    (proxy,) = of_kind(minikube, "EnvoyProxy")
    kubernetes = proxy.raw_inputs["spec"]["provider"]["kubernetes"]
    assert kubernetes["envoyService"] == {"type": "NodePort", "externalTrafficPolicy": "Local"}
    # One replica: nothing to spread, and a budget of one would block every node drain.
    assert "envoyPDB" not in kubernetes
    assert "topologySpreadConstraints" not in kubernetes["envoyDeployment"]["pod"]


def test_a_load_balancer_without_a_name_gets_no_digitalocean_settings(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # minikube with `minikube tunnel`: a LoadBalancer Service, but no DigitalOcean one.
    config = {**MINIKUBE, "service_type": "LoadBalancer"}
    run = run_component(tmp_path_factory.mktemp("edge"), PROGRAM, {"args": config})
    (proxy,) = of_kind(run, "EnvoyProxy")
    service = proxy.raw_inputs["spec"]["provider"]["kubernetes"]["envoyService"]
    assert service == {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}


def test_replicas_spread_over_nodes_and_keep_a_budget(cloud: PlanRun) -> None:
    (proxy,) = of_kind(cloud, "EnvoyProxy")
    kubernetes = proxy.raw_inputs["spec"]["provider"]["kubernetes"]
    assert kubernetes["envoyPDB"] == {"minAvailable": 1}
    (spread,) = kubernetes["envoyDeployment"]["pod"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"] == {"matchLabels": edge.ENVOY_PROXY_POD_LABELS}


def test_other_services_public_apis_share_the_api_host(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    paths = [
        {"prefix": "/api/v1/notifications", "service": "notification", "port": 8000},
        {"prefix": "/api/v1/recurrence", "service": "recurring", "port": 8000},
    ]
    run = run_component(
        tmp_path_factory.mktemp("edge"), PROGRAM, {"args": {**CLOUD, "extra_api_paths": paths}}
    )
    route = by_name(run)["edge-api-route"].raw_inputs
    rules = {
        rule["matches"][0]["path"]["value"]: rule["backendRefs"] for rule in route["spec"]["rules"]
    }
    assert rules == {
        "/api": [{"name": "backend", "port": 8000}],
        "/api/v1/notifications": [{"name": "notification", "port": 8000}],
        "/api/v1/recurrence": [{"name": "recurring", "port": 8000}],
    }
    assert route["metadata"]["namespace"] == "todo"
    validate_custom_resource(by_name(run)["edge-api-route"])
    # Envoy may reach each backend port once, however many routes share it.
    (backends, *_) = _egress(run)[("envoy-gateway-system", "envoy-egress")]["egress"]
    assert backends["ports"] == _tcp(8000)
    bad = {**CLOUD, "extra_api_paths": [{"prefix": "/internal", "service": "x", "port": 1}]}
    with pytest.raises(Exception, match="must lie under /api/"):
        run_component(tmp_path_factory.mktemp("edge"), PROGRAM, {"args": bad})


def test_https_listener_uses_the_certificate_cert_manager_fills(cloud: PlanRun) -> None:
    listeners = {lst["name"]: lst for lst in _spec(cloud, "edge-gateway")["listeners"]}
    assert set(listeners) == {"http", "https"}
    https = listeners["https"]
    assert https["port"] == 443 and https["protocol"] == "HTTPS"
    assert https["tls"] == {
        "mode": "Terminate",
        "certificateRefs": [{"kind": "Secret", "name": "todo-edge-tls"}],
    }
    assert https["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]["values"] == [
        "monitoring",
        "todo",
    ]
    # Port 80 only carries the redirect and the ACME solver, both in the Gateway's namespace.
    http = listeners["http"]["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]
    assert http["values"] == ["envoy-gateway-system"]
    certificate = _spec(cloud, "edge-certificate")
    assert certificate["secretName"] == "todo-edge-tls"
    assert certificate["dnsNames"] == ["api.todo.example.com", "grafana.todo.example.com"]
    assert certificate["issuerRef"] == {
        "group": "cert-manager.io",
        "kind": "ClusterIssuer",
        "name": "letsencrypt",
    }


def test_issuer_solves_http01_through_the_gateway(cloud: PlanRun) -> None:
    acme = _spec(cloud, "edge-issuer")["acme"]
    assert acme["server"] == edge.LETS_ENCRYPT_PRODUCTION
    assert acme["email"] == "ops@example.com"
    (solver,) = acme["solvers"]
    (parent,) = solver["http01"]["gatewayHTTPRoute"]["parentRefs"]
    assert parent == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": "todo",
        "namespace": "envoy-gateway-system",
        "sectionName": "http",
    }
    values = by_name(cloud)["edge-cert-manager"].raw_inputs["values"]
    assert values["config"]["gatewayAPI"] == {"enabled": True}
    assert values["crds"] == {"enabled": True}


def test_http_redirects_to_https_and_routes_expose_only_the_public_api(cloud: PlanRun) -> None:
    redirect = _spec(cloud, "edge-https-redirect")
    assert redirect["parentRefs"][0]["sectionName"] == "http"
    (rule,) = redirect["rules"]
    assert rule["filters"] == [
        {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
    ]
    # The ACME solver's Exact path match outranks this prefix match (Gateway API precedence).
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]

    api = by_name(cloud)["edge-api-route"].raw_inputs
    assert api["metadata"]["namespace"] == "todo"
    assert api["spec"]["hostnames"] == ["api.todo.example.com"]
    assert api["spec"]["parentRefs"][0]["sectionName"] == "https"
    (api_rule,) = api["spec"]["rules"]
    assert api_rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}]
    assert api_rule["backendRefs"] == [{"name": "backend", "port": 8000}]

    grafana = by_name(cloud)["edge-grafana-route"].raw_inputs
    assert grafana["metadata"]["namespace"] == "monitoring"
    assert grafana["spec"]["rules"][0]["backendRefs"] == [
        {"name": "kube-prometheus-stack-grafana", "port": 80}
    ]
    # Every route references a backend in its own namespace: no ReferenceGrant needed.
    assert of_kind(cloud, "ReferenceGrant") == []
    assert cloud.outputs == {
        "api_url": "https://api.todo.example.com/api/v1",
        "grafana_url": "https://grafana.todo.example.com",
    }


def test_minikube_serves_plain_http_without_cert_manager(minikube: PlanRun) -> None:
    names = by_name(minikube)
    assert "edge-cert-manager" not in names
    assert of_kind(minikube, "ClusterIssuer") == of_kind(minikube, "Certificate") == []
    (listener,) = _spec(minikube, "edge-gateway")["listeners"]
    assert listener["name"] == "http" and "tls" not in listener
    assert sorted(
        listener["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]["values"]
    ) == [
        "envoy-gateway-system",
        "monitoring",
        "todo",
    ]
    for route in ("edge-api-route", "edge-grafana-route"):
        assert _spec(minikube, route)["parentRefs"][0]["sectionName"] == "http"
    assert "edge-https-redirect" not in names
    assert minikube.outputs["api_url"] == "http://api.todo.localhost/api/v1"


def test_custom_resources_wait_for_their_crds_and_nothing_more(cloud: PlanRun) -> None:
    names = by_name(cloud)
    crds, controller = names["edge-gateway-crds"].urn, names["edge-envoy-gateway"]
    cert_manager = names["edge-cert-manager"].urn
    assert crds in controller.dependencies
    kinds = ("EnvoyProxy", "GatewayClass", "Gateway", "HTTPRoute", "ClientTrafficPolicy")
    for kind in kinds:
        for res in of_kind(cloud, kind):
            assert crds in res.dependencies, res.name
            # The controller reconciles them whenever it comes up: no need to wait for it.
            assert controller.urn not in res.dependencies, res.name
    for kind in ("ClusterIssuer", "Certificate"):
        (res,) = of_kind(cloud, kind)
        assert cert_manager in res.dependencies, res.name
    # DOKS ships the Gateway API CRDs: cert-manager need not wait for our CRD chart.
    assert crds not in names["edge-cert-manager"].dependencies
    assert names["edge-issuer"].urn in names["edge-certificate"].dependencies


def test_cert_manager_waits_for_gateway_api_crds_we_install(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    config = {**CLOUD, "install_gateway_api_crds": True}
    run = run_component(tmp_path_factory.mktemp("edge"), PROGRAM, {"args": config})
    names = by_name(run)
    assert names["edge-gateway-crds"].urn in names["edge-cert-manager"].dependencies


def test_tls_needs_an_acme_email(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = {**CLOUD, "acme_email": ""}
    with pytest.raises(Exception, match="acme_email is required"):
        run_component(tmp_path_factory.mktemp("edge"), PROGRAM, {"args": config})


def test_network_policies_admit_clients_to_envoy_only_on_listener_ports(cloud: PlanRun) -> None:
    policies = {
        (p.raw_inputs["metadata"]["namespace"], p.raw_inputs["metadata"]["name"]): p.raw_inputs
        for p in of_kind(cloud, "NetworkPolicy")
    }
    envoy = policies[("envoy-gateway-system", "allow-envoy-listeners")]["spec"]
    assert envoy["podSelector"]["matchLabels"] == edge.ENVOY_PROXY_POD_LABELS
    assert envoy["ingress"][0] == {
        "ports": [{"protocol": "TCP", "port": 10080}, {"protocol": "TCP", "port": 10443}]
    }
    # Metrics and the namespaces' other ports: the Prometheus pods only, not all of
    # monitoring (Grafana there is reachable from the internet).
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": PROMETHEUS},
    }
    assert envoy["ingress"][1]["from"] == [prometheus]
    for namespace in ("envoy-gateway-system", "cert-manager"):
        spec = policies[(namespace, "allow-namespace-and-monitoring")]["spec"]
        assert spec["ingress"][1]["from"] == [prometheus]
        # Egress: DNS only for every pod; each role's own policy adds the rest.
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        (dns,) = spec["egress"]
        assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert ("cert-manager", "allow-webhook") in policies
    assert ("cert-manager", "allow-namespace-and-monitoring") in policies


def _egress(run: PlanRun) -> dict[tuple[str, str], Any]:
    return {
        (p.raw_inputs["metadata"]["namespace"], p.raw_inputs["metadata"]["name"]): p.raw_inputs[
            "spec"
        ]
        for p in of_kind(run, "NetworkPolicy")
        if p.raw_inputs["metadata"]["name"].endswith("-egress")
    }


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def test_envoy_reaches_its_backends_grafana_xds_and_the_acme_solver(
    cloud: PlanRun, minikube: PlanRun
) -> None:
    envoy = _egress(cloud)[("envoy-gateway-system", "envoy-egress")]
    assert envoy["podSelector"] == {"matchLabels": edge.ENVOY_PROXY_POD_LABELS}
    backends, grafana, xds, solver = envoy["egress"]
    assert backends == {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "todo"}}}],
        "ports": _tcp(8000),
    }
    # Grafana's container port, not its Service's: policies see the pod's port.
    assert grafana["ports"] == _tcp(3000)
    assert grafana["to"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
    assert xds == {
        "to": [{"podSelector": {"matchLabels": {"control-plane": "envoy-gateway"}}}],
        "ports": _tcp(18000),
    }
    assert solver["ports"] == _tcp(8089)
    # Without TLS there is no ACME solver to reach, and Envoy never gets the API server.
    local = _egress(minikube)[("envoy-gateway-system", "envoy-egress")]["egress"]
    assert len(local) == 3
    assert "ipBlock" not in str(local)


def test_cert_manager_reaches_public_http_https_and_envoy_for_its_self_check(
    cloud: PlanRun, tmp_path_factory: pytest.TempPathFactory
) -> None:
    controller = _egress(cloud)[("cert-manager", "cert-manager-egress")]
    assert controller["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "controller"
    # With PROXY protocol the self-check goes through the load balancer (the Service shows
    # a hostname, so no node short-circuits it to Envoy): the public rule is all it needs.
    (public,) = controller["egress"]  # the API server: a CiliumNetworkPolicy (cilium)
    assert public == {
        "to": [
            {
                "ipBlock": {
                    "cidr": "0.0.0.0/0",
                    "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"],
                }
            }
        ],
        "ports": _tcp(80, 443),
    }
    # Without it, the node's service proxy sends the self-check straight to Envoy's pod.
    config = {**CLOUD, "proxy_protocol": False}
    run = run_component(tmp_path_factory.mktemp("edge"), PROGRAM, {"args": config})
    public, self_check = _egress(run)[("cert-manager", "cert-manager-egress")]["egress"]
    assert self_check["ports"] == _tcp(10080)
    assert self_check["to"][0]["podSelector"] == {"matchLabels": edge.ENVOY_PROXY_POD_LABELS}


def test_controllers_reach_the_api_server_as_the_cni_needs(
    cloud: PlanRun, minikube: PlanRun
) -> None:
    cilium = {
        (p.raw_inputs["metadata"]["namespace"], p.raw_inputs["metadata"]["name"]): p.raw_inputs[
            "spec"
        ]
        for p in of_kind(cloud, "CiliumNetworkPolicy")
    }
    assert set(cilium) == {
        ("envoy-gateway-system", "envoy-gateway-to-api-server"),
        ("envoy-gateway-system", "certgen-to-api-server"),
        ("cert-manager", "cert-manager-to-api-server"),
        ("cert-manager", "cert-manager-components-to-api-server"),
    }
    components = cilium[("cert-manager", "cert-manager-components-to-api-server")]
    assert components["endpointSelector"]["matchExpressions"] == [
        {
            "key": "app.kubernetes.io/component",
            "operator": "In",
            "values": ["webhook", "cainjector", "startupapicheck"],
        }
    ]
    for spec in cilium.values():
        assert spec["egress"][0]["toEntities"] == ["kube-apiserver"]
    for res in of_kind(cloud, "CiliumNetworkPolicy"):
        assert validate_custom(res.raw_inputs) == [], res.name
    # A generic CNI: the controller's and certgen's NetworkPolicies hold the address.
    local = _egress(minikube)
    api_server = {"to": [{"ipBlock": {"cidr": "192.168.49.2/32"}}], "ports": _tcp(8443)}
    for role, labels in (
        ("envoy-gateway", {"control-plane": "envoy-gateway"}),
        ("certgen", {"app": "certgen"}),
    ):
        spec = local[("envoy-gateway-system", f"{role}-egress")]
        assert spec == {
            "podSelector": {"matchLabels": labels},
            "policyTypes": ["Egress"],
            "egress": [api_server],
        }
    assert of_kind(minikube, "CiliumNetworkPolicy") == []


def test_values_use_only_keys_the_charts_have(cloud: PlanRun) -> None:
    names = by_name(cloud)
    gateway_defaults = chart_defaults(edge.GATEWAY_CHART, edge.ENVOY_GATEWAY_VERSION)
    assert (
        unknown_value_keys(names["edge-envoy-gateway"].raw_inputs["values"], gateway_defaults) == []
    )
    cert_defaults = chart_defaults(edge.CERT_MANAGER_CHART, edge.CERT_MANAGER_VERSION)
    assert unknown_value_keys(names["edge-cert-manager"].raw_inputs["values"], cert_defaults) == []


def test_objects_validate_against_crd_schemas_and_kubernetes(
    cloud: PlanRun, minikube: PlanRun
) -> None:
    checked = 0
    for run in (cloud, minikube):
        for res in kubernetes_objects(run):
            api_version = res.raw_inputs["apiVersion"]
            if api_version.startswith(("gateway.networking.k8s.io/", "cert-manager.io/")):
                validate_custom_resource(res)
                checked += 1
            elif api_version in ("gateway.envoyproxy.io/v1alpha1", "cilium.io/v2"):
                # Strict: the vendored CRD's schema (the Envoy Gateway policies), or, with no
                # EnvoyProxy or CiliumNetworkPolicy CRD in the reference data, the stand-in
                # checks (tests/infra/validation.py).
                assert validate_custom(res.raw_inputs) == [], res.name
                checked += 1
            else:
                validate_builtin(res)
                checked += 1
    assert checked >= 15


def test_platform_namespaces_are_restricted_and_come_first(
    cloud: PlanRun, minikube: PlanRun
) -> None:
    names = by_name(cloud)
    for role, namespace in (("gateway", "envoy-gateway-system"), ("cert-manager", "cert-manager")):
        created = names[f"edge-{role}-namespace"]
        assert created.raw_inputs["metadata"]["name"] == namespace
        labels = created.raw_inputs["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        for res in cloud.resources.values():
            if res.custom and res.raw_inputs.get("metadata", {}).get("namespace") == namespace:
                assert created.urn in res.dependencies, res.name
    assert names["edge-cert-manager-namespace"].urn in names["edge-cert-manager"].dependencies
    assert "edge-cert-manager-namespace" not in by_name(minikube)


@pytest.mark.parametrize(
    ("stack", "per_minute"), [("minikube", 1200), ("staging", 600), ("prod", 300)]
)
def test_the_public_api_is_rate_limited_per_client_ip_with_retry_after(
    stack: str, per_minute: int
) -> None:
    policy = one(plan(stack), "edge-api-rate-limit").raw_inputs
    assert policy["kind"] == "BackendTrafficPolicy"
    assert policy["apiVersion"] == "gateway.envoyproxy.io/v1alpha1"
    spec = policy["spec"]
    assert spec["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "todo-api"}
    ]
    (rule,) = spec["rateLimit"]["local"]["rules"]
    assert rule["limit"] == {"requests": per_minute, "unit": "Minute"}
    assert rule["clientSelectors"] == [{"sourceCIDR": {"type": "Distinct", "value": "0.0.0.0/0"}}]
    (override,) = spec["responseOverride"]
    assert override["source"] == "Local"
    assert override["match"] == {"statusCodes": [{"type": "Value", "value": 429}]}
    assert override["response"]["statusCode"] == 429
    assert override["response"]["header"]["set"] == [{"name": "Retry-After", "value": "60"}]


DO_PROXY_PROTOCOL = "service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol"
DO_HOSTNAME = "service.beta.kubernetes.io/do-loadbalancer-hostname"


def _service_annotations(run: PlanRun) -> dict[str, str]:
    (proxy,) = of_kind(run, "EnvoyProxy")
    service = proxy.raw_inputs["spec"]["provider"]["kubernetes"]["envoyService"]
    annotations: dict[str, str] = service.get("annotations", {})
    return annotations


@pytest.mark.parametrize(
    ("stack", "domain"), [("staging", "staging.example.com"), ("prod", "example.com")]
)
def test_the_do_load_balancer_and_envoy_both_speak_proxy_protocol(stack: str, domain: str) -> None:
    run = plan(stack)
    annotations = _service_annotations(run)
    assert annotations[DO_PROXY_PROTOCOL] == "true"
    # In-cluster clients of the public names go through the load balancer too.
    assert annotations[DO_HOSTNAME] == f"api.{domain}"
    policy = one(run, "edge-proxy-protocol")
    assert policy.raw_inputs["apiVersion"] == "gateway.envoyproxy.io/v1alpha1"
    assert policy.raw_inputs["kind"] == "ClientTrafficPolicy"
    assert policy.raw_inputs["metadata"] == {
        "name": "todo-proxy-protocol",
        "namespace": "envoy-gateway-system",
    }
    # The whole Gateway (both listeners), required: no `optional`, no trusted XFF hops.
    assert policy.raw_inputs["spec"] == {
        "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "todo"}],
        "proxyProtocol": {},
    }
    gateway = one(run, "edge-gateway")
    assert gateway.raw_inputs["metadata"]["name"] == "todo"
    assert gateway.raw_inputs["metadata"]["namespace"] == "envoy-gateway-system"
    # Like the rate limit: after the CRD chart and its target, a child of the edge.
    assert {one(run, "edge-gateway-crds").urn, gateway.urn} <= set(policy.dependencies)
    assert depends_on(run, policy, one(run, "edge-gateway-namespace"))
    assert policy.parent == one(run, "edge").urn
    assert validate_custom(policy.raw_inputs) == []


@pytest.mark.parametrize("stack", ["minikube", "kind"])
def test_local_stacks_have_neither_end_of_proxy_protocol(stack: str) -> None:
    run = plan(stack)
    assert DO_PROXY_PROTOCOL not in str(_service_annotations(run))
    assert DO_HOSTNAME not in str(_service_annotations(run))
    assert of_kind(run, "ClientTrafficPolicy") == []
    assert "edge-proxy-protocol" not in by_name(run)


def test_the_client_traffic_policy_is_checked_against_its_crd_strictly() -> None:
    policy = one(plan("prod"), "edge-proxy-protocol").raw_inputs
    misspelt = {**policy, "spec": {**policy["spec"], "proxyProtocl": {}}}
    assert any("proxyProtocl" in error for error in validate_custom(misspelt))
    unknown = {**policy, "spec": {**policy["spec"], "proxyProtocol": {"required": True}}}
    assert any("required" in error for error in validate_custom(unknown))


@pytest.mark.parametrize(
    "change",
    [{"load_balancer_name": None}, {"service_type": "NodePort"}, {"load_balancer_name": ""}],
    ids=["no-load-balancer-name", "node-port", "empty-load-balancer-name"],
)
def test_proxy_protocol_without_a_do_load_balancer_is_refused(
    tmp_path_factory: pytest.TempPathFactory, change: dict[str, Any]
) -> None:
    config = {**CLOUD, **change}
    with pytest.raises(Exception, match="proxy_protocol needs a DigitalOcean load balancer"):
        run_component(tmp_path_factory.mktemp("edge"), PROGRAM, {"args": config})
