"""`todo-infra proving crd-schemas`: the vendored CRDs in kubeconform's schema layout.

kubeconform itself cannot run here; `jsonschema` validates with the same files the way it
does (`-strict`: unknown fields fail), against custom resources of the kind stack's plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from infra.tooling.delivery.crd_schemas import SCHEMA_LOCATION, strict_schema, write_crd_schemas
from infra.tooling.plan.build import Plan
from infra.tooling.plan.reference import crd_documents


def _validate(obj: dict[str, Any], schema: dict[str, Any]) -> None:
    # Without `check_schema`: some CRD patterns are Go regexps (`^(?i)...`) that Python's
    # `re` rejects as a pattern but that kubeconform (Go) compiles.
    jsonschema.Draft7Validator(schema).validate(obj)


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crd-schemas")
    write_crd_schemas(out)
    return out


def _location(root: Path, obj: dict[str, Any]) -> Path:
    """Where kubeconform's template puts an object's schema."""
    group, _, version = obj["apiVersion"].rpartition("/")
    relative = (
        SCHEMA_LOCATION.replace("{{.Group}}", group)
        .replace("{{.ResourceKind}}", obj["kind"].lower())
        .replace("{{.ResourceAPIVersion}}", version)
    )
    return root / relative


def test_one_schema_per_served_version_in_the_template_layout(schemas: Path) -> None:
    expected = {
        f"{crd['spec']['group']}/{crd['spec']['names']['kind'].lower()}_{v['name']}.json"
        for crd in crd_documents()
        for v in crd["spec"]["versions"]
        if v.get("served", True)
    }
    written = {p.relative_to(schemas).as_posix() for p in schemas.rglob("*.json")}
    assert written == expected
    assert "kafka.strimzi.io/kafka_v1.json" in written
    assert "dapr.io/component_v1alpha1.json" in written


def test_every_custom_resource_of_the_kind_plan_validates(
    schemas: Path, planned: Callable[[str], Plan]
) -> None:
    checked = 0
    for obj in planned("kind").objects:
        location = _location(schemas, obj.body)
        if obj.is_helm_release or not location.is_file():
            continue  # built-in kinds: kubeconform's default location
        _validate(obj.body, json.loads(location.read_text()))
        checked += 1
    assert checked >= 15  # Kafka, topics, user, Dapr components, routes, monitors...


def test_a_misspelt_field_and_a_wrong_type_fail(schemas: Path) -> None:
    topic = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": "t", "namespace": "kafka", "labels": {"strimzi.io/cluster": "c"}},
        "spec": {"partitions": 3, "replicas": 1},
    }
    schema = json.loads(_location(schemas, topic).read_text())
    _validate(topic, schema)
    with pytest.raises(jsonschema.ValidationError, match="partitons"):
        _validate({**topic, "spec": {"partitons": 3}}, schema)
    with pytest.raises(jsonschema.ValidationError, match="'three' is not of type 'integer'"):
        _validate({**topic, "spec": {"partitions": "three"}}, schema)


def test_strictness_follows_the_kubernetes_extensions() -> None:
    schema = strict_schema(
        {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                         "properties": {"a": {"type": "string"}}},
                "maybe": {"type": "string", "nullable": True},
            },
        }
    )  # fmt: skip
    _validate({"port": 80, "free": {"b": 1}, "maybe": None}, schema)
    _validate({"port": "http"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        _validate({"port": 1.5}, schema)
    with pytest.raises(jsonschema.ValidationError, match="other"):
        _validate({"other": 1}, schema)
