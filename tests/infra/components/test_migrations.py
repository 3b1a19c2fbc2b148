"""Migrations: a Job per backend image, after the database, before the services."""

from __future__ import annotations

import hashlib

from infra.tooling.plan.release_images import placeholder_digest
from tests.infra.components.plans import EPHEMERAL, depends_on, one, plan, pod_spec


def test_job_runs_alembic_with_the_backend_image() -> None:
    run = plan("prod")
    job = one(run, "migrations-job")
    image = f"release.invalid/todo/todo-backend:planned-release@{placeholder_digest('backend')}"
    expected = f"migrate-{hashlib.sha256(image.encode()).hexdigest()[:10]}"
    assert job.raw_inputs["metadata"]["name"] == expected
    container = pod_spec(job)["containers"][0]
    assert container["image"] == image
    assert container["command"] == ["alembic", "upgrade", "head"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"]["key"] == "url"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job.raw_inputs["spec"]["backoffLimit"] == 2


def test_a_new_image_means_a_new_job() -> None:
    prod = one(plan("prod"), "migrations-job").raw_inputs["metadata"]["name"]
    dev = one(plan(EPHEMERAL), "migrations-job").raw_inputs["metadata"]["name"]
    assert prod != dev  # different images (tags), different Jobs


def test_job_waits_for_the_database() -> None:
    run = plan("staging")
    assert depends_on(run, one(run, "migrations-job"), one(run, "database-grants"))
    local = plan("minikube")
    assert one(local, "database-server").urn in one(local, "migrations-job").dependencies
