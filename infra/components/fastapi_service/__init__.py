"""One FastAPI service with its Dapr sidecar: the unit the three apps are deployed as.

The pod (pod.py) is hardened and its ServiceAccount token reaches the sidecar only; the
service's own network paths are in policies.py.

Replicas belong to the HPA (the Deployment leaves `replicas` unset, so a deploy never
resets a scaled-out service); a PodDisruptionBudget keeps one pod through node drains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from apps.contracts.services import APP_PORT
from infra.components.fastapi_service.args import FastApiServiceArgs, OtlpExport
from infra.components.fastapi_service.pod import deployment_spec
from infra.components.fastapi_service.policies import create_network_policies
from infra.components.fastapi_service.shutdown import SHUTDOWN
from infra.components.kube import KubernetesObject, child_of, labels

__all__ = ["FastApiService", "FastApiServiceArgs", "OtlpExport"]


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
                    **({"DB_TRANSACTION_POOLING": "true"} if args.transaction_pooling else {}),
                    **SHUTDOWN.app_env(),
                    **(args.otlp.app_env(args.app_id) if args.otlp is not None else {}),
                    **args.extra_env,
                },
            ),
            opts=child_of(self),
        )
        deployment = self._create_deployment(account, config)
        service = self._create_service()
        self._create_autoscaling(deployment)
        create_network_policies(self, name, args, self._labels, self._selector)
        if args.service_monitor_after is not None:
            self._create_service_monitor(args.service_monitor_after)
        self.service_name = service.metadata.apply(lambda m: m["name"])
        self.url = service.metadata.apply(
            lambda m: f"http://{m['name']}.{m['namespace']}.svc.cluster.local:{APP_PORT}"
        )
        self.register_outputs({"service_name": self.service_name, "url": self.url})

    def _create_deployment(
        self, account: k8s.core.v1.ServiceAccount, config: k8s.core.v1.ConfigMap
    ) -> k8s.apps.v1.Deployment:
        args = self._args
        spec = deployment_spec(
            args,
            self._labels,
            self._selector,
            account_name=account.metadata.apply(lambda m: m["name"]),
            config_name=config.metadata.apply(lambda m: m["name"]),
        )
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=cast(
                Any, {"name": args.app_id, "namespace": args.namespace, "labels": self._labels}
            ),
            spec=cast(Any, spec),
            opts=child_of(self, depends_on=list(args.depends_on)),
        )

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
