"""Plan files: resources.json, one manifest per object, Helm records, no secret values."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from infra.policy.rules import SECRET_MASK
from infra.tooling.plan.artifacts import write_plan
from infra.tooling.plan.build import Plan
from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import HELM_RECORD_KIND, kubernetes_objects, normalize_numbers


def _write(plan: Plan, out: Path) -> Path:
    write_plan(plan.run, plan.objects, plan.critical, out)
    return out


def test_resources_json_has_every_resource_with_its_graph(
    sample_plan: Plan, tmp_path: Path
) -> None:
    document = json.loads((_write(sample_plan, tmp_path) / "resources.json").read_text())
    by_name = {entry["name"]: entry for entry in document["resources"]}

    assert len(document["resources"]) == sample_plan.resource_count
    assert set(by_name["backend"]) >= {
        "type",
        "name",
        "parent",
        "provider",
        "dependencies",
        "inputs",
    }
    assert by_name["backend"]["type"] == "kubernetes:apps/v1:Deployment"
    assert by_name["backend"]["parent"] == next(
        r.urn for r in sample_plan.run.resources.values() if r.type == "todo:test:App"
    )
    assert by_name["backend"]["provider"] == by_name["k8s"]["urn"]
    assert by_name["dapr"]["urn"] in by_name["backend"]["dependencies"]
    # Numbers come back as the integers they were, not the engine's floats.
    assert by_name["backend"]["inputs"]["spec"]["replicas"] == 2
    assert document["outputs"]["kubeconfig"] == SECRET_MASK


def test_no_secret_value_reaches_any_file(sample_plan: Plan, tmp_path: Path) -> None:
    out = _write(sample_plan, tmp_path)
    # The mocks' placeholders are what the secrets hold in this run; none may be written.
    secret_values = ["plan-placeholder-backend-password", "plan-placeholder-token"]
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for value in secret_values:
                assert value not in text, f"{value} leaked into {path.relative_to(out)}"


def test_one_manifest_per_object_and_secrets_keep_their_keys(
    sample_plan: Plan, tmp_path: Path
) -> None:
    out = _write(sample_plan, tmp_path)
    manifests = sorted((out / "manifests").iterdir())
    bodies = [yaml.safe_load(path.read_text()) for path in manifests]
    kinds = sorted(body["kind"] for body in bodies)

    assert kinds == sorted(o.kind for o in sample_plan.objects if not o.is_helm_release)
    assert "HorizontalPodAutoscaler" in kinds and "KafkaNodePool" in kinds
    secret = next(body for body in bodies if body["kind"] == "Secret")
    assert secret["apiVersion"] == "v1"
    assert secret["stringData"] == {"DATABASE_URL": SECRET_MASK}
    deployment = next(body for body in bodies if body["kind"] == "Deployment")
    assert deployment["metadata"] == {"name": "backend", "namespace": "todo"}


def test_helm_releases_are_records_with_their_values(sample_plan: Plan, tmp_path: Path) -> None:
    out = _write(sample_plan, tmp_path)
    records = {
        path.name: yaml.safe_load(path.read_text()) for path in (out / "helm-releases").iterdir()
    }
    assert set(records) == {"dapr-system_helmrelease_dapr.yaml", "kafka_helmrelease_strimzi.yaml"}
    dapr = records["dapr-system_helmrelease_dapr.yaml"]
    assert dapr["kind"] == HELM_RECORD_KIND
    assert dapr["spec"]["chart"] == "dapr" and dapr["spec"]["version"] == "1.18.3"
    assert dapr["spec"]["values"]["global"] == {"ha": {"enabled": True}}
    text = (out / "helm-releases" / "dapr-system_helmrelease_dapr.yaml").read_text()
    assert text.startswith("# Helm release record")


def test_replanning_replaces_stale_files(sample_plan: Plan, tmp_path: Path) -> None:
    stale = tmp_path / "manifests" / "old_configmap_gone.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: ConfigMap\n")
    _write(sample_plan, tmp_path)
    assert not stale.exists()
    assert (tmp_path / "graph.mmd").read_text().startswith("flowchart")


def test_normalize_numbers() -> None:
    assert normalize_numbers({"a": [1.0, 1.5, "2"], "b": {"c": 3.0}}) == {
        "a": [1, 1.5, "2"],
        "b": {"c": 3},
    }


def test_helm_v4_charts_are_recorded_like_releases() -> None:
    inputs = {
        "chart": "oci://docker.io/envoyproxy/gateway-crds-helm",
        "version": "v1.9.0",
        "namespace": "envoy-gateway-system",
        "values": {"crds": {"gatewayAPI": {"enabled": True}}},
    }
    chart = RecordedResource(
        urn="urn:crds",
        type="kubernetes:helm.sh/v4:Chart",
        name="edge-gateway-crds",
        parent=None,
        provider=None,
        dependencies=(),
        custom=False,  # a v4 Chart registers as a component
        inputs=inputs,
        has_secrets=False,
        raw_inputs=inputs,
    )
    [record] = kubernetes_objects([chart])
    assert record.is_helm_release
    assert record.name == "edge-gateway-crds" and record.namespace == "envoy-gateway-system"
    assert record.body["spec"]["installedBy"] == "kubernetes:helm.sh/v4:Chart"
    assert record.body["spec"]["values"] == inputs["values"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_two_plans_of_the_same_program_are_the_same_files(tmp_path: Path) -> None:
    """The program registers concurrently, so registration order and the key order of
    inputs read back from protobuf maps vary between runs; the files must not, or a
    reviewer diffing two plans' folders sees noise instead of the change."""
    from infra.tooling.plan.build import execute

    outs = []
    for run in ("first", "second"):
        plan = execute("prod")
        outs.append(_files(_write(plan, tmp_path / run)))
    first, second = outs
    assert len(first) > 100
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
