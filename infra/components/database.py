"""PostgreSQL for the services, and the Kubernetes Secret that carries its URL.

Four sources, one result (a Secret with key `url` holding a `postgresql://` URL):

- managed: a DigitalOcean cluster in the stack's VPC (standby nodes when `nodeCount` > 1),
  a database and a user, a firewall that admits only the DOKS cluster, private URI.
- shared: a database and user of their own on a base stack's managed cluster
  (ephemeral stacks).
- inCluster: a hardened single-replica StatefulSet (minikube), passwords from
  RandomPassword.
- external: a URL from the secret config key `todo:databaseUrl`.

On a managed cluster the database belongs to `doadmin`, and since PostgreSQL 15 other
users may not create objects in its `public` schema; a one-off Job run as the admin
grants the app user USAGE and CREATE there, so migrations can create tables that the
app user then owns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlsplit, urlunsplit

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.kube import (
    DB_CLIENT_LABEL,
    child_of,
    container_security_context,
    labels,
    pod_security_context,
    resources,
)
from infra.settings import (
    IN_CLUSTER_DATABASE_PORT,
    MANAGED_DATABASE_PORT,
    ExternalDatabase,
    InClusterDatabase,
    ManagedDatabase,
    SharedDatabase,
)

POSTGRES_UID = 70  # the postgres user of the official Alpine images
# checkov's per-object skip: the image's own user owns the data directory.
LOW_UID_REASON = {
    "checkov.io/skip1": (
        "CKV_K8S_40=the official PostgreSQL image runs as its built-in postgres user (UID 70)"
    )
}
IN_CLUSTER_PORT = IN_CLUSTER_DATABASE_PORT
MANAGED_PORT = MANAGED_DATABASE_PORT
GRANT_IMAGE = InClusterDatabase.model_fields["image"].default


@dataclass(frozen=True)
class SharedServer:
    """A base stack's managed PostgreSQL, as its stack outputs describe it."""

    cluster_id: pulumi.Input[str]
    """The DigitalOcean database cluster id."""
    admin_url: pulumi.Input[str]
    """`postgresql://doadmin:...@private-host:port/defaultdb?sslmode=require` (secret)."""


@dataclass(frozen=True)
class DatabaseArgs:
    """Where PostgreSQL comes from and where its URL goes."""

    namespace: pulumi.Input[str]
    """The apps namespace: the URL Secret (and an in-cluster server) live there."""
    settings: InClusterDatabase | ManagedDatabase | ExternalDatabase | SharedDatabase
    """Which source, and its sizing."""
    resource_prefix: str
    """Prefix of cloud resource names (`todo-prod`)."""
    database_name: str = "todo"
    """The database the services use."""
    user_name: str = "todo"
    """The role the services connect as."""
    region: str | None = None
    """DigitalOcean region (managed)."""
    vpc_id: pulumi.Input[str] | None = None
    """The VPC the managed cluster joins (managed)."""
    kubernetes_cluster_id: pulumi.Input[str] | None = None
    """The only client the managed cluster's firewall admits (managed)."""
    shared_server: SharedServer | None = None
    """The base stack's server (shared)."""
    external_url: pulumi.Input[str] | None = None
    """The URL of an external server (external; secret)."""


class Database(pulumi.ComponentResource):
    """A PostgreSQL database and the Secret that hands its URL to the apps."""

    secret_name: pulumi.Output[str]
    """Name of the Secret whose key `url` is the apps' DATABASE_URL."""
    ready: list[pulumi.Resource]
    """What must exist before anything connects (server, grants)."""
    port: int
    """The port clients connect to (for egress NetworkPolicies)."""
    cluster_id: pulumi.Output[str] | None
    """The managed cluster's id (exported for ephemeral stacks)."""
    admin_url: pulumi.Output[str] | None
    """The managed cluster's private admin URL (secret; exported for ephemeral stacks)."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:database:Database", name, None, opts)
        self._name = name
        self._args = args
        self.ready = []
        self.cluster_id = None
        self.admin_url = None
        settings = args.settings
        url: pulumi.Output[str]
        if isinstance(settings, ManagedDatabase):
            self.port = MANAGED_PORT
            url = self._create_managed(settings)
        elif isinstance(settings, SharedDatabase):
            self.port = MANAGED_PORT
            url = self._create_shared()
        elif isinstance(settings, InClusterDatabase):
            self.port = IN_CLUSTER_PORT
            url = self._create_in_cluster(settings)
        else:
            self.port = settings.port
            if args.external_url is None:
                raise ValueError("database mode external needs external_url")
            url = pulumi.Output.secret(args.external_url)
        secret = k8s.core.v1.Secret(
            f"{name}-url",
            metadata=cast(
                Any,
                {
                    "namespace": args.namespace,
                    "labels": labels("database", "connection"),
                },
            ),
            type="Opaque",
            string_data=cast(Any, {"url": url}),
            opts=child_of(self),
        )
        self.secret_name = secret.metadata.apply(lambda m: m["name"])
        self.register_outputs(
            {
                "secret_name": self.secret_name,
                "cluster_id": self.cluster_id,
                "admin_url": self.admin_url,
            }
        )

    # ------------------------------------------------------------------ managed

    def _create_managed(self, settings: ManagedDatabase) -> pulumi.Output[str]:
        import pulumi_digitalocean as do

        args = self._args
        if args.region is None or args.vpc_id is None or args.kubernetes_cluster_id is None:
            raise ValueError("a managed database needs region, vpc_id and kubernetes_cluster_id")
        cluster = do.DatabaseCluster(
            f"{self._name}-pg",
            name=f"{args.resource_prefix}-pg",
            engine="pg",
            version=settings.version,
            size=settings.size,
            region=args.region,
            node_count=settings.node_count,
            private_network_uuid=args.vpc_id,
            maintenance_windows=[{"day": "sunday", "hour": "04:00:00"}],
            tags=[args.resource_prefix, "todo"],
            opts=child_of(self),
        )
        do.DatabaseFirewall(
            f"{self._name}-firewall",
            cluster_id=cluster.id,
            rules=[{"type": "k8s", "value": args.kubernetes_cluster_id}],
            opts=child_of(self),
        )
        self.cluster_id = cluster.id
        self.admin_url = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.user, cluster.password, cluster.private_host, cluster.port
            ).apply(
                lambda v: (
                    f"postgresql://{quote(str(v[0]), safe='')}:{quote(str(v[1]), safe='')}"
                    f"@{v[2]}:{v[3]}/defaultdb?sslmode=require"
                )
            )
        )
        return self._create_database_and_user(cluster.id, self.admin_url)

    def _create_shared(self) -> pulumi.Output[str]:
        server = self._args.shared_server
        if server is None:
            raise ValueError("database mode shared needs shared_server")
        return self._create_database_and_user(
            server.cluster_id, pulumi.Output.secret(server.admin_url)
        )

    def _create_database_and_user(
        self, cluster_id: pulumi.Input[str], admin_url: pulumi.Output[str]
    ) -> pulumi.Output[str]:
        import pulumi_digitalocean as do

        args = self._args
        database = do.DatabaseDb(
            f"{self._name}-db", cluster_id=cluster_id, name=args.database_name, opts=child_of(self)
        )
        user = do.DatabaseUser(
            f"{self._name}-user", cluster_id=cluster_id, name=args.user_name, opts=child_of(self)
        )
        db_admin_url = pulumi.Output.all(admin_url, database.name).apply(
            lambda v: _with_database(str(v[0]), str(v[1]))
        )
        self._create_grant_job(pulumi.Output.secret(db_admin_url), [database, user])
        return pulumi.Output.secret(
            pulumi.Output.all(admin_url, user.name, user.password, database.name).apply(
                lambda v: _with_credentials(str(v[0]), str(v[1]), str(v[2]), str(v[3]))
            )
        )

    def _create_grant_job(
        self, db_admin_url: pulumi.Output[str], after: list[pulumi.Resource]
    ) -> None:
        args = self._args
        admin_secret = k8s.core.v1.Secret(
            f"{self._name}-admin",
            metadata=cast(
                Any, {"namespace": args.namespace, "labels": labels("database", "admin")}
            ),
            type="Opaque",
            string_data=cast(Any, {"url": db_admin_url}),
            opts=child_of(self),
        )
        statement = f'GRANT USAGE, CREATE ON SCHEMA public TO "{args.user_name}";'
        # The name changes with what it grants, so a changed user re-runs it.
        digest = hashlib.sha256(f"{args.database_name}/{statement}".encode()).hexdigest()[:10]
        pod_labels = {**labels("database", "grants"), DB_CLIENT_LABEL: "true"}
        job = k8s.batch.v1.Job(
            f"{self._name}-grants",
            metadata=cast(
                Any,
                {
                    "name": f"db-grants-{digest}",
                    "namespace": args.namespace,
                    "labels": pod_labels,
                    "annotations": LOW_UID_REASON,
                },
            ),
            spec=cast(
                Any,
                {
                    "backoffLimit": 4,
                    "activeDeadlineSeconds": 600,
                    "template": {
                        "metadata": {"labels": pod_labels},
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "automountServiceAccountToken": False,
                            "securityContext": pod_security_context(POSTGRES_UID),
                            "containers": [
                                {
                                    "name": "grant",
                                    "image": GRANT_IMAGE,
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": ["psql"],
                                    # --dbname takes a URI; the kubelet expands $(VAR) from env,
                                    # so the password stays out of the pod spec.
                                    "args": [
                                        "--no-psqlrc",
                                        "--set=ON_ERROR_STOP=1",
                                        "--dbname=$(DATABASE_ADMIN_URL)",
                                        "--command",
                                        statement,
                                    ],
                                    "env": [
                                        {
                                            "name": "DATABASE_ADMIN_URL",
                                            "valueFrom": {
                                                "secretKeyRef": {
                                                    "name": admin_secret.metadata.apply(
                                                        lambda m: m["name"]
                                                    ),
                                                    "key": "url",
                                                }
                                            },
                                        },
                                        {"name": "HOME", "value": "/tmp"},
                                    ],
                                    "securityContext": container_security_context(),
                                    "resources": resources("10m", "32Mi", "200m", "64Mi"),
                                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                                }
                            ],
                            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                        },
                    },
                },
            ),
            opts=child_of(self, depends_on=after, delete_before_replace=True),
        )
        self.ready.append(job)

    # ------------------------------------------------------------------ in cluster

    def _create_in_cluster(self, settings: InClusterDatabase) -> pulumi.Output[str]:
        args = self._args
        admin_password = random.RandomPassword(
            f"{self._name}-admin-password", length=32, special=False, opts=child_of(self)
        )
        app_password = random.RandomPassword(
            f"{self._name}-app-password", length=32, special=False, opts=child_of(self)
        )
        server_labels = labels("postgresql", "database")
        selector = {"app.kubernetes.io/name": "postgresql"}
        credentials = k8s.core.v1.Secret(
            f"{self._name}-server-credentials",
            metadata=cast(Any, {"namespace": args.namespace, "labels": server_labels}),
            type="Opaque",
            string_data=cast(
                Any,
                {
                    "POSTGRES_PASSWORD": admin_password.result,
                    "APP_PASSWORD": app_password.result,
                },
            ),
            opts=child_of(self),
        )
        init = k8s.core.v1.ConfigMap(
            f"{self._name}-init",
            metadata=cast(Any, {"namespace": args.namespace, "labels": server_labels}),
            data=cast(Any, {"10-app-role.sh": _init_script(args.user_name, args.database_name)}),
            opts=child_of(self),
        )
        service = k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=cast(
                Any, {"name": "postgresql", "namespace": args.namespace, "labels": server_labels}
            ),
            spec=cast(
                Any,
                {
                    "clusterIP": "None",
                    "selector": selector,
                    "ports": [
                        {"name": "postgres", "port": IN_CLUSTER_PORT, "targetPort": "postgres"}
                    ],
                },
            ),
            opts=child_of(self),
        )
        statefulset = self._create_statefulset(
            settings, service, credentials, init, server_labels, selector
        )
        self.ready.append(statefulset)
        host = service.metadata.apply(lambda m: f"{m['name']}.{m['namespace']}.svc.cluster.local")
        return pulumi.Output.secret(
            pulumi.Output.all(app_password.result, host).apply(
                lambda v: (
                    f"postgresql://{args.user_name}:{quote(str(v[0]), safe='')}"
                    f"@{v[1]}:{IN_CLUSTER_PORT}/{args.database_name}"
                )
            )
        )

    def _create_statefulset(
        self,
        settings: InClusterDatabase,
        service: k8s.core.v1.Service,
        credentials: k8s.core.v1.Secret,
        init: k8s.core.v1.ConfigMap,
        server_labels: dict[str, str],
        selector: dict[str, str],
    ) -> k8s.apps.v1.StatefulSet:
        args = self._args
        secret_name = credentials.metadata.apply(lambda m: m["name"])
        probe_command = ["pg_isready", "--host=127.0.0.1", f"--port={IN_CLUSTER_PORT}"]
        return k8s.apps.v1.StatefulSet(
            f"{self._name}-server",
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
                                    "ports": [
                                        {"name": "postgres", "containerPort": IN_CLUSTER_PORT}
                                    ],
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
            opts=child_of(self),
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


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _with_credentials(admin_url: str, user: str, password: str, database: str) -> str:
    """The admin URL's host, port and TLS settings with the app's user and database."""
    parts = urlsplit(admin_url)
    host = parts.hostname or ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}"))
