"""inCluster mode: a hardened single-replica PostgreSQL StatefulSet (minikube, kind).

Passwords come from RandomPassword; an init script creates the app role and its database
on the first start, so the app role owns its database.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.database.args import DatabaseArgs, Source
from infra.components.kube import (
    child_of,
    container_security_context,
    labels,
    pod_security_context,
    resources,
)
from infra.settings import IN_CLUSTER_DATABASE_PORT, InClusterDatabase

IN_CLUSTER_PORT = IN_CLUSTER_DATABASE_PORT
POSTGRES_UID = 70  # the postgres user of the official Alpine images
# checkov's per-object skip: the image's own user owns the data directory.
LOW_UID_REASON = {
    "checkov.io/skip1": (
        "CKV_K8S_40=the official PostgreSQL image runs as its built-in postgres user (UID 70)"
    )
}


def create_in_cluster(
    parent: pulumi.Resource, name: str, args: DatabaseArgs, settings: InClusterDatabase
) -> Source:
    """The server's credentials, init script, Service and StatefulSet; the app's URL."""
    admin_password = random.RandomPassword(
        f"{name}-admin-password", length=32, special=False, opts=child_of(parent)
    )
    app_password = random.RandomPassword(
        f"{name}-app-password", length=32, special=False, opts=child_of(parent)
    )
    server_labels = labels("postgresql", "database")
    selector = {"app.kubernetes.io/name": "postgresql"}
    credentials = k8s.core.v1.Secret(
        f"{name}-server-credentials",
        metadata=cast(Any, {"namespace": args.namespace, "labels": server_labels}),
        type="Opaque",
        string_data=cast(
            Any,
            {
                "POSTGRES_PASSWORD": admin_password.result,
                "APP_PASSWORD": app_password.result,
            },
        ),
        opts=child_of(parent),
    )
    init = k8s.core.v1.ConfigMap(
        f"{name}-init",
        metadata=cast(Any, {"namespace": args.namespace, "labels": server_labels}),
        data=cast(Any, {"10-app-role.sh": _init_script(args.user_name, args.database_name)}),
        opts=child_of(parent),
    )
    service = k8s.core.v1.Service(
        f"{name}-service",
        metadata=cast(
            Any, {"name": "postgresql", "namespace": args.namespace, "labels": server_labels}
        ),
        spec=cast(
            Any,
            {
                "clusterIP": "None",
                "selector": selector,
                "ports": [{"name": "postgres", "port": IN_CLUSTER_PORT, "targetPort": "postgres"}],
            },
        ),
        opts=child_of(parent),
    )
    statefulset = _create_statefulset(
        parent, name, args, settings, service, credentials, init, server_labels, selector
    )
    host = service.metadata.apply(lambda m: f"{m['name']}.{m['namespace']}.svc.cluster.local")
    url: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(app_password.result, host).apply(
            lambda v: (
                f"postgresql://{args.user_name}:{quote(str(v[0]), safe='')}"
                f"@{v[1]}:{IN_CLUSTER_PORT}/{args.database_name}"
            )
        )
    )
    return Source(url=url, ports=(IN_CLUSTER_PORT,), ready=[statefulset])


def _create_statefulset(
    parent: pulumi.Resource,
    name: str,
    args: DatabaseArgs,
    settings: InClusterDatabase,
    service: k8s.core.v1.Service,
    credentials: k8s.core.v1.Secret,
    init: k8s.core.v1.ConfigMap,
    server_labels: dict[str, str],
    selector: dict[str, str],
) -> k8s.apps.v1.StatefulSet:
    secret_name = credentials.metadata.apply(lambda m: m["name"])
    probe_command = ["pg_isready", "--host=127.0.0.1", f"--port={IN_CLUSTER_PORT}"]
    return k8s.apps.v1.StatefulSet(
        f"{name}-server",
        metadata=cast(
            Any,
            {
                "name": "postgresql",
                "namespace": args.namespace,
                "labels": server_labels,
                "annotations": LOW_UID_REASON,
            },
        ),
        spec=cast(
            Any,
            {
                "serviceName": service.metadata.apply(lambda m: m["name"]),
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": server_labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": pod_security_context(POSTGRES_UID, POSTGRES_UID),
                        "terminationGracePeriodSeconds": 60,
                        "containers": [
                            {
                                "name": "postgres",
                                "image": settings.image,
                                "imagePullPolicy": "IfNotPresent",
                                "ports": [{"name": "postgres", "containerPort": IN_CLUSTER_PORT}],
                                "env": [
                                    {"name": "POSTGRES_USER", "value": "postgres"},
                                    {
                                        "name": "POSTGRES_PASSWORD",
                                        "valueFrom": {
                                            "secretKeyRef": {
                                                "name": secret_name,
                                                "key": "POSTGRES_PASSWORD",
                                            }
                                        },
                                    },
                                    {
                                        "name": "APP_PASSWORD",
                                        "valueFrom": {
                                            "secretKeyRef": {
                                                "name": secret_name,
                                                "key": "APP_PASSWORD",
                                            }
                                        },
                                    },
                                    # A subdirectory: the volume root holds lost+found.
                                    {
                                        "name": "PGDATA",
                                        "value": "/var/lib/postgresql/data/pgdata",
                                    },
                                ],
                                "securityContext": container_security_context(),
                                "resources": resources(
                                    settings.resources.cpu_request,
                                    settings.resources.memory_request,
                                    settings.resources.cpu_limit,
                                    settings.resources.memory_limit,
                                ),
                                "startupProbe": {
                                    "exec": {"command": probe_command},
                                    "periodSeconds": 5,
                                    "failureThreshold": 60,
                                },
                                "readinessProbe": {
                                    "exec": {"command": probe_command},
                                    "periodSeconds": 10,
                                },
                                "livenessProbe": {
                                    "exec": {"command": probe_command},
                                    "periodSeconds": 20,
                                    "failureThreshold": 6,
                                },
                                "volumeMounts": [
                                    {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                                    {"name": "run", "mountPath": "/var/run/postgresql"},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                    {
                                        "name": "init",
                                        "mountPath": "/docker-entrypoint-initdb.d",
                                        "readOnly": True,
                                    },
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "run", "emptyDir": {"sizeLimit": "16Mi"}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                            {
                                "name": "init",
                                "configMap": {
                                    "name": init.metadata.apply(lambda m: m["name"]),
                                    "defaultMode": 0o444,
                                },
                            },
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data", "labels": server_labels},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": settings.storage}},
                        },
                    }
                ],
            },
        ),
        opts=child_of(parent),
    )


def _init_script(user: str, database: str) -> str:
    """Creates the app role and its database on first start (the image runs it once)."""
    return (
        "#!/bin/sh\n"
        "# Runs once, on an empty data directory: the app role owns its database.\n"
        "set -eu\n"
        'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres '
        "--set=app_password=\"$APP_PASSWORD\" <<'SQL'\n"
        f"CREATE ROLE \"{user}\" LOGIN PASSWORD :'app_password';\n"
        f'CREATE DATABASE "{database}" OWNER "{user}";\n'
        "SQL\n"
    )
