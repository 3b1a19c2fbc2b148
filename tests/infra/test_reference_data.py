"""The vendored k8s reference data (infra/k8s-reference): locked, complete, current.

The plan's footprint and the manifest tests read chart defaults and CRD schemas from this
folder, so it must hold exactly what its lock file lists, at the chart versions the
components pin: a version bumped without `todo-infra reference refresh` fails here.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.tooling.plan.reference import (
    DEFAULT_REFERENCE_DIR,
    ENV_VAR,
    REFRESH_COMMAND,
    ReferenceDataError,
    chart_defaults,
    reference_dir,
)
from infra.tooling.plan.reference_lock import LOCK_FILE, lock_problems, read_lock
from infra.tooling.plan.reference_refresh import HelmChart, pinned_sources, vendoring_problems
from tests.infra.conftest import EPHEMERAL_STACK, STACKS
from tests.infra.validation import CRDS_MISSING_FROM_REFERENCE

# The operators whose custom resources the program creates, by API group: their CRDs
# must come from the chart version the component pins.
CRD_OWNERS = {"dapr.io": "dapr", "kafka.strimzi.io": "strimzi-kafka-operator"}


def test_every_file_is_listed_in_the_lock_with_its_hash() -> None:
    assert lock_problems(DEFAULT_REFERENCE_DIR) == []


def test_the_lock_check_catches_edited_missing_and_unlisted_files(tmp_path: Path) -> None:
    copy = tmp_path / "k8s-reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, copy)
    (dapr,) = [entry for entry in read_lock(copy) if entry.name == "dapr"]
    edited, removed, *_ = sorted(dapr.files)
    (copy / edited).write_text((copy / edited).read_text() + "# edited by hand\n")
    (copy / removed).unlink()
    (copy / "values" / "extra-1.0.0.values.yaml").write_text("replicas: 1\n")
    assert sorted(lock_problems(copy)) == sorted(
        [
            f"{edited}: sha256 differs from the lock (dapr)",
            f"{removed}: listed for dapr but missing",
            f"values/extra-1.0.0.values.yaml: not listed in {LOCK_FILE}",
        ]
    )


def test_every_pinned_chart_and_manifest_is_vendored_at_its_version() -> None:
    assert vendoring_problems(DEFAULT_REFERENCE_DIR) == []


def test_every_pinned_chart_has_its_default_values() -> None:
    charts = [source for source in pinned_sources() if isinstance(source, HelmChart)]
    assert {chart.name for chart in charts} >= {
        "dapr",
        "strimzi-kafka-operator",
        "kube-prometheus-stack",
        "cert-manager",
        "gateway-helm",
    }
    for chart in charts:
        # The lookup the plan's footprint makes for each Helm release.
        defaults = chart_defaults(chart.chart, chart.version, DEFAULT_REFERENCE_DIR)
        assert defaults, f"no default values for {chart.name} {chart.version}: {REFRESH_COMMAND}"


def test_a_chart_bumped_without_a_refresh_fails_naming_the_command() -> None:
    sources = pinned_sources()
    bumped = [replace(s, version="9.9.9") if s.name == "dapr" else s for s in sources]
    (problem,) = vendoring_problems(DEFAULT_REFERENCE_DIR, bumped)
    assert problem.startswith("dapr: pinned at 9.9.9, the reference data has")
    assert f"run `{REFRESH_COMMAND}`" in problem
    # A source the components no longer use is reported too (its files would go stale).
    kept = [source for source in sources if source.name != "gateway-api"]
    (dropped,) = vendoring_problems(DEFAULT_REFERENCE_DIR, kept)
    assert dropped.startswith("gateway-api ") and "no longer pinned" in dropped


def _served_kinds(root: Path, source: str) -> set[tuple[str, str, str]]:
    """(group, version, kind) of every served version of the CRDs a source put there."""
    (entry,) = [e for e in read_lock(root) if e.name == source]
    served: set[tuple[str, str, str]] = set()
    for relative in entry.files:
        if not relative.startswith("crds/"):
            continue
        for document in yaml.safe_load_all((root / relative).read_text()):
            if not isinstance(document, dict) or document["kind"] != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            served.update(
                (spec["group"], version["name"], spec["names"]["kind"])
                for version in spec["versions"]
                if version.get("served", True)
            )
    return served


def test_the_dapr_and_strimzi_resources_the_program_creates_have_crds_from_the_pinned_charts(
    planned: Any,
) -> None:
    used: set[tuple[str, str, str]] = set()
    for stack in (*STACKS, EPHEMERAL_STACK):
        for obj in planned(stack).objects:
            group, _, version = obj.api_version.rpartition("/")
            if group in CRD_OWNERS:
                used.add((group, version, obj.kind))
    assert {kind for _, _, kind in used} >= {"Component", "Configuration", "Kafka", "KafkaTopic"}
    missing = {
        key for key in used if key not in _served_kinds(DEFAULT_REFERENCE_DIR, CRD_OWNERS[key[0]])
    }
    assert not missing, f"no CRD in the reference data for {sorted(missing)}: {REFRESH_COMMAND}"


def test_a_missing_folder_is_an_error_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(ReferenceDataError, match="has no crds/ or values/: restore") as error:
        reference_dir()
    assert REFRESH_COMMAND in str(error.value)
    # Set but empty (as in `K8S_REFERENCE_DIR= uv run pytest`): the vendored copy.
    monkeypatch.setenv(ENV_VAR, "")
    assert reference_dir() == DEFAULT_REFERENCE_DIR


def test_a_broken_file_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.tooling.plan.reference import crd_documents

    copy = tmp_path / "k8s-reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, copy)
    broken = copy / "crds" / "dapr" / "components.yaml"
    broken.write_text("kind: [unclosed\n")
    monkeypatch.setenv(ENV_VAR, str(copy))
    with pytest.raises(ReferenceDataError, match="components.yaml is not valid YAML"):
        crd_documents()


def test_the_envoy_gateway_kinds_the_program_creates_have_crds_or_a_stand_in(
    planned: Any,
) -> None:
    # gateway-helm's CRDs are vendored from a list of files (ENVOY_GATEWAY_CRD_FILES): a
    # kind the program starts creating needs its file listed there, unless it is checked
    # another way (CRDS_MISSING_FROM_REFERENCE, e.g. EnvoyProxy).
    used: set[tuple[str, str, str]] = set()
    for stack in (*STACKS, EPHEMERAL_STACK):
        for obj in planned(stack).objects:
            group, _, version = obj.api_version.rpartition("/")
            if group == "gateway.envoyproxy.io":
                used.add((group, version, obj.kind))
    assert {kind for _, _, kind in used} >= {"EnvoyProxy", "BackendTrafficPolicy"}
    vendored = _served_kinds(DEFAULT_REFERENCE_DIR, "gateway-helm")
    missing = {key for key in used if key not in vendored} - set(CRDS_MISSING_FROM_REFERENCE)
    assert not missing, f"list the CRD files of {sorted(missing)} in ENVOY_GATEWAY_CRD_FILES"
