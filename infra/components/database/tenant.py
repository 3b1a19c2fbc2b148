"""A database and user of the app's own on a managed DigitalOcean cluster (managed, shared).

The database belongs to `doadmin`, and since PostgreSQL 15 other users may not create
objects in its `public` schema; a one-off Job run as the admin grants the app user USAGE
and CREATE there, so migrations can create tables that the app user then owns.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple, cast
from urllib.parse import quote, urlsplit, urlunsplit

import pulumi
import pulumi_kubernetes as k8s

from infra.components.database.args import DatabaseArgs
from infra.components.database.in_cluster import LOW_UID_REASON, POSTGRES_UID
from infra.components.kube import (
    DB_CLIENT_LABEL,
    child_of,
    container_security_context,
    labels,
    pod_security_context,
    resources,
)
from infra.settings import InClusterDatabase

GRANT_IMAGE = InClusterDatabase.model_fields["image"].default


class Tenant(NamedTuple):
    """What create_database_and_user made."""

    url: pulumi.Output[str]
    """The app's direct `postgresql://` URL (secret)."""
    ready: list[pulumi.Resource]
    """The grant Job."""
    database_name: pulumi.Output[str]
    """The app's database (for a connection pool's `db_name`)."""
    user_name: pulumi.Output[str]
    """The app's user (for a connection pool's `user`)."""


def create_database_and_user(
    parent: pulumi.Resource,
    name: str,
    args: DatabaseArgs,
    cluster_id: pulumi.Input[str],
    admin_url: pulumi.Output[str],
) -> Tenant:
    """The app's database and user, their grants; the app's URL and the grant Job."""
    import pulumi_digitalocean as do

    database = do.DatabaseDb(
        f"{name}-db", cluster_id=cluster_id, name=args.database_name, opts=child_of(parent)
    )
    user = do.DatabaseUser(
        f"{name}-user", cluster_id=cluster_id, name=args.user_name, opts=child_of(parent)
    )
    db_admin_url = pulumi.Output.all(admin_url, database.name).apply(
        lambda v: _with_database(str(v[0]), str(v[1]))
    )
    job = _create_grant_job(
        parent, name, args, pulumi.Output.secret(db_admin_url), [database, user]
    )
    url: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(admin_url, user.name, user.password, database.name).apply(
            lambda v: _with_credentials(str(v[0]), str(v[1]), str(v[2]), str(v[3]))
        )
    )
    return Tenant(url, [job], database.name, user.name)


def _create_grant_job(
    parent: pulumi.Resource,
    name: str,
    args: DatabaseArgs,
    db_admin_url: pulumi.Output[str],
    after: list[pulumi.Resource],
) -> k8s.batch.v1.Job:
    admin_secret = k8s.core.v1.Secret(
        f"{name}-admin",
        metadata=cast(Any, {"namespace": args.namespace, "labels": labels("database", "admin")}),
        type="Opaque",
        string_data=cast(Any, {"url": db_admin_url}),
        opts=child_of(parent),
    )
    statement = f'GRANT USAGE, CREATE ON SCHEMA public TO "{args.user_name}";'
    # The name changes with what it grants, so a changed user re-runs it.
    digest = hashlib.sha256(f"{args.database_name}/{statement}".encode()).hexdigest()[:10]
    pod_labels = {**labels("database", "grants"), DB_CLIENT_LABEL: "true"}
    return k8s.batch.v1.Job(
        f"{name}-grants",
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
        opts=child_of(parent, depends_on=after, delete_before_replace=True),
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
