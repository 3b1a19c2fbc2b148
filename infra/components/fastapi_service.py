"""One FastAPI service with its Dapr sidecar: the unit the three apps are deployed as.

The pod runs as a fixed non-root uid with a read-only root filesystem, no capabilities,
no privilege escalation and the runtime's seccomp profile; `/tmp` is an emptyDir. The
Dapr sidecar gets the same treatment through the injector's chart values and the
seccomp annotation.

The pod's ServiceAccount token is not mounted into the app. The sidecar alone gets a
short-lived projected token (`dapr.io/volume-mounts`) for the Kubernetes secret store,
whose Role allows reading only the Secrets the components reference. The built-in
secret store is switched off.

Replicas belong to the HPA (the Deployment leaves `replicas` unset, so a deploy never
resets a scaled-out service); a PodDisruptionBudget keeps one pod through node drains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from apps.contracts.services import APP_PORT, Role
from infra.components.kube import (
    DAPR_POD_LABEL,
    DB_CLIENT_LABEL,
    KubernetesObject,
    child_of,
    container_security_context,
    image_pull_secrets,
    labels,
    pod_security_context,
    resources,
)
from infra.settings import Resources, ServiceSettings

SIDECAR_METRICS_PORT = 9090
APP_UID = 10001
KUBE_API_VOLUME = "dapr-kube-api"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]


@dataclass(frozen=True)
class FastApiServiceArgs:
    """One service: image, scaling, Dapr wiring, secrets and network paths."""

    app_id: str
    """Dapr app id and Kubernetes name (`backend`, `notification`, `recurring`)."""
    role: Role
    """What the service is for (its `app.kubernetes.io/component` label)."""
    namespace: pulumi.Input[str]
    """The apps namespace."""
    image: str
    """Pinned image reference (tag, optionally with digest)."""
    settings: ServiceSettings
    """Replicas, autoscaling target and resources."""
    app_env: str
    """APP_ENV (`dev`, `test`, `staging`, `prod`)."""
    log_level: str
    """LOG_LEVEL."""
    dapr_config: str
    """Dapr Configuration name (`dapr.io/config`)."""
    dapr_sidecar: Resources
    """Sidecar requests and limits."""
    dapr_log_level: str
    """Sidecar log level."""
    database_secret: pulumi.Input[str]
    """Secret with key `url` (DATABASE_URL)."""
    auth_secret: pulumi.Input[str]
    """Secret with key `jwt-secret` (AUTH_JWT_SECRET)."""
    app_token_secret: pulumi.Input[str]
    """Secret with key `token` (APP_API_TOKEN; Dapr sends it to the app)."""
    dapr_api_token_secret: pulumi.Input[str]
    """Secret with key `token` (DAPR_API_TOKEN; the app sends it to Dapr)."""
    monitoring_namespace: pulumi.Input[str] | None = None
    """Prometheus's namespace, allowed to scrape the app and its sidecar."""
    monitoring_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of the Prometheus pods in that namespace; empty admits the whole namespace."""
    ingress_namespaces: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    """Namespaces allowed to call the app's port (the gateway, for public APIs)."""
    ingress_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of the calling pods there (the Envoy proxies); empty admits whole namespaces."""
    public_egress_ports: Sequence[int] = field(default_factory=tuple)
    """Ports the app may call on public addresses (webhooks); never private ranges."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """More plain settings for the ConfigMap."""
    image_pull_secret: pulumi.Input[str] | None = None
    """Secret for a private registry (`imagePullSecrets`); None for public images."""
    service_monitor_after: Sequence[pulumi.Resource] | None = None
    """The release that installs the ServiceMonitor CRD; None = no ServiceMonitor."""
    service_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels Prometheus selects ServiceMonitors by."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What must be ready before pods start (migrations, Kafka topics, Dapr resources)."""


class FastApiService(pulumi.ComponentResource):
    """Deployment, Service, autoscaling, disruption budget, policies and scraping."""

    service_name: pulumi.Output[str]
    """The Service's name (port 8000, named `http`)."""
    url: pulumi.Output[str]
    """In-cluster URL of the service."""

    def __init__(
        self, name: str, args: FastApiServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:fastapi_service:FastApiService", name, None, opts)
        self._name = name
        self._args = args
        self._labels = labels(args.app_id, args.role.value)
        self._selector = {"app.kubernetes.io/name": args.app_id}
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata=cast(
                Any, {"name": args.app_id, "namespace": args.namespace, "labels": self._labels}
            ),
            automount_service_account_token=False,
            opts=child_of(self),
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=cast(Any, {"namespace": args.namespace, "labels": self._labels}),
            data=cast(
                Any,
                {
                    "APP_ENV": args.app_env,
                    "LOG_LEVEL": args.log_level,
                    "DB_POOL_SIZE": str(args.settings.db_pool_size),
                    **args.extra_env,
                },
            ),
            opts=child_of(self),
        )
        deployment = self._create_deployment(account, config)
        service = self._create_service()
        self._create_autoscaling(deployment)
        self._create_network_policies()
        if args.service_monitor_after is not None:
            self._create_service_monitor(args.service_monitor_after)
        self.service_name = service.metadata.apply(lambda m: m["name"])
        self.url = service.metadata.apply(
            lambda m: f"http://{m['name']}.{m['namespace']}.svc.cluster.local:{APP_PORT}"
        )
        self.register_outputs({"service_name": self.service_name, "url": self.url})

    def _annotations(self) -> dict[str, pulumi.Input[str]]:
        args = self._args
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
            "dapr.io/graceful-shutdown-seconds": "20",
            "dapr.io/sidecar-cpu-request": sidecar.cpu_request,
            "dapr.io/sidecar-cpu-limit": sidecar.cpu_limit,
            "dapr.io/sidecar-memory-request": sidecar.memory_request,
            "dapr.io/sidecar-memory-limit": sidecar.memory_limit,
            "dapr.io/sidecar-seccomp-profile-type": "RuntimeDefault",
            "dapr.io/disable-builtin-k8s-secret-store": "true",
            "dapr.io/volume-mounts": f"{KUBE_API_VOLUME}:{SERVICE_ACCOUNT_DIR}",
        }

    def _env(self) -> list[dict[str, Any]]:
        args = self._args

        def from_secret(env: str, secret: pulumi.Input[str], key: str) -> dict[str, Any]:
            return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

        return [
            from_secret("DATABASE_URL", args.database_secret, "url"),
            from_secret("AUTH_JWT_SECRET", args.auth_secret, "jwt-secret"),
            from_secret("APP_API_TOKEN", args.app_token_secret, "token"),
            from_secret("DAPR_API_TOKEN", args.dapr_api_token_secret, "token"),
        ]

    def _create_deployment(
        self, account: k8s.core.v1.ServiceAccount, config: k8s.core.v1.ConfigMap
    ) -> k8s.apps.v1.Deployment:
        args = self._args
        spec = args.settings
        pod_labels = {**self._labels, DAPR_POD_LABEL: "true", DB_CLIENT_LABEL: "true"}
        probe = {"port": "http", "scheme": "HTTP"}
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=cast(
                Any, {"name": args.app_id, "namespace": args.namespace, "labels": self._labels}
            ),
            spec=cast(
                Any,
                {
                    "selector": {"matchLabels": self._selector},
                    "revisionHistoryLimit": 5,
                    "strategy": {
                        "type": "RollingUpdate",
                        # Never below the current capacity while a new version starts.
                        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
                    },
                    "template": {
                        "metadata": {"labels": pod_labels, "annotations": self._annotations()},
                        "spec": {
                            "serviceAccountName": account.metadata.apply(lambda m: m["name"]),
                            "automountServiceAccountToken": False,
                            **image_pull_secrets(args.image_pull_secret),
                            "securityContext": pod_security_context(APP_UID, APP_UID),
                            "terminationGracePeriodSeconds": 30,
                            "topologySpreadConstraints": [
                                {
                                    "maxSkew": 1,
                                    "topologyKey": key,
                                    "whenUnsatisfiable": "ScheduleAnyway",
                                    "labelSelector": {"matchLabels": self._selector},
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
                                    "envFrom": [
                                        {
                                            "configMapRef": {
                                                "name": config.metadata.apply(lambda m: m["name"])
                                            }
                                        }
                                    ],
                                    "env": self._env(),
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
                                }
                            ],
                            "volumes": [
                                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                                self._kube_api_volume(),
                            ],
                        },
                    },
                },
            ),
            opts=child_of(self, depends_on=list(args.depends_on)),
        )

    @staticmethod
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

    def _create_service(self) -> k8s.core.v1.Service:
        args = self._args
        return k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=cast(
                Any, {"name": args.app_id, "namespace": args.namespace, "labels": self._labels}
            ),
            spec=cast(
                Any,
                {
                    "type": "ClusterIP",
                    "selector": self._selector,
                    "ports": [
                        {"name": "http", "port": APP_PORT, "targetPort": "http", "protocol": "TCP"}
                    ],
                },
            ),
            opts=child_of(self),
        )

    def _create_autoscaling(self, deployment: k8s.apps.v1.Deployment) -> None:
        args = self._args
        spec = args.settings
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-hpa",
            metadata=cast(
                Any, {"name": args.app_id, "namespace": args.namespace, "labels": self._labels}
            ),
            spec=cast(
                Any,
                {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": deployment.metadata.apply(lambda m: m["name"]),
                    },
                    "minReplicas": spec.min_replicas,
                    "maxReplicas": spec.max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {
                                    "type": "Utilization",
                                    "averageUtilization": spec.target_cpu_utilization,
                                },
                            },
                        }
                    ],
                    # Scale down slowly: consumers rebalance partitions on every change.
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
                },
            ),
            opts=child_of(self),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-pdb",
            metadata=cast(
                Any, {"name": args.app_id, "namespace": args.namespace, "labels": self._labels}
            ),
            spec=cast(
                Any,
                {
                    "selector": {"matchLabels": self._selector},
                    "maxUnavailable": 1,
                    "unhealthyPodEvictionPolicy": "AlwaysAllow",
                },
            ),
            opts=child_of(self),
        )

    def _create_network_policies(self) -> None:
        args = self._args
        peers: list[dict[str, Any]] = []
        if args.monitoring_namespace is not None:
            peers.append(
                {
                    "from": [
                        _namespace_peer(args.monitoring_namespace, args.monitoring_pod_labels)
                    ],
                    "ports": _ports(APP_PORT, SIDECAR_METRICS_PORT),
                }
            )
        if args.ingress_namespaces:
            peers.append(
                {
                    "from": [
                        _namespace_peer(ns, args.ingress_pod_labels)
                        for ns in args.ingress_namespaces
                    ],
                    "ports": _ports(APP_PORT),
                }
            )
        if peers:
            self._network_policy("ingress", "Ingress", peers)
        if args.public_egress_ports:
            public = {"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}
            self._network_policy(
                "public-egress",
                "Egress",
                [{"to": [public], "ports": _ports(*args.public_egress_ports)}],
            )

    def _network_policy(self, role: str, policy_type: str, rules: list[dict[str, Any]]) -> None:
        """A NetworkPolicy `<app id>-<role>` for this app's pods: `rules` in one direction."""
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-{role}",
            metadata=cast(
                Any,
                {
                    "name": f"{self._args.app_id}-{role}",
                    "namespace": self._args.namespace,
                    "labels": self._labels,
                },
            ),
            spec=cast(
                Any,
                {
                    "podSelector": {"matchLabels": self._selector},
                    "policyTypes": [policy_type],
                    policy_type.lower(): rules,
                },
            ),
            opts=child_of(self),
        )

    def _create_service_monitor(self, after: Sequence[pulumi.Resource]) -> None:
        args = self._args
        KubernetesObject(
            f"{self._name}-monitor",
            "monitoring.coreos.com/v1",
            "ServiceMonitor",
            metadata={
                "name": args.app_id,
                "namespace": args.namespace,
                "labels": {**self._labels, **args.service_monitor_labels},
            },
            spec={
                "selector": {"matchLabels": self._selector},
                "namespaceSelector": {"matchNames": [args.namespace]},
                "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
            },
            # The CRD comes with kube-prometheus-stack's release.
            opts=child_of(self, depends_on=list(after)),
        )


def _ports(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _namespace_peer(namespace: pulumi.Input[str], pods: Mapping[str, str]) -> dict[str, Any]:
    """Pods of one namespace: those with `pods` labels, or all of them when it is empty."""
    peer: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    if pods:
        peer["podSelector"] = {"matchLabels": dict(pods)}
    return peer
