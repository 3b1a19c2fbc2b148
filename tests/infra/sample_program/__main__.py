"""A small but complete program for testing the plan machinery without the real one.

One DOKS cluster, a Kubernetes provider built from its kubeconfig, a component with a
hardened Dapr-enabled Deployment (Secret from a RandomPassword, Service, HPA, PDB), the
Dapr and Strimzi Helm releases, and custom resources that wait for them.
"""

from typing import Any, cast

import pulumi
import pulumi_digitalocean as digitalocean
import pulumi_kubernetes as k8s
import pulumi_random as random

config = pulumi.Config()
replicas = config.get_int("replicas") or 2

cluster = digitalocean.KubernetesCluster(
    "cluster",
    name=f"todo-{pulumi.get_stack()}",
    region="fra1",
    version="1.34.1-do.0",
    ha=config.get_bool("ha") or False,
    node_pool={
        "name": "pool",
        "size": "s-2vcpu-4gb",
        "auto_scale": True,
        "min_nodes": 2,
        "max_nodes": 4,
    },
)
provider = k8s.Provider(
    "k8s", kubeconfig=cluster.kube_configs.apply(lambda configs: configs[0]["raw_config"])
)
on_cluster = pulumi.ResourceOptions(provider=provider)

dapr = k8s.helm.v3.Release(
    "dapr",
    name="dapr",
    chart="dapr",
    version="1.18.3",
    namespace="dapr-system",
    create_namespace=True,
    repository_opts={"repo": "https://dapr.github.io/helm-charts"},
    values={
        "global": {"ha": {"enabled": True}},
        "dapr_operator": {"resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}},
    },
    opts=on_cluster,
)
strimzi = k8s.helm.v3.Release(
    "strimzi",
    name="strimzi",
    chart="strimzi-kafka-operator",
    version="1.2.0",
    namespace="kafka",
    repository_opts={"repo": "https://strimzi.io/charts/"},
    values={"watchAnyNamespace": True},
    opts=on_cluster,
)


class App(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("todo:test:App", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        password = random.RandomPassword(
            f"{name}-password", length=24, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        secret = k8s.core.v1.Secret(
            f"{name}-env",
            metadata={"name": f"{name}-env", "namespace": "todo"},
            string_data={
                "DATABASE_URL": password.result.apply(lambda p: f"postgresql://todo:{p}@db/todo")
            },
            opts=child,
        )
        labels = {"app.kubernetes.io/name": name}
        context = {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        probe = {"httpGet": {"path": "/healthz", "port": 8000}}
        k8s.apps.v1.Deployment(
            name,
            metadata={"name": name, "namespace": "todo"},
            spec=cast(
                Any,
                {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {
                            "labels": labels,
                            "annotations": {
                                "dapr.io/enabled": "true",
                                "dapr.io/app-id": name,
                                "dapr.io/sidecar-cpu-request": "50m",
                                "dapr.io/sidecar-memory-request": "64Mi",
                                "dapr.io/sidecar-cpu-limit": "300m",
                                "dapr.io/sidecar-memory-limit": "256Mi",
                                "dapr.io/sidecar-seccomp-profile-type": "RuntimeDefault",
                            },
                        },
                        "spec": {
                            "initContainers": [
                                {
                                    "name": "wait",
                                    "image": "ghcr.io/todo/backend:1.0.0",
                                    "securityContext": context,
                                    "resources": {
                                        "requests": {"cpu": "500m", "memory": "32Mi"},
                                        "limits": {"cpu": "500m", "memory": "32Mi"},
                                    },
                                }
                            ],
                            "containers": [
                                {
                                    "name": "app",
                                    "image": "ghcr.io/todo/backend:1.0.0",
                                    "securityContext": context,
                                    "envFrom": [{"secretRef": {"name": f"{name}-env"}}],
                                    "readinessProbe": probe,
                                    "livenessProbe": probe,
                                    "resources": {
                                        "requests": {"cpu": "100m", "memory": "128Mi"},
                                        "limits": {"cpu": "500m", "memory": "256Mi"},
                                    },
                                }
                            ],
                        },
                    },
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[secret, dapr]),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={"name": name, "namespace": "todo"},
            spec=cast(Any, {"minAvailable": 1, "selector": {"matchLabels": labels}}),
            opts=child,
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata={"name": name, "namespace": "todo"},
            spec=cast(
                Any,
                {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": 3,
                    "maxReplicas": 5,
                },
            ),
            opts=child,
        )
        self.register_outputs({})


App("backend")

k8s.apiextensions.CustomResource(
    "pubsub",
    api_version="dapr.io/v1alpha1",
    kind="Component",
    metadata={"name": "pubsub", "namespace": "todo"},
    spec={
        "type": "pubsub.kafka",
        "version": "v1",
        "metadata": [{"name": "brokers", "value": "todo-kafka-bootstrap.kafka:9092"}],
    },
    opts=pulumi.ResourceOptions(provider=provider, depends_on=[dapr]),
)
k8s.apiextensions.CustomResource(
    "broker",
    api_version="kafka.strimzi.io/v1",
    kind="KafkaNodePool",
    metadata={"name": "broker", "namespace": "kafka", "labels": {"strimzi.io/cluster": "todo"}},
    spec={
        "replicas": 3,
        "roles": ["broker"],
        "storage": {"type": "persistent-claim", "size": "20Gi"},
        "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}},
    },
    opts=pulumi.ResourceOptions(provider=provider, depends_on=[strimzi]),
)
pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kube_configs))
pulumi.export("cluster", cluster.name)
