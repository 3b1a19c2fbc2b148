"""The edge's HTTPRoutes: the API, Grafana and (with TLS) the redirect to HTTPS.

Routes live next to their backends (the API route in the apps namespace, Grafana's in the
monitoring namespace), so no ReferenceGrant is needed; the Gateway's listeners admit routes
from exactly those namespaces. The API route forwards only `/api` (to the backend, and the
longer prefixes of the notification and recurring APIs to those services): the services'
internal, binding and metrics routes are never reachable from outside.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from apps.contracts.services import API_PREFIX
from infra.components.edge.args import EdgeScope
from infra.components.edge.gateway import (
    HTTP_LISTENER,
    HTTPS_LISTENER,
    crd_dependent,
    gateway_listener,
)


def create_routes(
    scope: EdgeScope,
    crds: k8s.helm.v4.Chart,
    gateway: k8s.apiextensions.CustomResource,
    tls_ready: list[pulumi.Resource],
) -> k8s.apiextensions.CustomResource:
    """The routes; returns the API's (the rate limit's target)."""
    args = scope.args
    parent = gateway_listener(scope, HTTPS_LISTENER if args.tls else HTTP_LISTENER)
    if args.tls:
        k8s.apiextensions.CustomResource(
            f"{scope.name}-https-redirect",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata={"name": "https-redirect", "namespace": scope.namespace},
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
            opts=crd_dependent(scope, crds, gateway),
        )
    api_route = k8s.apiextensions.CustomResource(
        f"{scope.name}-api-route",
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
        opts=crd_dependent(scope, crds, gateway, *tls_ready),
    )
    k8s.apiextensions.CustomResource(
        f"{scope.name}-grafana-route",
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
        opts=crd_dependent(scope, crds, gateway, *tls_ready),
    )
    return api_route
