"""Delivery invariants the linters do not know about (they run in .ci/lint-delivery).

actionlint, zizmor and checkov judge each workflow on its own; these tests pin what ties
the workflows to the rest of the repository: the same uv and Pulumi versions everywhere,
secrets only inside environments, and the comment poster never touching PR code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _load(path: Path) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    return document


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_there_are_the_promised_workflows() -> None:
    names = {path.stem for path in WORKFLOWS}
    assert {
        "checks",
        "preview",
        "preview-comment",
        "deploy",
        "ephemeral",
        "proving-ground",
    } <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_sha_with_their_version(path: Path) -> None:
    uses = re.findall(r"uses:\s*(\S+)(.*)", path.read_text())
    for target, rest in uses:
        if target.startswith("$/"):
            continue  # this repository, at the running commit
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", target), target
        assert re.search(r"#\s*v\d+(\.\d+)*", rest), f"{target} lacks a `# vX.Y.Z` comment"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_only_inside_environments(path: Path) -> None:
    workflow = _load(path)
    assert "pull_request_target" not in workflow[True]  # YAML reads `on:` as True
    assert "permissions" in workflow, "a workflow sets its default permissions"
    for name, job in workflow["jobs"].items():
        if "secrets." in yaml.safe_dump(job):
            assert "environment" in job, f"{path.name}:{name} uses secrets outside an environment"


def test_the_comment_poster_never_runs_pull_request_code() -> None:
    workflow = _load(ROOT / ".github" / "workflows" / "preview-comment.yml")
    assert set(workflow[True]) == {"workflow_run"}
    for step in _steps(workflow):
        assert "actions/checkout" not in step.get("uses", "")
        assert not re.search(r"\b(uv|python3?|pip|npm|make)\b|bash \S+\.sh", step.get("run", ""))
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}


def test_one_uv_and_one_pulumi_version_everywhere() -> None:
    dockerfile_uv = re.search(r"ARG UV_VERSION=(\S+)", (ROOT / "Dockerfile").read_text())
    assert dockerfile_uv is not None
    lock = (ROOT / "uv.lock").read_text()
    sdk = re.search(r'name = "pulumi"\nversion = "([^"]+)"', lock)
    assert sdk is not None
    for path in WORKFLOWS:
        env = _load(path).get("env", {})
        if "UV_VERSION" in env:
            assert env["UV_VERSION"] == dockerfile_uv.group(1), path.name
        if "PULUMI_VERSION" in env:
            # The CLI must be at least as new as the SDK the program is locked to.
            assert env["PULUMI_VERSION"] == sdk.group(1), path.name


def test_prod_deploys_only_what_staging_proved() -> None:
    deploy = _load(ROOT / ".github" / "workflows" / "deploy.yml")
    jobs = deploy["jobs"]
    assert jobs["prod"]["environment"]["name"] == "production"
    assert set(jobs["prod"]["needs"]) == {"resolve", "proven"}
    runs = " ".join(step.get("run", "") for step in jobs["prod"]["steps"])
    assert 'release-images.sh use "$STAGING" "$STACK" --require' in runs
    assert "docker" not in runs and "build-push" not in yaml.safe_dump(jobs["prod"])
    staging_steps = [step.get("name", "") for step in jobs["staging"]["steps"]]
    # The release is recorded only after the smoke test passed.
    assert staging_steps.index("Record the proven release") > staging_steps.index("Smoke test")


def test_pr_stack_down_checks_out_the_pr_head_without_credentials() -> None:
    """`down` destroys with --run-program, so it needs the PR's program, not the base's."""
    workflow = _load(ROOT / ".github" / "workflows" / "ephemeral.yml")
    assert set(workflow[True]) == {"pull_request", "schedule", "workflow_dispatch"}
    down = workflow["jobs"]["down"]
    condition = " ".join(down["if"].split())
    assert "github.event.action == 'closed'" in condition
    # Forks get no stack, hence no destroy running their code with the environment's secrets.
    assert "github.event.pull_request.head.repo.full_name == github.repository" in condition
    [checkout] = [s for s in down["steps"] if "actions/checkout" in s.get("uses", "")]
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    assert checkout["with"]["persist-credentials"] is False
    runs = [s.get("run", "") for s in down["steps"]]
    assert any("todo-infra ephemeral down" in run for run in runs)
    # The program is installed from that same checkout before it runs.
    assert runs.index("uv sync") < next(i for i, r in enumerate(runs) if "ephemeral down" in r)


def test_every_destroy_runs_the_program() -> None:
    """A destroy that reuses the state's kubeconfig fails once the DOKS token (7 days) expired.

    Workflows, their scripts and the runbook (docs/operations.md, "Destroying stacks")
    are scanned; the Automation API path (`todo-infra ephemeral down|reap`) is held to
    run_program=True by tests/infra/test_ephemeral.py.
    """
    sources = [*WORKFLOWS, *sorted((ROOT / ".github").rglob("*.sh")), *(ROOT / "docs").glob("*.md")]
    commands = [
        (path.name, line.strip())
        for path in sources
        for line in path.read_text().splitlines()
        # Command lines only (a shell line, a `run:` value), not prose about the command.
        if re.match(r"\s*(?:-\s*)?(?:run:\s*)?(?:uv run\s+)?pulumi\s+(?:destroy|down)\b", line)
    ]
    assert commands, "the runbook shows how to destroy a stack"
    for name, line in commands:
        assert "--run-program" in line, f"{name}: {line}"


def test_prod_needs_a_proving_ground_run_on_the_release() -> None:
    jobs = _load(ROOT / ".github" / "workflows" / "deploy.yml")["jobs"]
    proven = jobs["proven"]
    assert proven["needs"] == "resolve"
    assert proven["permissions"] == {"actions": "read", "pull-requests": "read"}
    (check,) = [step for step in proven["steps"] if "run" in step]
    assert check["run"] == '.github/scripts/require-proven.sh "$RELEASE"'
    assert check["env"]["RELEASE"] == "${{ needs.resolve.outputs.release }}"
    assert "environment" not in proven  # no secrets: the job token reads runs only


def test_the_proving_ground_runs_on_what_it_proves() -> None:
    workflow = _load(ROOT / ".github" / "workflows" / "proving-ground.yml")
    triggers = workflow[True]
    assert {"pull_request", "schedule", "workflow_dispatch"} == set(triggers)
    paths = set(triggers["pull_request"]["paths"])
    expected = {"infra/**", "stacks/**", "apps/**", "migrations/**", "Dockerfile"}
    assert expected | {"pyproject.toml", "uv.lock", ".github/workflows/proving-ground.yml"} <= paths
    assert workflow["permissions"] == {}
    assert "group" in workflow["concurrency"]
    for name, job in workflow["jobs"].items():
        assert job["permissions"] == {"contents": "read"}, name
        assert job["timeout-minutes"] <= 90, name
        for step in job["steps"]:
            if "actions/checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False, name
    steps = {step.get("name"): step for step in workflow["jobs"]["kind"]["steps"]}
    assert steps["pulumi destroy --stack kind"]["if"] == "always()"
    assert steps["Diagnostics"]["if"] == "failure()"
    # Idempotence comes after every test of the deployed stack, before the destroy.
    names = list(steps)
    assert names.index("Idempotence (pulumi preview --expect-no-changes)") > names.index(
        "End-to-end scenarios (daprd, Kafka, dead-letter topic)"
    )
    assert names.index("pulumi destroy --stack kind") > names.index("Diagnostics")
