"""The way in: Envoy Gateway (Gateway API) with TLS from cert-manager and Let's Encrypt.

One GatewayClass (`envoy`, Envoy Gateway's controller) and one Gateway (`todo`): Envoy
Gateway turns that Gateway into one Envoy Deployment and one Service of type LoadBalancer,
so a cluster has exactly one DigitalOcean load balancer. Its name and health check come
from an EnvoyProxy resource the GatewayClass points at.

The component is built from one module a concern, each with the details in its docstring:
`gateway` (Envoy Gateway, its CRDs and the Gateway), `tls` (cert-manager and the
certificate), `routes` (the HTTPRoutes), `rate_limit` (the API's per-client-IP limit),
`proxy_protocol` (the client's address through the DigitalOcean load balancer) and
`policies` (the namespaces' NetworkPolicies).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from apps.contracts.services import API_PREFIX, API_V1
from infra.components.edge.args import DEFAULT_ENVOY_RESOURCES, ApiPath, EdgeArgs, EdgeScope
from infra.components.edge.gateway import (
    ENVOY_GATEWAY_VERSION,
    ENVOY_METRICS_PORT,
    ENVOY_PROXY_POD_LABELS,
    GATEWAY_CHART,
    create_controller,
    create_envoy_proxy,
    create_gateway,
    create_gateway_class,
    create_gateway_crds,
)
from infra.components.edge.policies import create_network_policies
from infra.components.edge.proxy_protocol import create_proxy_protocol
from infra.components.edge.rate_limit import create_rate_limit
from infra.components.edge.routes import create_routes
from infra.components.edge.tls import (
    CERT_MANAGER_CHART,
    CERT_MANAGER_REPO,
    CERT_MANAGER_VERSION,
    LETS_ENCRYPT_PRODUCTION,
    LETS_ENCRYPT_STAGING,
    create_tls,
)
from infra.components.gateway_api import provider_gateway_api
from infra.components.kube import child_of

__all__ = [
    "CERT_MANAGER_CHART",
    "CERT_MANAGER_REPO",
    "CERT_MANAGER_VERSION",
    "DEFAULT_ENVOY_RESOURCES",
    "ENVOY_GATEWAY_VERSION",
    "ENVOY_METRICS_PORT",
    "ENVOY_PROXY_POD_LABELS",
    "GATEWAY_CHART",
    "LETS_ENCRYPT_PRODUCTION",
    "LETS_ENCRYPT_STAGING",
    "ApiPath",
    "Edge",
    "EdgeArgs",
]

POD_SECURITY_LABELS = {
    # Envoy Gateway's controller, Envoy, certgen, cert-manager and its ACME solver pods all
    # run non-root with no capabilities and the runtime's seccomp profile.
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
    "app.kubernetes.io/part-of": "todo",
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
        _check(args)
        scope = EdgeScope(
            parent=self,
            name=name,
            args=args,
            namespace=self._create_namespace(name, "gateway", args.namespace),
            cert_manager_namespace=(
                self._create_namespace(name, "cert-manager", args.cert_manager_namespace)
                if args.tls
                else pulumi.Output.from_input(args.cert_manager_namespace)
            ),
        )
        self.gateway_crds = create_gateway_crds(scope)
        self.controller = create_controller(scope, self.gateway_crds)
        proxy = create_envoy_proxy(scope, self.gateway_crds)
        # Where the cluster's provider owns the Gateway API CRDs (DOKS), check them first.
        gateway_api_bundle = (
            None if args.install_gateway_api_crds else provider_gateway_api(name, self)
        )
        gateway_class = create_gateway_class(scope, self.gateway_crds, proxy, gateway_api_bundle)
        self.gateway = create_gateway(scope, self.gateway_crds, gateway_class)
        if args.proxy_protocol:
            # The load balancer's half is in the EnvoyProxy (create_envoy_proxy).
            create_proxy_protocol(scope, self.gateway_crds, self.gateway)
        tls_ready = create_tls(scope, self.gateway_crds) if args.tls else []
        api_route = create_routes(scope, self.gateway_crds, self.gateway, tls_ready)
        if args.rate_limit_per_minute is not None:
            create_rate_limit(scope, self.gateway_crds, api_route, args.rate_limit_per_minute)
        create_network_policies(scope)

        scheme = "https" if args.tls else "http"
        self.api_url = pulumi.Output.concat(scheme, "://", args.api_hostname, API_V1)
        self.grafana_url = pulumi.Output.concat(scheme, "://", args.grafana_hostname)
        self.register_outputs({"api_url": self.api_url, "grafana_url": self.grafana_url})

    def _create_namespace(
        self, name: str, role: str, namespace: pulumi.Input[str]
    ) -> pulumi.Output[str]:
        """A platform namespace held to the restricted Pod Security profile."""
        created = k8s.core.v1.Namespace(
            f"{name}-{role}-namespace",
            metadata={"name": namespace, "labels": POD_SECURITY_LABELS},
            opts=child_of(self),
        )
        # The name as an output, so that everything in the namespace waits for it.
        return created.metadata.apply(lambda m: str(m["name"]))


def _check(args: EdgeArgs) -> None:
    """The plain values that shape the resource graph, checked before anything is created."""
    if not all(
        isinstance(flag, bool)
        for flag in (args.tls, args.install_gateway_api_crds, args.proxy_protocol)
    ):
        raise TypeError(
            "EdgeArgs.tls, install_gateway_api_crds and proxy_protocol must be plain booleans"
        )
    if args.proxy_protocol and not (
        isinstance(args.load_balancer_name, str)
        and args.load_balancer_name
        and args.service_type == "LoadBalancer"
    ):
        # Plain values, so that the Service's annotations cannot end up disagreeing with
        # the ClientTrafficPolicy: Envoy would wait for a header nothing in front sends.
        raise ValueError(
            "EdgeArgs.proxy_protocol needs a DigitalOcean load balancer: a plain, non-empty "
            "load_balancer_name and service_type 'LoadBalancer' (else Envoy refuses every "
            "connection, none arriving with a PROXY header)"
        )
    if not isinstance(args.envoy_replicas, int) or args.envoy_replicas < 1:
        raise TypeError("EdgeArgs.envoy_replicas must be a plain integer >= 1")
    for path in args.extra_api_paths:
        if not path.prefix.startswith(f"{API_PREFIX}/") or path.prefix.endswith("/"):
            raise ValueError(
                f"EdgeArgs.extra_api_paths: {path.prefix!r} must lie under {API_PREFIX}/ "
                "and not end with '/'"
            )
