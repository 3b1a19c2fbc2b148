"""The Deployment's spec: a hardened pod with the app container and its Dapr sidecar.

The pod runs as a fixed non-root uid with a read-only root filesystem, no capabilities,
no privilege escalation and the runtime's seccomp profile; `/tmp` is an emptyDir. The
Dapr sidecar gets the same treatment through the injector's chart values and the
seccomp annotation.

The pod's ServiceAccount token is not mounted into the app. The sidecar alone gets a
short-lived projected token (`dapr.io/volume-mounts`) for the Kubernetes secret store,
whose Role allows reading only the Secrets the components reference. The built-in
secret store is switched off.
"""

from __future__ import annotations

from typing import Any

import pulumi

from apps.contracts.services import APP_PORT
from infra.components.fastapi_service.args import FastApiServiceArgs
from infra.components.fastapi_service.shutdown import SHUTDOWN
from infra.components.kube import (
    DAPR_POD_LABEL,
    DB_CLIENT_LABEL,
    container_security_context,
    image_pull_secrets,
    pod_security_context,
    resources,
)

SIDECAR_METRICS_PORT = 9090
APP_UID = 10001
KUBE_API_VOLUME = "dapr-kube-api"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def deployment_spec(
    args: FastApiServiceArgs,
    labels: dict[str, str],
    selector: dict[str, str],
    account_name: pulumi.Input[str],
    config_name: pulumi.Input[str],
) -> dict[str, Any]:
    """Rolling updates that never go below capacity; replicas are left to the HPA."""
    spec = args.settings
    pod_labels = {**labels, DAPR_POD_LABEL: "true", DB_CLIENT_LABEL: "true"}
    probe = {"port": "http", "scheme": "HTTP"}
    return {
        "selector": {"matchLabels": selector},
        "revisionHistoryLimit": 5,
        "strategy": {
            "type": "RollingUpdate",
            # Never below the current capacity while a new version starts.
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {"labels": pod_labels, "annotations": _annotations(args)},
            "spec": {
                "serviceAccountName": account_name,
                "automountServiceAccountToken": False,
                **image_pull_secrets(args.image_pull_secret),
                "securityContext": pod_security_context(APP_UID, APP_UID),
                "terminationGracePeriodSeconds": SHUTDOWN.termination_grace,
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": key,
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": selector},
                    }
                    for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
                ],
                "containers": [
                    {
                        "name": "app",
                        "image": args.image,
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [
                            {
                                "name": "http",
                                "containerPort": APP_PORT,
                                "protocol": "TCP",
                            }
                        ],
                        "envFrom": [{"configMapRef": {"name": config_name}}],
                        "env": _env(args),
                        "securityContext": container_security_context(),
                        "resources": resources(
                            spec.resources.cpu_request,
                            spec.resources.memory_request,
                            spec.resources.cpu_limit,
                            spec.resources.memory_limit,
                        ),
                        "startupProbe": {
                            "httpGet": {"path": "/healthz", **probe},
                            "periodSeconds": 2,
                            "failureThreshold": 30,
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", **probe},
                            "periodSeconds": 10,
                            "timeoutSeconds": 2,
                            "failureThreshold": 3,
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/readyz", **probe},
                            "periodSeconds": 5,
                            "timeoutSeconds": 2,
                            "failureThreshold": 3,
                        },
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        # No shell needed: the kubelet sleeps (shutdown.py).
                        "lifecycle": {"preStop": {"sleep": {"seconds": SHUTDOWN.pre_stop}}},
                    }
                ],
                "volumes": [
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    _kube_api_volume(),
                ],
            },
        },
    }


def _annotations(args: FastApiServiceArgs) -> dict[str, pulumi.Input[str]]:
    """The Dapr sidecar's settings, as the injector reads them from the pod."""
    sidecar = args.dapr_sidecar
    return {
        "dapr.io/enabled": "true",
        "dapr.io/app-id": args.app_id,
        "dapr.io/app-port": str(APP_PORT),
        "dapr.io/app-protocol": "http",
        "dapr.io/config": args.dapr_config,
        "dapr.io/app-token-secret": args.app_token_secret,
        "dapr.io/api-token-secret": args.dapr_api_token_secret,
        "dapr.io/log-level": args.dapr_log_level,
        "dapr.io/log-as-json": "true",
        "dapr.io/enable-metrics": "true",
        "dapr.io/metrics-port": str(SIDECAR_METRICS_PORT),
        "dapr.io/enable-app-health-check": "true",
        "dapr.io/app-health-check-path": "/healthz",
        **SHUTDOWN.annotations(),
        "dapr.io/sidecar-cpu-request": sidecar.cpu_request,
        "dapr.io/sidecar-cpu-limit": sidecar.cpu_limit,
        "dapr.io/sidecar-memory-request": sidecar.memory_request,
        "dapr.io/sidecar-memory-limit": sidecar.memory_limit,
        "dapr.io/sidecar-seccomp-profile-type": "RuntimeDefault",
        "dapr.io/disable-builtin-k8s-secret-store": "true",
        "dapr.io/volume-mounts": f"{KUBE_API_VOLUME}:{SERVICE_ACCOUNT_DIR}",
    }


def _env(args: FastApiServiceArgs) -> list[dict[str, Any]]:
    """The app's secrets, each from its Secret."""

    def from_secret(env: str, secret: pulumi.Input[str], key: str) -> dict[str, Any]:
        return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

    direct = (
        [from_secret("DATABASE_DIRECT_URL", args.database_direct_secret, "url")]
        if args.database_direct_secret is not None
        else []
    )
    return [
        from_secret("DATABASE_URL", args.database_secret, "url"),
        *direct,
        from_secret("AUTH_JWT_SECRET", args.auth_secret, "jwt-secret"),
        from_secret("APP_API_TOKEN", args.app_token_secret, "token"),
        from_secret("DAPR_API_TOKEN", args.dapr_api_token_secret, "token"),
    ]


def _kube_api_volume() -> dict[str, Any]:
    """What automounting would give, for the sidecar only, with a one-hour token."""
    return {
        "name": KUBE_API_VOLUME,
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {
                                    "apiVersion": "v1",
                                    "fieldPath": "metadata.namespace",
                                },
                            }
                        ]
                    }
                },
            ],
        },
    }
