"""`alembic upgrade head` as a Job, before any service starts.

The Job runs the backend image (it carries the single Alembic history). Its name is
derived from the image reference, so a new image means a new Job and the migrations run
again; an unchanged image leaves the finished Job alone. pulumi-kubernetes waits for a
Job to complete, so the Deployments that depend on it start only on a migrated schema.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from infra.components.kube import (
    DB_CLIENT_LABEL,
    container_security_context,
    image_pull_secrets,
    labels,
    pod_security_context,
    resources,
)

APP_UID = 10001


@dataclass(frozen=True)
class MigrationsArgs:
    """The image to migrate with and the database to migrate."""

    namespace: pulumi.Input[str]
    """The apps namespace."""
    image: str
    """The backend image (pinned)."""
    database_secret: pulumi.Input[str]
    """Secret with key `url` (DATABASE_URL)."""
    log_level: str = "INFO"
    """LOG_LEVEL for the migration run."""
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What the database needs first (server, grants)."""
    image_pull_secret: pulumi.Input[str] | None = None
    """Secret for a private registry (`imagePullSecrets`); None for public images."""


class Migrations(pulumi.ComponentResource):
    """A Job that upgrades the schema to the image's head revision."""

    job: k8s.batch.v1.Job
    """The Job; depend on it to start after a successful migration."""
    job_name: str
    """The Job's name (`migrate-<hash of the image>`)."""

    def __init__(
        self, name: str, args: MigrationsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:migrations:Migrations", name, None, opts)
        self.job_name = f"migrate-{hashlib.sha256(args.image.encode()).hexdigest()[:10]}"
        pod_labels = {**labels("migrations", "migrations"), DB_CLIENT_LABEL: "true"}
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=cast(
                Any,
                {
                    "name": self.job_name,
                    "namespace": args.namespace,
                    "labels": pod_labels,
                    "annotations": {"todo.dev/image": args.image},
                },
            ),
            spec=cast(
                Any,
                {
                    # A failing migration must stop the deploy, not loop for ever.
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 900,
                    "template": {
                        "metadata": {"labels": pod_labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "automountServiceAccountToken": False,
                            **image_pull_secrets(args.image_pull_secret),
                            "securityContext": pod_security_context(APP_UID, APP_UID),
                            "containers": [
                                {
                                    "name": "alembic",
                                    "image": args.image,
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": ["alembic", "upgrade", "head"],
                                    "env": [
                                        {
                                            "name": "DATABASE_URL",
                                            "valueFrom": {
                                                "secretKeyRef": {
                                                    "name": args.database_secret,
                                                    "key": "url",
                                                }
                                            },
                                        },
                                        {"name": "LOG_LEVEL", "value": args.log_level},
                                    ],
                                    "securityContext": container_security_context(),
                                    "resources": resources("100m", "128Mi", "1", "256Mi"),
                                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                                }
                            ],
                            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                        },
                    },
                },
            ),
            # A Job's template is immutable: a changed database Secret means a new Job
            # under the same name, so the old one must go first.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(args.after), delete_before_replace=True
            ),
        )
        self.register_outputs({"job_name": self.job_name})
