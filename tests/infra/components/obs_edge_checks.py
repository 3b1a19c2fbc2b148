"""Helpers for the observability and edge component tests: run a component under the
offline harness, and check what it renders against the k8s reference data.

The reference data (CRD schemas, chart default values) is the repository's vendored copy,
infra/k8s-reference (`K8S_REFERENCE_DIR` points at another copy), read through
`infra.tooling.plan.reference`.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.reference import reference_dir
from infra.tooling.plan.runner import PlanRun, config_from_mapping, run_program

KUBERNETES_VERSION = "1.34.0"
"""The Kubernetes API version rendered objects are validated against (DOKS 1.34)."""


@cache
def _crd_schemas(root: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted(Path(root, "crds").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec["versions"]:
                key = (spec["group"], version["name"], spec["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of a custom resource kind, from the reference CRDs."""
    group, _, version = api_version.rpartition("/")
    schemas = _crd_schemas(str(reference_dir()))
    try:
        return schemas[(group, version, kind)]
    except KeyError:
        raise AssertionError(f"no reference CRD for {api_version} {kind}") from None


def validate_custom_resource(resource: RecordedResource) -> None:
    """Validate a recorded CustomResource's body against its CRD schema."""
    body = dict(resource.raw_inputs)
    schema = crd_schema(body["apiVersion"], body["kind"])
    # metadata is validated by the API server's ObjectMeta rules, not the CRD's schema.
    body.pop("metadata", None)
    jsonschema.Draft7Validator(schema).validate(body)


def validate_builtin(resource: RecordedResource) -> None:
    """Validate a recorded built-in object with kubernetes-validate --strict."""
    body = dict(resource.raw_inputs)
    kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)


def chart_defaults(chart: str, version: str) -> dict[str, Any]:
    """A chart's own default values file (no subcharts') from the reference folder."""
    name = chart.rstrip("/").rsplit("/", 1)[-1]
    path = reference_dir() / "values" / f"{name}-{version}.values.yaml"
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def unknown_value_keys(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    """Dotted paths of keys in `values` that the chart's defaults do not have.

    Below a key whose default is not a non-empty mapping (a scalar, a list, or `{}` that
    the chart passes through as a Kubernetes object) anything goes, so the walk stops.
    """
    missing: list[str] = []

    def walk(mine: Mapping[str, Any], theirs: Mapping[str, Any], prefix: str) -> None:
        for key, value in mine.items():
            path = f"{prefix}{key}"
            if key not in theirs:
                missing.append(path)
                continue
            default = theirs[key]
            if isinstance(value, Mapping) and isinstance(default, Mapping) and default:
                walk(value, default, f"{path}.")

    walk(values, defaults, "")
    return missing


def run_component(tmp_path: Path, source: str, config: Mapping[str, Any]) -> PlanRun:
    """Run a small program (a component under test) under the offline harness."""
    program = tmp_path / "__main__.py"
    program.write_text(textwrap.dedent(source))
    return run_program("test", config_from_mapping(dict(config)), program=program)


def by_name(run: PlanRun) -> dict[str, RecordedResource]:
    """Recorded resources by logical name (names are unique within these programs)."""
    return {res.name: res for res in run.resources.values()}


def of_kind(run: PlanRun, kind: str) -> list[RecordedResource]:
    """Recorded Kubernetes objects of one kind (built-in or custom)."""
    return [res for res in run.resources.values() if res.inputs.get("kind") == kind]


def kubernetes_objects(run: PlanRun) -> Iterator[RecordedResource]:
    """Every recorded Kubernetes object (not providers, components, charts or releases)."""
    for res in run.resources.values():
        if res.custom and "apiVersion" in res.raw_inputs and "kind" in res.raw_inputs:
            yield res


def dumps(value: Any) -> str:
    """Stable JSON text of recorded inputs, for substring checks."""
    return json.dumps(value, sort_keys=True, default=str)
