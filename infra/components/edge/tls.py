"""TLS for the edge: cert-manager, a Let's Encrypt ClusterIssuer and the Gateway's certificate.

On cloud stacks cert-manager (Helm, with Gateway API support on) gets a certificate for
the API and Grafana hostnames from Let's Encrypt through an HTTP-01 challenge that it
answers with a temporary HTTPRoute on the Gateway's HTTP listener. Everything else on
port 80 is redirected to HTTPS (routes.py): the challenge route matches its exact path,
which Gateway API ranks above the redirect's `/` prefix. Without TLS (minikube) the routes
attach to the HTTP listener and cert-manager is not installed.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.edge.args import EdgeScope
from infra.components.edge.gateway import HTTP_LISTENER, TLS_SECRET, gateway_listener
from infra.components.kube import child_of

CERT_MANAGER_CHART = "cert-manager"
CERT_MANAGER_REPO = "https://charts.jetstack.io"
CERT_MANAGER_VERSION = "v1.21.1"
CERT_MANAGER_RELEASE = "cert-manager"
CLUSTER_ISSUER = "letsencrypt"
CERT_MANAGER_POD_LABELS = {
    "app.kubernetes.io/name": "cert-manager",
    "app.kubernetes.io/instance": CERT_MANAGER_RELEASE,
    "app.kubernetes.io/component": "controller",
}
"""The controller's pods (cert-manager chart templates/deployment.yaml)."""
CERT_MANAGER_API_ONLY_COMPONENTS = ("webhook", "cainjector", "startupapicheck")
"""Pods of the chart that talk to the API server only (its webhook-deployment.yaml,
cainjector-deployment.yaml and startupapicheck-job.yaml label them by component)."""
ACME_SOLVER_POD_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
"""cert-manager's HTTP-01 solver pods (pkg/apis/acme/v1 `SolverIdentificationLabelKey`)."""
ACME_SOLVER_PORT = 8089

LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"

_CERT_MANAGER_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
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


def create_tls(scope: EdgeScope, crds: k8s.helm.v4.Chart) -> list[pulumi.Resource]:
    """cert-manager, the issuer and the certificate; returns what the routes wait for."""
    args = scope.args
    if args.acme_email is None or args.acme_email == "":
        raise ValueError("EdgeArgs.acme_email is required with tls (Let's Encrypt account)")
    cert_manager = k8s.helm.v3.Release(
        f"{scope.name}-cert-manager",
        name=CERT_MANAGER_RELEASE,
        chart=CERT_MANAGER_CHART,
        version=CERT_MANAGER_VERSION,
        repository_opts={"repo": CERT_MANAGER_REPO},
        namespace=scope.cert_manager_namespace,
        values=cert_manager_values(),
        timeout=600,
        atomic=True,
        cleanup_on_fail=True,
        max_history=5,
        # Its Gateway API support checks for the Gateway API CRDs when it starts; on
        # DOKS they are there before anything of ours.
        opts=child_of(scope.parent, depends_on=[crds] if args.install_gateway_api_crds else []),
    )
    issuer = k8s.apiextensions.CustomResource(
        f"{scope.name}-issuer",
        api_version="cert-manager.io/v1",
        kind="ClusterIssuer",
        metadata={"name": CLUSTER_ISSUER},
        spec={
            "acme": {
                "server": LETS_ENCRYPT_STAGING if args.acme_staging else LETS_ENCRYPT_PRODUCTION,
                "email": args.acme_email,
                "privateKeySecretRef": {"name": f"{CLUSTER_ISSUER}-account-key"},
                "solvers": [
                    {
                        "http01": {
                            "gatewayHTTPRoute": {
                                "parentRefs": [gateway_listener(scope, HTTP_LISTENER)]
                            }
                        }
                    }
                ],
            }
        },
        opts=child_of(scope.parent, depends_on=[cert_manager]),
    )
    certificate = k8s.apiextensions.CustomResource(
        f"{scope.name}-certificate",
        api_version="cert-manager.io/v1",
        kind="Certificate",
        metadata={"name": "todo-edge", "namespace": scope.namespace},
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
        opts=child_of(scope.parent, depends_on=[cert_manager, issuer]),
    )
    return [certificate]
