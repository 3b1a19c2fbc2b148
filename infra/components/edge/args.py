"""The edge's inputs, and the scope its builders (gateway, routes, TLS, policies) share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.components.cluster import ApiServerAccess

DEFAULT_ENVOY_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
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
    acme_email: pulumi.Input[str] | None = None
    """Contact address for the Let's Encrypt account (required with `tls`)."""
    acme_staging: bool = False
    """Use Let's Encrypt's staging directory (no rate limits, untrusted certificates)."""
    service_type: pulumi.Input[str] = "LoadBalancer"
    """Type of the Envoy Service: `LoadBalancer` (one DO load balancer, or `minikube tunnel`)
    or `NodePort`."""
    load_balancer_name: pulumi.Input[str] | None = None
    """Name of the DigitalOcean load balancer; None where no DigitalOcean load balancer backs
    the Service (minikube), which then gets no DigitalOcean annotations either."""
    proxy_protocol: bool = False
    """PROXY protocol from the DigitalOcean load balancer to Envoy, so that Envoy sees (and
    rate-limits) the client's address: the load balancer's annotations and a
    ClientTrafficPolicy that makes Envoy's listeners require it, always both. Needs a
    `load_balancer_name` and `service_type` LoadBalancer, as plain values (nothing else in
    front of Envoy sends the header). Shapes the resource graph, so it must be a plain
    value."""
    envoy_replicas: int = 1
    """Envoy proxy replicas; with more than one they spread over nodes and keep a
    PodDisruptionBudget of one. Shapes the proxy's spec, so it is a plain value."""
    rate_limit_per_minute: int | None = None
    """Requests a client IP may send the API a minute (per Envoy pod); None: no limit."""
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


@dataclass(frozen=True)
class EdgeScope:
    """What every builder of the edge needs: the component, its inputs and namespaces."""

    parent: pulumi.Resource
    """The Edge component: every child's parent."""
    name: str
    """The component's name, the prefix of every child's name."""
    args: EdgeArgs
    """The component's inputs."""
    namespace: pulumi.Output[str]
    """The Gateway's namespace, once created."""
    cert_manager_namespace: pulumi.Output[str]
    """cert-manager's namespace (created only with TLS)."""
