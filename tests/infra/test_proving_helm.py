"""`todo-infra proving helm-values`: the Helm releases of the kind stack's offline plan.

The plan is the real program's (conftest `planned`), written to disk as `todo-infra plan`
writes it; the values files must be exactly what the program passes Helm, so that the
proving ground's `helm template` renders what `pulumi up` would install.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from infra.tooling.delivery.helm_render import (
    MANIFEST,
    PLACEHOLDER,
    PlanReadError,
    read_manifest,
    render_releases,
    write_helm_values,
)
from infra.tooling.plan.artifacts import write_plan
from infra.tooling.plan.build import Plan
from infra.tooling.plan.objects import helm_release_values

STACK = "kind"


@pytest.fixture
def kind_plan_dir(planned: Callable[[str], Plan], tmp_path: Path) -> Path:
    result = planned(STACK)
    out = tmp_path / "plan"
    write_plan(result.run, result.objects, result.critical, out)
    return out


def test_one_values_file_per_release_with_the_programs_values(
    planned: Callable[[str], Plan], kind_plan_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "helm"
    releases = write_helm_values(kind_plan_dir, out)

    records = {o.name: o for o in planned(STACK).objects if o.is_helm_release}
    assert {r.name for r in releases} == set(records)
    for release in releases:
        record = records[release.name]
        assert release.namespace == record.namespace
        assert release.chart == record.body["spec"]["chart"]
        assert release.version == record.body["spec"]["version"]
        values = yaml.safe_load((out / release.values_file).read_text())
        assert values == helm_release_values(record), release.name
    # The charts the program pins, with their repositories (OCI charts carry none).
    by_name = {r.name: r for r in releases}
    assert by_name["dapr"].repo == "https://dapr.github.io/helm-charts/"
    assert by_name["strimzi"].chart == "strimzi-kafka-operator"
    assert by_name["envoy-gateway"].chart.startswith("oci://")
    assert by_name["envoy-gateway"].repo is None


def test_the_manifest_reads_back_and_names_helm_template_arguments(
    kind_plan_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "helm"
    written = write_helm_values(kind_plan_dir, out)
    assert read_manifest(out) == written
    assert json.loads((out / MANIFEST).read_text())["releases"][0]["values_file"].startswith(
        "values/"
    )
    dapr = next(r for r in written if r.name == "dapr")
    args = dapr.template_args(out)
    assert args[:3] == ["template", "dapr", "dapr"]
    assert args[args.index("--version") + 1] == dapr.version
    assert args[args.index("--repo") + 1] == dapr.repo
    assert args[args.index("--namespace") + 1] == "dapr-system"
    assert Path(args[args.index("--values") + 1]).is_file()
    assert "--include-crds" in args


def test_secret_values_become_placeholders_and_are_listed(tmp_path: Path) -> None:
    plan = tmp_path / "plan"
    plan.mkdir()
    resource = {
        "type": "kubernetes:helm.sh/v3:Release",
        "name": "obs",
        "inputs": {
            "chart": "kube-prometheus-stack",
            "version": "88.5.3",
            "namespace": "monitoring",
            "values": {"grafana": {"adminPassword": "[secret]", "replicas": 1.0}},
        },
    }
    (plan / "resources.json").write_text(json.dumps({"resources": [resource]}))
    (release,) = write_helm_values(plan, tmp_path / "helm")
    values = yaml.safe_load((tmp_path / "helm" / release.values_file).read_text())
    assert values == {"grafana": {"adminPassword": PLACEHOLDER, "replicas": 1}}
    assert release.placeholders == ["grafana.adminPassword"]
    assert release.name == "obs"  # no `name` input: the resource's name, as the plan says


def test_a_folder_without_a_plan_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlanReadError, match="todo-infra plan"):
        write_helm_values(tmp_path, tmp_path / "helm")


def test_render_runs_helm_template_per_release(kind_plan_dir: Path, tmp_path: Path) -> None:
    helm_dir = tmp_path / "helm"
    releases = write_helm_values(kind_plan_dir, helm_dir)
    fake = tmp_path / "helm-fake"
    log = tmp_path / "helm.log"
    fake.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "print('kind: ConfigMap')\n"
    )
    fake.chmod(0o755)
    written = render_releases(helm_dir, tmp_path / "rendered", helm=str(fake))
    assert [p.stem for p in written] == [r.name for r in releases]
    assert all(p.read_text() == "kind: ConfigMap\n" for p in written)
    assert len(log.read_text().splitlines()) == len(releases)


def test_the_cli_writes_the_values(kind_plan_dir: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "infra.tooling.cli", "proving", "helm-values",
         "--plan-dir", str(kind_plan_dir), "--out", str(tmp_path / "helm")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "dapr-system/dapr: dapr" in done.stdout
    assert (tmp_path / "helm" / MANIFEST).is_file()
