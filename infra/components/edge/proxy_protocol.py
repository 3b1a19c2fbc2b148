"""PROXY protocol from the DigitalOcean load balancer to Envoy: the client's own address.

A DigitalOcean load balancer forwards TCP connections as its own: without PROXY
protocol Envoy sees every client as a load balancer node, so the API's per-client-IP rate
limit (rate_limit.py) would be shared by everyone behind the same node. With it, the load
balancer opens each connection with a PROXY header holding the client's address, and
Envoy takes that as the connection's remote (downstream) address.

Both ends change together, or no connection gets through: Envoy refuses one without the
header, and reads a header it does not expect as a malformed request. The load balancer's
annotations (gateway.py, `proxy_protocol_annotations`) and the ClientTrafficPolicy here
both follow the one plain `EdgeArgs.proxy_protocol`, which the program sets exactly where
the Envoy Service is a DigitalOcean load balancer (the cloud stacks); minikube and kind
have neither, nothing in front of Envoy there speaking the protocol.

The policy targets the whole Gateway: the load balancer sends the header on every
forwarding rule, so both listeners (HTTP and HTTPS) expect it. `proxyProtocol: {}` is
Envoy Gateway v1.9.0's field (api/v1alpha1/clienttrafficpolicy_types.go,
`ProxyProtocolSettings`; the CRD vendored in infra/k8s-reference/crds/envoy-gateway):
it adds Envoy's proxy_protocol listener filter, and without `optional` a connection that
does not start with the header is closed (internal/gatewayapi/clienttrafficpolicy.go,
internal/xds/translator/proxy_protocol.go). The older `enableProxyProtocol: true` does the
same but is deprecated ("Deprecated: Use ProxyProtocol instead" in the API types, and
reported as such in the policy's status). `optional`
stays off: it would let a load balancer that stopped sending the header go unnoticed,
every client sharing a bucket again.

No `clientIPDetection`. Without it Envoy Gateway keeps Envoy's `use_remote_address: true`
with no trusted X-Forwarded-For hops (internal/xds/translator/listener.go), so the address
the rate limit keys on (`%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`,
internal/xds/translator/ratelimit.go) is the connection's, that is the PROXY header's
source, and an X-Forwarded-For sent by the client is never believed (Envoy appends the
address it found). Trusting X-Forwarded-For hops would let any client choose its bucket.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

from infra.components.edge.args import EdgeScope
from infra.components.edge.gateway import GATEWAY_NAME, crd_dependent


def create_proxy_protocol(
    scope: EdgeScope,
    crds: k8s.helm.v4.Chart,
    gateway: k8s.apiextensions.CustomResource,
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        f"{scope.name}-proxy-protocol",
        api_version="gateway.envoyproxy.io/v1alpha1",
        kind="ClientTrafficPolicy",
        # A ClientTrafficPolicy attaches only to a Gateway in its own namespace.
        metadata={"name": "todo-proxy-protocol", "namespace": scope.namespace},
        spec={
            "targetRefs": [
                {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME}
            ],
            # Required, not optional: see the module docstring. Envoy Gateway v1.9.0
            # ClientTrafficPolicySpec.ProxyProtocol (api/v1alpha1/clienttrafficpolicy_types.go).
            "proxyProtocol": {},
        },
        opts=crd_dependent(scope, crds, gateway),
    )
