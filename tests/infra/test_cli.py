"""`todo-infra plan` and `todo-infra cost` as users run them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from infra.tooling.cli import app
from infra.tooling.plan import bytecode_cache
from infra.tooling.repo import PROJECT_ROOT, STACKS_DIR

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_bytecode_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process runs must not repoint this test process's bytecode cache.
    monkeypatch.setenv("TODO_INFRA_BYTECODE_CACHE", "off")


def test_plan_writes_the_files_and_prints_the_figures(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", "--stack", "minikube", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "resources.json").read_text())
    assert document["stack"] == "minikube" and document["resources"]
    manifests = list((tmp_path / "manifests").glob("*.yaml"))
    assert len(manifests) > 20
    assert (tmp_path / "graph.mmd").read_text().startswith("flowchart")
    # What `todo-infra diff` compares costs with: nothing on DigitalOcean here.
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert cost["lines"] == [] and cost["monthlyMax"] == 0 and cost["currency"] == "USD"
    for figure in ("plan time", "resources", "critical path", "footprint", "monthly cost"):
        assert figure in result.output
    assert "fits `minikube start --cpus 4 --memory 8g`" in " ".join(result.output.split())
    assert "Policy: every rule passes." in result.output
    assert "placeholders" not in result.output  # minikube names its images
    # In-cluster PostgreSQL, no pool: the budget is shown against PostgreSQL's defaults.
    text = " ".join(result.output.split())
    assert "Database: pools 24 + direct 8 = 32 of 97" in text and "(shown, not checked)" in text
    assert "Connection pool:" not in text


def test_a_cloud_plan_says_its_images_are_placeholders(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", "--stack", "staging", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "staging's stack file names none (the release pins them by digest" in text
    assert "placeholders under release.invalid/todo" in text
    images = {
        container["image"]
        for path in (tmp_path / "manifests").glob("*.yaml")
        for doc in [yaml.safe_load(path.read_text())]
        if doc.get("kind") == "Deployment" and doc["metadata"]["namespace"] == "todo"
        for container in doc["spec"]["template"]["spec"]["containers"]
    }
    assert images and all(i.startswith("release.invalid/todo/todo-") for i in images)
    assert "Connection pool: size 20; the services may open 20 through it." in text
    assert "Database: pool 20 + direct 9 = 29 of 47 (DigitalOcean: 25 per GB of RAM" in text
    assert "; 18 left." in text


def test_a_budget_the_pool_cannot_hold_stops_the_plan_naming_the_keys(tmp_path: Path) -> None:
    stacks = _copy_stacks(tmp_path)
    path = stacks / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["todo:apps"]["recurring"]["maxReplicas"] = 6  # 6 × 2 × 1 = 12
    path.write_text(yaml.safe_dump(document))

    result = runner.invoke(
        app, ["plan", "--stack", "prod", "--stacks-dir", str(stacks), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "todo:apps.*.maxReplicas/dbPoolSize, todo:database.pool.size" in text
    assert "may open 34 connections to the pool" in text and "recurring 6 × 2 = 12" in text
    assert "database.pool.size is 28" in text
    assert "Traceback" not in result.output
    assert not (tmp_path / "resources.json").exists()


def _copy_stacks(tmp_path: Path) -> Path:
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, stacks)
    return stacks


def test_bad_stack_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    stacks = _copy_stacks(tmp_path)
    path = stacks / "Pulumi.minikube.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["todo:kafka"]["brokers"] = "many"
    path.write_text(yaml.safe_dump(document))

    result = runner.invoke(
        app, ["plan", "--stack", "minikube", "--stacks-dir", str(stacks), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "kafka.brokers" in result.output and "'many'" in result.output
    assert "Traceback" not in result.output


def test_unknown_stack_lists_the_known_ones() -> None:
    result = runner.invoke(app, ["plan", "--stack", "qa"])
    assert result.exit_code == 2
    assert "known stacks: kind, minikube, prod, staging" in " ".join(result.output.split())


def test_policy_violations_fail_the_plan(tmp_path: Path) -> None:
    program = tmp_path / "program" / "__main__.py"
    program.parent.mkdir()
    program.write_text(
        textwrap.dedent(
            """
            import pulumi_kubernetes as k8s

            k8s.core.v1.Service(
                "public",
                metadata={"name": "public", "namespace": "todo"},
                spec={"type": "LoadBalancer", "ports": [{"port": 80}]},
            )
            """
        )
    )
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.lb.yaml").write_text("config: {}\n")
    result = runner.invoke(
        app,
        [
            "plan",
            "-s",
            "lb",
            "--program",
            str(program),
            "--stacks-dir",
            str(stacks),
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1
    assert "Policy: 1 violation(s)" in result.output
    assert "no-load-" in result.output and "LoadBalancer" in result.output
    assert (tmp_path / "out" / "manifests" / "todo_service_public.yaml").is_file()


def test_cost_prints_the_table_with_its_date() -> None:
    result = runner.invoke(app, ["cost", "--stack", "prod"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "HA control plane" in output and "total" in output and "as of 20" in output
    assert "Main drivers at the minimum: node pool" in output


def test_plan_runs_on_a_fresh_machine(tmp_path: Path) -> None:
    """A new process with no Pulumi CLI, no credentials, an empty home and no network
    settings: the plan still runs, and writes no bytecode next to any source file (into
    the private cache only when the installer compiled nothing)."""
    cache = tmp_path / "pycache"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path / "home"),
        "TODO_INFRA_BYTECODE_CACHE": str(cache),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update({k: v for k, v in os.environ.items() if k in {"LANG", "LC_ALL", "TZ"}})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.tooling.cli",
            "plan",
            "--stack",
            "minikube",
            "-o",
            str(tmp_path / "out"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / "resources.json").is_file()
    assert any(cache.rglob("*.pyc")) != bytecode_cache.installed_with_bytecode()
    assert not list((PROJECT_ROOT / "infra" / "plan").glob("__pycache__"))


@pytest.mark.parametrize("precompiled", [True, False])
def test_private_bytecode_cache_only_where_the_installer_compiled_nothing(
    precompiled: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pycache prefix would hide the installed bytecode: set it only when there is none.
    monkeypatch.setenv("TODO_INFRA_BYTECODE_CACHE", str(tmp_path / "pycache"))
    monkeypatch.setattr(bytecode_cache, "installed_with_bytecode", lambda: precompiled)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    enabled = bytecode_cache.enable()
    if precompiled:
        assert enabled is None and sys.pycache_prefix is None and sys.dont_write_bytecode
    else:
        assert enabled == tmp_path / "pycache" and sys.pycache_prefix == str(enabled)
        assert not sys.dont_write_bytecode


def test_an_ephemeral_stack_plans_on_top_of_staging(tmp_path: Path) -> None:
    # No stacks/Pulumi.dev-bob.yaml: the config is generated as `ephemeral up` would.
    result = runner.invoke(app, ["plan", "--stack", "dev-bob", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "resources.json").read_text())
    assert document["outputs"]["stackKind"] == "ephemeral"
    types = {entry["type"] for entry in document["resources"]}
    assert "pulumi:pulumi:StackReference" in types
    assert "digitalocean:index/kubernetesCluster:KubernetesCluster" not in types
    assert "Runs on the staging stack's cluster" in " ".join(result.output.split())
