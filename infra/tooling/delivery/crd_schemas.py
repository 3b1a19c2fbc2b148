"""The vendored CRDs (infra/k8s-reference/crds) as JSON schemas kubeconform reads.

    todo-infra proving crd-schemas --out build/proving/crd-schemas

kubeconform finds a custom resource's schema through a `-schema-location` template; this
writes the layout of the common template
`{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json` (kind lowercased), e.g.
`kafka.strimzi.io/kafka_v1.json`, one file per served version of each CRD. See
https://github.com/yannh/kubeconform#overriding-schemas-location.

The conversion does what kubeconform's own `openapi2jsonschema.py` does for `-strict`:
objects that list their properties and say nothing else about extra keys get
`additionalProperties: false` (unless `x-kubernetes-preserve-unknown-fields`), an
`int-or-string` field accepts either, and `nullable` fields accept null. The schemas are
what the API server validates the objects against, so a typo in a value the program passes
fails here instead of on the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.tooling.plan.reference import crd_documents

_SCHEMA_KEYS_WITH_SUBSCHEMAS = ("properties", "patternProperties")
_SCHEMA_KEYS_WITH_ONE = ("items", "additionalProperties", "not")
_SCHEMA_KEYS_WITH_LIST = ("allOf", "anyOf", "oneOf")


def strict_schema(node: Any) -> Any:
    """An OpenAPI v3 (structural) schema as a strict JSON schema."""
    if not isinstance(node, Mapping):
        return node
    schema: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_KEYS_WITH_SUBSCHEMAS and isinstance(value, Mapping):
            schema[key] = {name: strict_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_KEYS_WITH_ONE and isinstance(value, Mapping):
            schema[key] = strict_schema(value)
        elif key in _SCHEMA_KEYS_WITH_LIST and isinstance(value, list):
            schema[key] = [strict_schema(sub) for sub in value]
        else:
            schema[key] = value
    if schema.pop("x-kubernetes-int-or-string", False):
        schema.pop("type", None)
        schema["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        schema["additionalProperties"] = False
    if schema.pop("nullable", False) and isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    return schema


def schema_files(crds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Relative path → schema, for every served version of every CRD."""
    files: dict[str, dict[str, Any]] = {}
    for crd in crds:
        spec = crd["spec"]
        group, kind = spec["group"], spec["names"]["kind"]
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            openapi = (version.get("schema") or {}).get("openAPIV3Schema")
            if not isinstance(openapi, Mapping):
                continue  # a version without a schema accepts anything: nothing to check
            schema = strict_schema(openapi)
            schema.setdefault("type", "object")
            schema["x-kubernetes-group-version-kind"] = [
                {"group": group, "kind": kind, "version": version["name"]}
            ]
            files[f"{group}/{kind.lower()}_{version['name']}.json"] = schema
    return files


def write_crd_schemas(out_dir: Path, reference: Path | None = None) -> list[Path]:
    """Write the schemas of the vendored (or `reference`'s) CRDs under `out_dir`."""
    written = []
    for relative, schema in sorted(schema_files(crd_documents(reference)).items()):
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


SCHEMA_LOCATION = "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
"""The kubeconform `-schema-location` template (prefixed with the output folder)."""
