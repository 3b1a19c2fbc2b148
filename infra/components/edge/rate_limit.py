"""The public API's rate limit: an Envoy Gateway BackendTrafficPolicy on its HTTPRoute.

Envoy's local rate limit (`rateLimit.local`, gateway.envoyproxy.io/v1alpha1 as vendored in
infra/k8s-reference/crds/envoy-gateway for the pinned v1.9.0): one rule whose client
selector is `sourceCIDR: {type: Distinct, value: 0.0.0.0/0}`, so every client IP gets its
own bucket of `requests` per Minute. Envoy refills the bucket once a minute, so the
minute's allowance is also the largest burst. Local means per Envoy pod: with N Envoy
replicas a client spread over them could get up to N times the figure.

A limited request gets 429 from Envoy. Envoy's local rate limit adds no `Retry-After`,
so a `responseOverride` on Envoy's own 429s (`source: Local`, so the backends' 429s pass
untouched) sets `Retry-After: 60` (the refill interval: an upper bound) and a JSON body
in the API's error shape.

The client IP is the connection's remote address as Envoy sees it. Behind the
DigitalOcean load balancer (cloud stacks) that is the client's own, because the load
balancer passes it on in a PROXY header that Envoy requires (proxy_protocol.py); a
client's X-Forwarded-For is not believed. On minikube and kind it is whatever reaches
Envoy (the tunnel, a port-forward): local runs share one bucket.
"""

from __future__ import annotations

import json

import pulumi_kubernetes as k8s

from infra.components.edge.args import EdgeScope
from infra.components.edge.gateway import crd_dependent

RETRY_AFTER_SECONDS = 60
LIMITED_BODY = json.dumps(
    {"detail": [{"loc": [], "msg": "too many requests; retry later", "type": "rate_limited"}]}
)


def create_rate_limit(
    scope: EdgeScope,
    crds: k8s.helm.v4.Chart,
    api_route: k8s.apiextensions.CustomResource,
    requests_per_minute: int,
) -> k8s.apiextensions.CustomResource:
    args = scope.args
    return k8s.apiextensions.CustomResource(
        f"{scope.name}-api-rate-limit",
        api_version="gateway.envoyproxy.io/v1alpha1",
        kind="BackendTrafficPolicy",
        metadata={"name": "todo-api-rate-limit", "namespace": args.backend_namespace},
        spec={
            "targetRefs": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "todo-api"}
            ],
            "rateLimit": {
                "local": {
                    "rules": [
                        {
                            "clientSelectors": [
                                {"sourceCIDR": {"type": "Distinct", "value": "0.0.0.0/0"}}
                            ],
                            "limit": {"requests": requests_per_minute, "unit": "Minute"},
                        }
                    ]
                }
            },
            "responseOverride": [
                {
                    "source": "Local",
                    "match": {"statusCodes": [{"type": "Value", "value": 429}]},
                    "response": {
                        "statusCode": 429,
                        "contentType": "application/json",
                        "body": {"type": "Inline", "inline": LIMITED_BODY},
                        "header": {
                            "set": [{"name": "Retry-After", "value": str(RETRY_AFTER_SECONDS)}]
                        },
                    },
                }
            ],
        },
        opts=crd_dependent(scope, crds, api_route),
    )
