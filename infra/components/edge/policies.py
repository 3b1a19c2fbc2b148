"""The fences of the Gateway's namespace (and cert-manager's).

Each namespace's pods talk to each other, resolve names and admit Prometheus; each role
reaches only what it needs: Envoy its routes' backends and its xDS server, the controllers
the API server, cert-manager also the ACME server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from infra.components.edge.args import EdgeScope
from infra.components.edge.gateway import (
    CERTGEN_POD_LABELS,
    ENVOY_CONTAINER_PORTS,
    ENVOY_METRICS_PORT,
    ENVOY_PROXY_POD_LABELS,
    GATEWAY_CONTROLLER_POD_LABELS,
    XDS_PORT,
)
from infra.components.edge.tls import (
    ACME_SOLVER_POD_LABELS,
    ACME_SOLVER_PORT,
    CERT_MANAGER_API_ONLY_COMPONENTS,
    CERT_MANAGER_POD_LABELS,
    CERT_MANAGER_RELEASE,
)
from infra.components.kube import child_of
from infra.components.platform_egress import (
    api_server_egress,
    dns_rule,
    namespace_peer,
    public_internet_rule,
    tcp_ports,
)


def create_network_policies(scope: EdgeScope) -> None:
    """Every namespace's default-deny with its shared paths, then each role's egress."""
    args = scope.args
    prometheus = namespace_peer(args.monitoring_namespace, args.monitoring_pod_labels)
    _network_policy(
        scope,
        f"{scope.name}-allow-envoy",
        namespace=scope.namespace,
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
    )
    namespaces = [("gateway", scope.namespace)]
    if args.tls:
        namespaces.append(("cert-manager", scope.cert_manager_namespace))
        _network_policy(
            scope,
            f"{scope.name}-allow-cert-manager-webhook",
            namespace=scope.cert_manager_namespace,
            policy_name="allow-webhook",
            spec={
                # The API server calls the webhook from outside the pod network.
                "podSelector": {"matchLabels": {"app.kubernetes.io/component": "webhook"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"ports": tcp_ports(10250)}],
            },
        )
    for role, namespace in namespaces:
        _network_policy(
            scope,
            f"{scope.name}-{role}-namespace-policy",
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
        )
    _create_gateway_egress(scope)
    if args.tls:
        _create_cert_manager_egress(scope)


def _create_gateway_egress(scope: EdgeScope) -> None:
    """Envoy reaches its routes' backends and its xDS server; the controller and its
    certgen Job, the API server. The ACME solver pods only answer (DNS is all they get)."""
    args = scope.args
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
    namespace = scope.namespace
    _role_egress(scope, namespace, "envoy", _labels(ENVOY_PROXY_POD_LABELS), envoy_rules)
    _role_egress(
        scope,
        namespace,
        "envoy-gateway",
        _labels(GATEWAY_CONTROLLER_POD_LABELS),
        api_server=True,
    )
    # gateway-helm templates/certgen.yaml: the pre-install Job writing the xDS TLS Secrets.
    _role_egress(scope, namespace, "certgen", _labels(CERTGEN_POD_LABELS), api_server=True)


def _create_cert_manager_egress(scope: EdgeScope) -> None:
    """The controller reaches the API server, the ACME server and its HTTP-01 self-check;
    the webhook, cainjector and startupapicheck Job, the API server only."""
    namespace = scope.cert_manager_namespace
    rules: list[dict[str, Any]] = [
        # The ACME directory (HTTPS) and the self-check, an HTTP GET of the challenge URL
        # at the Gateway's public address. cert-manager's own chart opens the same ports
        # (values.yaml `networkPolicy.egress`: 80, 443, DNS).
        public_internet_rule(80, 443),
    ]
    if not scope.args.proxy_protocol:
        # In-cluster clients of a LoadBalancer's address never reach the load balancer:
        # the node's service proxy sends them straight to a backend pod
        # (kubernetes/kubernetes#66607, DigitalOcean's note there; Cilium's kube-proxy
        # replacement on DOKS does the same), so the self-check lands on Envoy's HTTP
        # container port. Not with PROXY protocol: the Service then shows a hostname,
        # not the address (gateway.py, proxy_protocol_annotations), and the self-check
        # goes out through the load balancer like any client (the rule above).
        rules.append(
            {
                "to": [namespace_peer(scope.namespace, ENVOY_PROXY_POD_LABELS)],
                "ports": tcp_ports(ENVOY_CONTAINER_PORTS[0]),
            }
        )
    _role_egress(
        scope, namespace, "cert-manager", _labels(CERT_MANAGER_POD_LABELS), rules, api_server=True
    )
    _role_egress(
        scope,
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
    scope: EdgeScope,
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
                f"{scope.name}-{role}-api-server",
                scope.args.api_server,
                namespace=namespace,
                role=role,
                pod_selector=selector,
                opts=child_of(scope.parent),
            ),
        ]
    if not rules:
        return  # the Cilium policy is all this role gets
    _network_policy(
        scope,
        f"{scope.name}-{role}-egress",
        namespace=namespace,
        policy_name=f"{role}-egress",
        spec={"podSelector": selector, "policyTypes": ["Egress"], "egress": rules},
    )


def _labels(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"matchLabels": dict(labels)}


def _network_policy(
    scope: EdgeScope,
    resource_name: str,
    *,
    namespace: pulumi.Input[str],
    policy_name: str,
    spec: dict[str, Any],
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
        opts=child_of(scope.parent),
    )
