"""The way in: Envoy Gateway (Gateway API) with TLS from cert-manager and Let's Encrypt.

One GatewayClass (`envoy`, Envoy Gateway's controller) and one Gateway (`todo`): Envoy
Gateway turns that Gateway into one Envoy Deployment and one Service of type LoadBalancer,
so a cluster has exactly one DigitalOcean load balancer. Its name and health check come
from an EnvoyProxy resource the GatewayClass points at.

Gateway API CRDs. DOKS installs the standard-channel Gateway API CRDs itself (with a
Cilium GatewayClass we never use), so on DOKS we must not install or upgrade them. The
`gateway-helm` chart's own `crds` subchart would (experimental channel, plus a validating
admission policy), so it is disabled; the Envoy Gateway CRDs come from the
`gateway-crds-helm` chart instead, with `crds.gatewayAPI.enabled` only where the cluster
has no Gateway API CRDs (minikube), and then from the standard channel. That chart keeps
its (very large) CRDs in `templates/`, which upstream installs with `helm template |
kubectl apply --server-side` rather than `helm install`; `helm.v4.Chart` does exactly that.

TLS. On cloud stacks cert-manager (Helm, with Gateway API support on) gets a certificate
for the API and Grafana hostnames from Let's Encrypt through an HTTP-01 challenge that it
answers with a temporary HTTPRoute on the Gateway's HTTP listener. Everything else on
port 80 is redirected to HTTPS: the challenge route matches its exact path, which Gateway
API ranks above the redirect's `/` prefix. Without TLS (minikube) the routes attach to the
HTTP listener and cert-manager is not installed.

Routes live next to their backends (the API route in the apps namespace, Grafana's in the
monitoring namespace), so no ReferenceGrant is needed; the Gateway's listeners admit routes
from exactly those namespaces. The API route forwards only `/api` (to the backend, and the
longer prefixes of the notification and recurring APIs to those services): the services'
internal, binding and metrics routes are never reachable from outside.

Envoy's Service: with a `load_balancer_name` it is the cluster's one DigitalOcean load
balancer (named, health-checked through annotations); without one (minikube) it is a
plain LoadBalancer for `minikube tunnel`, or a NodePort. With more than one Envoy replica
the pods spread over nodes and keep a PodDisruptionBudget of one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from apps.contracts.services import API_PREFIX, API_V1
from infra.components.cluster import ApiServerAccess
from infra.components.gateway_api import provider_gateway_api
from infra.components.kube import child_of
from infra.components.platform_egress import (
    api_server_egress,
    dns_rule,
    namespace_peer,
    public_internet_rule,
    tcp_ports,
)

GATEWAY_CHART = "oci://docker.io/envoyproxy/gateway-helm"
GATEWAY_CRDS_CHART = "oci://docker.io/envoyproxy/gateway-crds-helm"
ENVOY_GATEWAY_VERSION = "v1.9.0"
CERT_MANAGER_CHART = "cert-manager"
CERT_MANAGER_REPO = "https://charts.jetstack.io"
CERT_MANAGER_VERSION = "v1.21.1"

POD_SECURITY_LABELS = {
    # Envoy Gateway's controller, Envoy, certgen, cert-manager and its ACME solver pods all
    # run non-root with no capabilities and the runtime's seccomp profile.
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
    "app.kubernetes.io/part-of": "todo",
}

GATEWAY_CLASS = "envoy"
"""Ours, not DOKS's Cilium class: Gateways of that class would get a second load balancer."""
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_NAME = "todo"
ENVOY_PROXY_NAME = "todo-proxy"
CLUSTER_ISSUER = "letsencrypt"
TLS_SECRET = "todo-edge-tls"
HTTP_LISTENER = "http"
HTTPS_LISTENER = "https"

LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"

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
ACME_SOLVER_POD_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
"""cert-manager's HTTP-01 solver pods (pkg/apis/acme/v1 `SolverIdentificationLabelKey`)."""
ACME_SOLVER_PORT = 8089
CERT_MANAGER_RELEASE = "cert-manager"
CERT_MANAGER_POD_LABELS = {
    "app.kubernetes.io/name": "cert-manager",
    "app.kubernetes.io/instance": CERT_MANAGER_RELEASE,
    "app.kubernetes.io/component": "controller",
}
"""The controller's pods (cert-manager chart templates/deployment.yaml)."""
CERT_MANAGER_API_ONLY_COMPONENTS = ("webhook", "cainjector", "startupapicheck")
"""Pods of the chart that talk to the API server only (its webhook-deployment.yaml,
cainjector-deployment.yaml and startupapicheck-job.yaml label them by component)."""

DEFAULT_ENVOY_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
_CONTROLLER_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
_CERT_MANAGER_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}


@dataclass(frozen=True)
class ApiPath:
    """A path prefix of the API hostname served by another Service than the backend's."""

    prefix: str
    """Path prefix, e.g. `/api/v1/notifications` (Gateway API matches whole segments)."""
    service: pulumi.Input[str]
    """Name of the Service (in the backend's namespace) that serves it."""
    port: pulumi.Input[int]
    """Port of that Service."""


@dataclass(frozen=True)
class EdgeArgs:
    """Inputs of the edge component."""

    namespace: pulumi.Input[str]
    """Namespace of Envoy Gateway, the Envoy proxies, the Gateway and its certificate."""
    api_hostname: pulumi.Input[str]
    """Public hostname of the backend API, e.g. `api.todo.example.com`."""
    backend_service: pulumi.Input[str]
    """Name of the backend's Service."""
    backend_namespace: pulumi.Input[str]
    """Namespace of the backend's Service (the apps namespace); its route lives there."""
    backend_port: pulumi.Input[int]
    """Port of the backend's Service."""
    grafana_hostname: pulumi.Input[str]
    """Public hostname of Grafana, e.g. `grafana.todo.example.com`."""
    grafana_service: pulumi.Input[str]
    """Name of Grafana's Service."""
    grafana_namespace: pulumi.Input[str]
    """Namespace of Grafana's Service (the monitoring namespace); its route lives there."""
    grafana_port: pulumi.Input[int]
    """Port of Grafana's Service."""
    grafana_target_port: pulumi.Input[int]
    """The Grafana container's port behind it: what Envoy's egress policy opens."""
    install_gateway_api_crds: bool
    """Install the standard Gateway API CRDs (minikube); False where the cluster ships them
    (DOKS). Shapes the resource graph, so it must be a plain value."""
    tls: bool
    """HTTPS with a Let's Encrypt certificate through cert-manager (cloud stacks). Shapes the
    resource graph, so it must be a plain value."""
    api_server: ApiServerAccess
    """How pods reach the API server (the CNI's rules), for the controllers' egress."""
    extra_api_paths: Sequence[ApiPath] = ()
    """More specific prefixes of the API hostname, served by other Services of the backend's
    namespace (the notification and recurring APIs); the longest matching prefix wins."""
    cert_manager_namespace: pulumi.Input[str] = "cert-manager"
    """Namespace of cert-manager (only used with `tls`)."""
    acme_email: pulumi.Input[str] = ""
    """Contact address for the Let's Encrypt account (required with `tls`)."""
    acme_server: pulumi.Input[str] = LETS_ENCRYPT_PRODUCTION
    """ACME directory; Let's Encrypt staging avoids rate limits while testing."""
    service_type: pulumi.Input[str] = "LoadBalancer"
    """Type of the Envoy Service: `LoadBalancer` (one DO load balancer, or `minikube tunnel`)
    or `NodePort`."""
    load_balancer_name: pulumi.Input[str] = ""
    """Name of the DigitalOcean load balancer; empty where no DigitalOcean load balancer backs
    the Service (minikube), which then gets no DigitalOcean annotations either."""
    envoy_replicas: int = 1
    """Envoy proxy replicas; with more than one they spread over nodes and keep a
    PodDisruptionBudget of one. Shapes the proxy's spec, so it is a plain value."""
    envoy_resources: pulumi.Input[Mapping[str, Any]] = field(
        default_factory=lambda: DEFAULT_ENVOY_RESOURCES
    )
    """Requests and limits of the Envoy container."""
    monitoring_namespace: pulumi.Input[str] = "monitoring"
    """Namespace Prometheus scrapes from (admitted to the metrics ports)."""
    monitoring_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of the Prometheus pods there; empty admits the whole monitoring namespace."""
    grafana_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of Grafana's pods, the only ones Envoy may reach in Grafana's namespace; empty
    lets Envoy reach the whole namespace on `grafana_target_port`."""


def load_balancer_annotations(name: str) -> dict[str, str]:
    """DigitalOcean load balancer settings for the Envoy Service."""
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
    return annotations


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


def cert_manager_values() -> dict[str, Any]:
    """Values for cert-manager. Every key exists in the chart's values file."""
    return {
        "crds": {"enabled": True},
        "config": {
            "apiVersion": "controller.config.cert-manager.io/v1alpha1",
            "kind": "ControllerConfiguration",
            # The gatewayHTTPRoute HTTP-01 solver needs Gateway API support switched on.
            "gatewayAPI": {"enabled": True},
        },
        "resources": _CERT_MANAGER_RESOURCES,
        "webhook": {"resources": _CERT_MANAGER_RESOURCES},
        "cainjector": {"resources": _CERT_MANAGER_RESOURCES},
        "startupapicheck": {"resources": _CERT_MANAGER_RESOURCES},
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


class Edge(pulumi.ComponentResource):
    """Envoy Gateway, one Gateway and its routes, and (with TLS) cert-manager."""

    gateway_crds: k8s.helm.v4.Chart
    """The chart that installs the Envoy Gateway (and, where asked, Gateway API) CRDs."""
    gateway: k8s.apiextensions.CustomResource
    """The one Gateway (`todo`) of the cluster."""
    api_url: pulumi.Output[str]
    """Where the backend API is served, e.g. `https://api.todo.example.com/api/v1`."""
    grafana_url: pulumi.Output[str]
    """Where Grafana is served."""

    def __init__(
        self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:edge:Edge", name, None, opts)
        if not isinstance(args.tls, bool) or not isinstance(args.install_gateway_api_crds, bool):
            raise TypeError("EdgeArgs.tls and install_gateway_api_crds must be plain booleans")
        if not isinstance(args.envoy_replicas, int) or args.envoy_replicas < 1:
            raise TypeError("EdgeArgs.envoy_replicas must be a plain integer >= 1")
        for path in args.extra_api_paths:
            if not path.prefix.startswith(f"{API_PREFIX}/") or path.prefix.endswith("/"):
                raise ValueError(
                    f"EdgeArgs.extra_api_paths: {path.prefix!r} must lie under {API_PREFIX}/ "
                    "and not end with '/'"
                )
        self._name = name
        self._args = args
        self._namespace = self._create_namespace("gateway", args.namespace)
        self._cert_manager_namespace = (
            self._create_namespace("cert-manager", args.cert_manager_namespace)
            if args.tls
            else pulumi.Output.from_input(args.cert_manager_namespace)
        )

        self.gateway_crds = self._create_gateway_crds()
        self.controller = self._create_controller()
        proxy = self._create_envoy_proxy()
        # Where the cluster's provider owns the Gateway API CRDs (DOKS), check them first.
        self._gateway_api_bundle: pulumi.Output[str] | None = (
            None if args.install_gateway_api_crds else provider_gateway_api(name, self)
        )
        gateway_class = self._create_gateway_class(proxy)
        self.gateway = self._create_gateway(gateway_class)
        issuer_ready: list[pulumi.Resource] = []
        if args.tls:
            issuer_ready = self._create_tls()
        self._create_routes(issuer_ready)
        self._create_network_policies()

        scheme = "https" if args.tls else "http"
        self.api_url = pulumi.Output.concat(scheme, "://", args.api_hostname, API_V1)
        self.grafana_url = pulumi.Output.concat(scheme, "://", args.grafana_hostname)
        self.register_outputs({"api_url": self.api_url, "grafana_url": self.grafana_url})

    def _create_namespace(self, role: str, name: pulumi.Input[str]) -> pulumi.Output[str]:
        """A platform namespace held to the restricted Pod Security profile."""
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-{role}-namespace",
            metadata={"name": name, "labels": POD_SECURITY_LABELS},
            opts=child_of(self),
        )
        # The name as an output, so that everything in the namespace waits for it.
        return namespace.metadata.apply(lambda m: str(m["name"]))

    def _crd_dependent(self, *extra: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options for a custom resource whose CRD the CRD chart installs."""
        return child_of(self, depends_on=[self.gateway_crds, *extra])

    # ------------------------------------------------------------------ Envoy Gateway

    def _create_gateway_crds(self) -> k8s.helm.v4.Chart:
        return k8s.helm.v4.Chart(
            f"{self._name}-gateway-crds",
            chart=GATEWAY_CRDS_CHART,
            version=ENVOY_GATEWAY_VERSION,
            namespace=self._namespace,
            values=gateway_crds_values(self._args.install_gateway_api_crds),
            opts=child_of(self),
        )

    def _create_controller(self) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            f"{self._name}-envoy-gateway",
            name="envoy-gateway",
            chart=GATEWAY_CHART,
            version=ENVOY_GATEWAY_VERSION,
            namespace=self._namespace,
            values=envoy_gateway_values(),
            timeout=600,
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            # The controller does not start without its CRDs.
            opts=child_of(self, depends_on=[self.gateway_crds]),
        )

    def _create_envoy_proxy(self) -> k8s.apiextensions.CustomResource:
        args = self._args
        service = pulumi.Output.all(args.service_type, args.load_balancer_name).apply(
            lambda v: {
                "type": v[0],
                "externalTrafficPolicy": "Local",
                **(
                    {"annotations": load_balancer_annotations(v[1])}
                    if v[0] == "LoadBalancer" and v[1]
                    else {}
                ),
            }
        )
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
            f"{self._name}-proxy-config",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="EnvoyProxy",
            metadata={"name": ENVOY_PROXY_NAME, "namespace": self._namespace},
            spec={"provider": {"type": "Kubernetes", "kubernetes": kubernetes}},
            opts=self._crd_dependent(),
        )

    def _create_gateway_class(
        self, proxy: k8s.apiextensions.CustomResource
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{self._name}-class",
            api_version="gateway.networking.k8s.io/v1",
            kind="GatewayClass",
            metadata={
                "name": GATEWAY_CLASS,
                **(
                    {"annotations": {"todo.dev/gateway-api-bundle": self._gateway_api_bundle}}
                    if self._gateway_api_bundle is not None
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
                    "namespace": self._namespace,
                },
            },
            # Upstream advises creating the EnvoyProxy first, or the first Envoy Service is
            # created without its settings (and with a different load balancer).
            opts=self._crd_dependent(proxy),
        )

    def _create_gateway(
        self, gateway_class: k8s.apiextensions.CustomResource
    ) -> k8s.apiextensions.CustomResource:
        args = self._args
        route_namespaces = pulumi.Output.all(args.backend_namespace, args.grafana_namespace)
        http_from = pulumi.Output.all(route_namespaces, self._namespace).apply(
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
            f"{self._name}-gateway",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            metadata={"name": GATEWAY_NAME, "namespace": self._namespace},
            spec={"gatewayClassName": GATEWAY_CLASS, "listeners": listeners},
            opts=self._crd_dependent(gateway_class),
        )

    # ------------------------------------------------------------------ TLS

    def _create_tls(self) -> list[pulumi.Resource]:
        args = self._args
        if args.acme_email == "":
            raise ValueError("EdgeArgs.acme_email is required with tls (Let's Encrypt account)")
        cert_manager = k8s.helm.v3.Release(
            f"{self._name}-cert-manager",
            name=CERT_MANAGER_RELEASE,
            chart=CERT_MANAGER_CHART,
            version=CERT_MANAGER_VERSION,
            repository_opts={"repo": CERT_MANAGER_REPO},
            namespace=self._cert_manager_namespace,
            values=cert_manager_values(),
            timeout=600,
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            # Its Gateway API support checks for the Gateway API CRDs when it starts; on
            # DOKS they are there before anything of ours.
            opts=child_of(
                self, depends_on=[self.gateway_crds] if args.install_gateway_api_crds else []
            ),
        )
        issuer = k8s.apiextensions.CustomResource(
            f"{self._name}-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": CLUSTER_ISSUER},
            spec={
                "acme": {
                    "server": args.acme_server,
                    "email": args.acme_email,
                    "privateKeySecretRef": {"name": f"{CLUSTER_ISSUER}-account-key"},
                    "solvers": [
                        {
                            "http01": {
                                "gatewayHTTPRoute": {
                                    "parentRefs": [
                                        {
                                            "group": "gateway.networking.k8s.io",
                                            "kind": "Gateway",
                                            "name": GATEWAY_NAME,
                                            "namespace": self._namespace,
                                            "sectionName": HTTP_LISTENER,
                                        }
                                    ]
                                }
                            }
                        }
                    ],
                }
            },
            opts=child_of(self, depends_on=[cert_manager]),
        )
        certificate = k8s.apiextensions.CustomResource(
            f"{self._name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": "todo-edge", "namespace": self._namespace},
            spec={
                "secretName": TLS_SECRET,
                "issuerRef": {
                    "group": "cert-manager.io",
                    "kind": "ClusterIssuer",
                    "name": CLUSTER_ISSUER,
                },
                "dnsNames": [args.api_hostname, args.grafana_hostname],
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "duration": "2160h",
                "renewBefore": "720h",
            },
            opts=child_of(self, depends_on=[cert_manager, issuer]),
        )
        return [certificate]

    # ------------------------------------------------------------------ routes

    def _create_routes(self, tls_ready: list[pulumi.Resource]) -> None:
        args = self._args
        app_listener = HTTPS_LISTENER if args.tls else HTTP_LISTENER
        parent = {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": GATEWAY_NAME,
            "namespace": self._namespace,
            "sectionName": app_listener,
        }
        if args.tls:
            k8s.apiextensions.CustomResource(
                f"{self._name}-https-redirect",
                api_version="gateway.networking.k8s.io/v1",
                kind="HTTPRoute",
                metadata={"name": "https-redirect", "namespace": self._namespace},
                spec={
                    "parentRefs": [parent | {"sectionName": HTTP_LISTENER}],
                    "hostnames": [args.api_hostname, args.grafana_hostname],
                    "rules": [
                        {
                            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            "filters": [
                                {
                                    "type": "RequestRedirect",
                                    "requestRedirect": {"scheme": "https", "statusCode": 301},
                                }
                            ],
                        }
                    ],
                },
                opts=self._crd_dependent(self.gateway),
            )
        k8s.apiextensions.CustomResource(
            f"{self._name}-api-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata={"name": "todo-api", "namespace": args.backend_namespace},
            spec={
                "parentRefs": [parent],
                "hostnames": [args.api_hostname],
                "rules": [
                    {
                        # The public API only: /internal, /reminder-scan, /metrics and the
                        # Dapr routes of the backend stay inside the cluster.
                        "matches": [{"path": {"type": "PathPrefix", "value": API_PREFIX}}],
                        "backendRefs": [{"name": args.backend_service, "port": args.backend_port}],
                    },
                    # The other services' public APIs under the same host: a longer prefix
                    # outranks `/api` (Gateway API precedence).
                    *(
                        {
                            "matches": [{"path": {"type": "PathPrefix", "value": path.prefix}}],
                            "backendRefs": [{"name": path.service, "port": path.port}],
                        }
                        for path in args.extra_api_paths
                    ),
                ],
            },
            opts=self._crd_dependent(self.gateway, *tls_ready),
        )
        k8s.apiextensions.CustomResource(
            f"{self._name}-grafana-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata={"name": "grafana", "namespace": args.grafana_namespace},
            spec={
                "parentRefs": [parent],
                "hostnames": [args.grafana_hostname],
                "rules": [
                    {
                        # Grafana's own login guards it (no anonymous access, no sign-up).
                        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [{"name": args.grafana_service, "port": args.grafana_port}],
                    }
                ],
            },
            opts=self._crd_dependent(self.gateway, *tls_ready),
        )

    # ------------------------------------------------------------------ network policies

    def _create_network_policies(self) -> None:
        """The fences of the Gateway's namespace (and cert-manager's): each namespace's pods
        talk to each other, resolve names and admit Prometheus; each role reaches only what
        it needs (`_create_gateway_egress`, `_create_cert_manager_egress`)."""
        args = self._args
        prometheus = namespace_peer(args.monitoring_namespace, args.monitoring_pod_labels)
        _network_policy(
            f"{self._name}-allow-envoy",
            namespace=self._namespace,
            policy_name="allow-envoy-listeners",
            spec={
                "podSelector": {"matchLabels": ENVOY_PROXY_POD_LABELS},
                "policyTypes": ["Ingress"],
                "ingress": [
                    # Client traffic arrives from the load balancer, through any node.
                    {"ports": tcp_ports(*ENVOY_CONTAINER_PORTS)},
                    {"from": [prometheus], "ports": tcp_ports(ENVOY_METRICS_PORT)},
                ],
            },
            opts=child_of(self),
        )
        namespaces = [("gateway", self._namespace)]
        if args.tls:
            namespaces.append(("cert-manager", self._cert_manager_namespace))
            _network_policy(
                f"{self._name}-allow-cert-manager-webhook",
                namespace=self._cert_manager_namespace,
                policy_name="allow-webhook",
                spec={
                    # The API server calls the webhook from outside the pod network.
                    "podSelector": {"matchLabels": {"app.kubernetes.io/component": "webhook"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"ports": tcp_ports(10250)}],
                },
                opts=child_of(self),
            )
        for role, namespace in namespaces:
            _network_policy(
                f"{self._name}-{role}-namespace-policy",
                namespace=namespace,
                policy_name="allow-namespace-and-monitoring",
                spec={
                    # Selects every pod, for both directions: anything not allowed here or
                    # by a role's policy is denied (the namespace's default-deny).
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [
                        {"from": [{"podSelector": {}}]},
                        {"from": [prometheus]},
                    ],
                    "egress": [dns_rule()],
                },
                opts=child_of(self),
            )
        self._create_gateway_egress()
        if args.tls:
            self._create_cert_manager_egress()

    def _create_gateway_egress(self) -> None:
        """Envoy reaches its routes' backends and its xDS server; the controller and its
        certgen Job, the API server. The ACME solver pods only answer (DNS is all they get)."""
        args = self._args
        # The backends' Services map port to the same container port (FastApiService: port
        # APP_PORT, targetPort `http` = APP_PORT); NetworkPolicies see the pod's port.
        backend_ports = pulumi.Output.all(
            args.backend_port, *(path.port for path in args.extra_api_paths)
        ).apply(lambda ports: tcp_ports(*sorted(set(ports))))
        envoy_rules: list[dict[str, Any]] = [
            {"to": [namespace_peer(args.backend_namespace)], "ports": backend_ports},
            {
                "to": [namespace_peer(args.grafana_namespace, args.grafana_pod_labels)],
                "ports": tcp_ports(args.grafana_target_port),
            },
            # xDS: Envoy's bootstrap points at the `envoy-gateway` Service's grpc port
            # (envoyproxy/gateway internal/xds/bootstrap/bootstrap.go, DefaultXdsServerPort).
            {
                "to": [{"podSelector": {"matchLabels": GATEWAY_CONTROLLER_POD_LABELS}}],
                "ports": tcp_ports(XDS_PORT),
            },
        ]
        if args.tls:
            # The HTTP-01 challenge route forwards to cert-manager's solver pods, created in
            # the Certificate's namespace (this one) and listening on 8089 (cert-manager
            # pkg/issuer/acme/http/http.go, acmeSolverListenPort).
            envoy_rules.append(
                {
                    "to": [{"podSelector": {"matchLabels": ACME_SOLVER_POD_LABELS}}],
                    "ports": tcp_ports(ACME_SOLVER_PORT),
                }
            )
        namespace = self._namespace
        self._role_egress(namespace, "envoy", _labels(ENVOY_PROXY_POD_LABELS), envoy_rules)
        self._role_egress(
            namespace, "envoy-gateway", _labels(GATEWAY_CONTROLLER_POD_LABELS), api_server=True
        )
        # gateway-helm templates/certgen.yaml: the pre-install Job writing the xDS TLS Secrets.
        self._role_egress(namespace, "certgen", _labels(CERTGEN_POD_LABELS), api_server=True)

    def _create_cert_manager_egress(self) -> None:
        """The controller reaches the API server, the ACME server and its HTTP-01 self-check;
        the webhook, cainjector and startupapicheck Job, the API server only."""
        namespace = self._cert_manager_namespace
        self._role_egress(
            namespace,
            "cert-manager",
            _labels(CERT_MANAGER_POD_LABELS),
            [
                # The ACME directory (HTTPS) and the self-check, an HTTP GET of the challenge
                # URL at the Gateway's public address. cert-manager's own chart opens the
                # same ports (values.yaml `networkPolicy.egress`: 80, 443, DNS).
                public_internet_rule(80, 443),
                # In-cluster clients of a LoadBalancer's address never reach the load
                # balancer: the node's service proxy sends them straight to a backend pod
                # (kubernetes/kubernetes#66607, DigitalOcean's note there; Cilium's kube-proxy
                # replacement on DOKS does the same), so the self-check lands on Envoy's HTTP
                # container port.
                {
                    "to": [namespace_peer(self._namespace, ENVOY_PROXY_POD_LABELS)],
                    "ports": tcp_ports(ENVOY_CONTAINER_PORTS[0]),
                },
            ],
            api_server=True,
        )
        self._role_egress(
            namespace,
            "cert-manager-components",
            {
                "matchLabels": {"app.kubernetes.io/instance": CERT_MANAGER_RELEASE},
                "matchExpressions": [
                    {
                        "key": "app.kubernetes.io/component",
                        "operator": "In",
                        "values": list(CERT_MANAGER_API_ONLY_COMPONENTS),
                    }
                ],
            },
            api_server=True,
        )

    def _role_egress(
        self,
        namespace: pulumi.Input[str],
        role: str,
        selector: dict[str, Any],
        rules: Sequence[dict[str, Any]] = (),
        *,
        api_server: bool = False,
    ) -> None:
        """NetworkPolicy `<role>-egress` for the selected pods, plus the API server as the CNI
        needs it (a CiliumNetworkPolicy `<role>-to-api-server` on Cilium)."""
        rules = list(rules)
        if api_server:
            rules = [
                *rules,
                *api_server_egress(
                    f"{self._name}-{role}-api-server",
                    self._args.api_server,
                    namespace=namespace,
                    role=role,
                    pod_selector=selector,
                    opts=child_of(self),
                ),
            ]
        if not rules:
            return  # the Cilium policy is all this role gets
        _network_policy(
            f"{self._name}-{role}-egress",
            namespace=namespace,
            policy_name=f"{role}-egress",
            spec={"podSelector": selector, "policyTypes": ["Egress"], "egress": rules},
            opts=child_of(self),
        )


def _labels(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"matchLabels": dict(labels)}


def _network_policy(
    resource_name: str,
    *,
    namespace: pulumi.Input[str],
    policy_name: str,
    spec: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    metadata: dict[str, Any] = {
        "name": policy_name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/part-of": "todo"},
    }
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=cast(k8s.meta.v1.ObjectMetaArgsDict, metadata),
        spec=cast(k8s.networking.v1.NetworkPolicySpecArgsDict, spec),
        opts=opts,
    )
