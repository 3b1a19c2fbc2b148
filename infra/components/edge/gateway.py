"""Envoy Gateway: its CRDs, its controller, the EnvoyProxy, the GatewayClass and the Gateway.

Gateway API CRDs. DOKS installs the standard-channel Gateway API CRDs itself (with a
Cilium GatewayClass we never use), so on DOKS we must not install or upgrade them. The
`gateway-helm` chart's own `crds` subchart would (experimental channel, plus a validating
admission policy), so it is disabled; the Envoy Gateway CRDs come from the
`gateway-crds-helm` chart instead, with `crds.gatewayAPI.enabled` only where the cluster
has no Gateway API CRDs (minikube), and then from the standard channel. That chart keeps
its (very large) CRDs in `templates/`, which upstream installs with `helm template |
kubectl apply --server-side` rather than `helm install`; `helm.v4.Chart` does exactly that.

Envoy's Service: with a `load_balancer_name` it is the cluster's one DigitalOcean load
balancer (named, health-checked through annotations, and with `proxy_protocol` sending
the client's address in a PROXY header: see proxy_protocol.py); without one (minikube) it
is a plain LoadBalancer for `minikube tunnel`, or a NodePort. With more than one Envoy
replica the pods spread over nodes and keep a PodDisruptionBudget of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.edge.args import EdgeScope
from infra.components.kube import child_of

GATEWAY_CHART = "oci://docker.io/envoyproxy/gateway-helm"
GATEWAY_CRDS_CHART = "oci://docker.io/envoyproxy/gateway-crds-helm"
ENVOY_GATEWAY_VERSION = "v1.9.0"

GATEWAY_CLASS = "envoy"
"""Ours, not DOKS's Cilium class: Gateways of that class would get a second load balancer."""
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_NAME = "todo"
ENVOY_PROXY_NAME = "todo-proxy"
TLS_SECRET = "todo-edge-tls"
HTTP_LISTENER = "http"
HTTPS_LISTENER = "https"

ENVOY_PROXY_POD_LABELS = {
    "app.kubernetes.io/managed-by": "envoy-gateway",
    "app.kubernetes.io/component": "proxy",
}
"""Labels Envoy Gateway puts on the Envoy pods: what the apps' NetworkPolicies admit."""
ENVOY_CONTAINER_PORTS = (10080, 10443)
"""Envoy runs as non-root, so Envoy Gateway maps listener ports 80/443 to these."""
ENVOY_METRICS_PORT = 19001
GATEWAY_CONTROLLER_POD_LABELS = {"control-plane": "envoy-gateway"}
"""The Envoy Gateway controller's pods (gateway-helm templates/envoy-gateway-deployment.yaml);
its `envoy-gateway` Service selects them by this label too."""
XDS_PORT = 18000
"""The controller's xDS server, the Service port `grpc` (gateway-helm `deployment.ports`)."""
CERTGEN_POD_LABELS = {"app": "certgen"}
"""The pods of gateway-helm's certgen Job (templates/certgen.yaml)."""

_CONTROLLER_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


DO_PROXY_PROTOCOL_ANNOTATION = "service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol"
DO_HOSTNAME_ANNOTATION = "service.beta.kubernetes.io/do-loadbalancer-hostname"


def load_balancer_annotations(
    name: str, proxy_protocol_hostname: str | None = None
) -> dict[str, str]:
    """DigitalOcean load balancer settings for the Envoy Service; with a
    `proxy_protocol_hostname`, the load balancer's half of PROXY protocol."""
    annotations = {
        # The Service keeps externalTrafficPolicy Local (Envoy Gateway's default) for client
        # IPs; DigitalOcean's controller then health-checks the nodes' healthCheckNodePort,
        # so only nodes running Envoy get traffic. A short interval drains them quickly.
        "service.beta.kubernetes.io/do-loadbalancer-healthcheck-check-interval-seconds": "5",
        "service.beta.kubernetes.io/do-loadbalancer-healthcheck-unhealthy-threshold": "3",
        "service.beta.kubernetes.io/do-loadbalancer-healthcheck-healthy-threshold": "2",
    }
    if name:
        annotations["service.beta.kubernetes.io/do-loadbalancer-name"] = name
    if proxy_protocol_hostname is not None:
        annotations |= proxy_protocol_annotations(proxy_protocol_hostname)
    return annotations


def proxy_protocol_annotations(hostname: str) -> dict[str, str]:
    """The load balancer's half of PROXY protocol; Envoy's is the ClientTrafficPolicy
    (proxy_protocol.py). Both come from `EdgeArgs.proxy_protocol`, never one alone."""
    return {
        # Every connection the load balancer forwards starts with a PROXY header holding the
        # client's address (digitalocean-cloud-controller-manager, docs/controllers/
        # services/annotations.md; a string, as annotations are). Its health checks of the
        # healthCheckNodePort stay without one: the controller turns PROXY protocol off for
        # that default check (cloud-controller-manager/do/loadbalancers.go,
        # buildHealthCheck, since #739), which answers from the node, not from Envoy.
        DO_PROXY_PROTOCOL_ANNOTATION: "true",
        # The Service's status then names this host instead of the load balancer's IP, so
        # no node's service proxy (kube-proxy, Cilium) sends in-cluster clients of that IP
        # straight to Envoy without a header, which Envoy would refuse
        # (kubernetes/kubernetes#66607; the controller's docs/controllers/services/
        # examples/README.md, "Accessing pods over a managed load-balancer from inside the
        # cluster"). cert-manager's HTTP-01 self-check is such a client: it now goes out
        # through the load balancer. The host must resolve to the load balancer, which the
        # API's hostname does (Let's Encrypt needs it to).
        DO_HOSTNAME_ANNOTATION: hostname,
    }


def gateway_crds_values(install_gateway_api_crds: bool) -> dict[str, Any]:
    """Values for gateway-crds-helm (keys from its chart README at v1.9.0)."""
    return {
        "crds": {
            "envoyGateway": {"enabled": True},
            "gatewayAPI": {"enabled": install_gateway_api_crds, "channel": "standard"},
        }
    }


def envoy_gateway_values(replicas: int = 1) -> dict[str, Any]:
    """Values for gateway-helm. Every key exists in the chart's values file."""
    return {
        # CRDs come from gateway-crds-helm (see the module docstring).
        "crds": {"enabled": False},
        "deployment": {
            "replicas": replicas,
            "envoyGateway": {"resources": _CONTROLLER_RESOURCES},
        },
        # Only adds zone annotations for zone-aware routing, through a mutating webhook
        # that the API server would have to reach: not worth the open port here.
        "topologyInjector": {"enabled": False},
    }


def crd_dependent(
    scope: EdgeScope, crds: k8s.helm.v4.Chart, *extra: pulumi.Resource
) -> pulumi.ResourceOptions:
    """Options for a custom resource whose CRD the CRD chart installs."""
    return child_of(scope.parent, depends_on=[crds, *extra])


def create_gateway_crds(scope: EdgeScope) -> k8s.helm.v4.Chart:
    return k8s.helm.v4.Chart(
        f"{scope.name}-gateway-crds",
        chart=GATEWAY_CRDS_CHART,
        version=ENVOY_GATEWAY_VERSION,
        namespace=scope.namespace,
        values=gateway_crds_values(scope.args.install_gateway_api_crds),
        opts=child_of(scope.parent),
    )


def create_controller(scope: EdgeScope, crds: k8s.helm.v4.Chart) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        f"{scope.name}-envoy-gateway",
        name="envoy-gateway",
        chart=GATEWAY_CHART,
        version=ENVOY_GATEWAY_VERSION,
        namespace=scope.namespace,
        values=envoy_gateway_values(),
        timeout=600,
        atomic=True,
        cleanup_on_fail=True,
        max_history=5,
        # The controller does not start without its CRDs.
        opts=child_of(scope.parent, depends_on=[crds]),
    )


def create_envoy_proxy(
    scope: EdgeScope, crds: k8s.helm.v4.Chart
) -> k8s.apiextensions.CustomResource:
    args = scope.args
    service = pulumi.Output.all(
        args.service_type, args.load_balancer_name, args.api_hostname
    ).apply(lambda v: _envoy_service(v[0], v[1], v[2] if args.proxy_protocol else None))
    hardened = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    }
    kubernetes: dict[str, Any] = {
        "envoyService": service,
        "envoyDeployment": {
            "replicas": args.envoy_replicas,
            "pod": pod,
            "container": {"resources": args.envoy_resources, "securityContext": hardened},
        },
    }
    if args.envoy_replicas > 1:
        # One Envoy per node where possible (the load balancer only sends traffic to
        # nodes running one), and node drains keep at least one serving.
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": ENVOY_PROXY_POD_LABELS},
            }
        ]
        kubernetes["envoyPDB"] = {"minAvailable": 1}
    return k8s.apiextensions.CustomResource(
        f"{scope.name}-proxy-config",
        api_version="gateway.envoyproxy.io/v1alpha1",
        kind="EnvoyProxy",
        metadata={"name": ENVOY_PROXY_NAME, "namespace": scope.namespace},
        spec={"provider": {"type": "Kubernetes", "kubernetes": kubernetes}},
        opts=crd_dependent(scope, crds),
    )


def _envoy_service(
    service_type: str, load_balancer_name: str | None, proxy_protocol_hostname: str | None
) -> dict[str, Any]:
    """The EnvoyProxy's `envoyService`: DigitalOcean's annotations only on its load balancer
    (with PROXY protocol, Edge's argument check has made sure the Service is one)."""
    service: dict[str, Any] = {"type": service_type, "externalTrafficPolicy": "Local"}
    if service_type == "LoadBalancer" and load_balancer_name:
        service["annotations"] = load_balancer_annotations(
            str(load_balancer_name), proxy_protocol_hostname
        )
    return service


def create_gateway_class(
    scope: EdgeScope,
    crds: k8s.helm.v4.Chart,
    proxy: k8s.apiextensions.CustomResource,
    gateway_api_bundle: pulumi.Output[str] | None,
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        f"{scope.name}-class",
        api_version="gateway.networking.k8s.io/v1",
        kind="GatewayClass",
        metadata={
            "name": GATEWAY_CLASS,
            **(
                {"annotations": {"todo.dev/gateway-api-bundle": gateway_api_bundle}}
                if gateway_api_bundle is not None
                else {}
            ),
        },
        spec={
            "controllerName": CONTROLLER_NAME,
            "description": "Envoy Gateway: the one ingress point of the Todo platform.",
            "parametersRef": {
                "group": "gateway.envoyproxy.io",
                "kind": "EnvoyProxy",
                "name": ENVOY_PROXY_NAME,
                "namespace": scope.namespace,
            },
        },
        # Upstream advises creating the EnvoyProxy first, or the first Envoy Service is
        # created without its settings (and with a different load balancer).
        opts=crd_dependent(scope, crds, proxy),
    )


def create_gateway(
    scope: EdgeScope, crds: k8s.helm.v4.Chart, gateway_class: k8s.apiextensions.CustomResource
) -> k8s.apiextensions.CustomResource:
    args = scope.args
    route_namespaces = pulumi.Output.all(args.backend_namespace, args.grafana_namespace)
    http_from = pulumi.Output.all(route_namespaces, scope.namespace).apply(
        # With TLS only the redirect and the ACME solver routes (both in the Gateway's
        # namespace) use port 80; without it the app routes do.
        lambda v: _namespace_selector([v[1]] if args.tls else [*v[0], v[1]])
    )
    listeners: list[Any] = [
        {
            "name": HTTP_LISTENER,
            "protocol": "HTTP",
            "port": 80,
            "allowedRoutes": {"namespaces": http_from, "kinds": [{"kind": "HTTPRoute"}]},
        }
    ]
    if args.tls:
        listeners.append(
            {
                "name": HTTPS_LISTENER,
                "protocol": "HTTPS",
                "port": 443,
                "tls": {
                    "mode": "Terminate",
                    "certificateRefs": [{"kind": "Secret", "name": TLS_SECRET}],
                },
                "allowedRoutes": {
                    "namespaces": route_namespaces.apply(lambda v: _namespace_selector(v)),
                    "kinds": [{"kind": "HTTPRoute"}],
                },
            }
        )
    return k8s.apiextensions.CustomResource(
        f"{scope.name}-gateway",
        api_version="gateway.networking.k8s.io/v1",
        kind="Gateway",
        metadata={"name": GATEWAY_NAME, "namespace": scope.namespace},
        spec={"gatewayClassName": GATEWAY_CLASS, "listeners": listeners},
        opts=crd_dependent(scope, crds, gateway_class),
    )


def gateway_listener(scope: EdgeScope, listener: str) -> dict[str, Any]:
    """A `parentRefs` entry: one listener of the Gateway."""
    return {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": GATEWAY_NAME,
        "namespace": scope.namespace,
        "sectionName": listener,
    }


def _namespace_selector(namespaces: Sequence[str]) -> dict[str, Any]:
    # Every namespace carries its own name as this label (set by the API server).
    return {
        "from": "Selector",
        "selector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": sorted(set(namespaces)),
                }
            ]
        },
    }
