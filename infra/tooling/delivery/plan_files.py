"""Read the `resources.json` that `todo-infra plan` writes (architecture §8).

Each entry describes one registered resource: `type`, `name`, `parent`, `provider`,
`dependencies` and `inputs` (secret values replaced by `"[secret]"`), optionally its `urn`
and `secretDigests` (see `infra.tooling.plan.secret_digest`). The reader accepts the file as a
list of entries, as `{"resources": [...]}` or as a mapping keyed by URN, so that a plan
written by an older or newer `todo-infra` can still be compared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESOURCES_FILE = "resources.json"


class PlanFileError(ValueError):
    """A plan directory or its resources.json is missing or malformed."""


@dataclass(frozen=True)
class PlannedResource:
    """One resource of an offline plan, as the diff needs it."""

    key: str
    """Stable identity across plans: the URN when the plan has one."""
    type: str
    name: str
    parent: str | None
    provider: str | None
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]
    secret_digests: dict[str, str] = field(default_factory=dict)
    """Digest of each secret input by dotted path (absent in plans that do not record them)."""

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")

    @property
    def is_component(self) -> bool:
        """Components (and the stack) have no state of their own in the cloud."""
        return not self.is_provider and (
            self.type.startswith("todo:") or self.type == "pulumi:pulumi:Stack"
        )


@dataclass(frozen=True)
class Plan:
    """Every resource of one plan, by key, in the order the plan lists them."""

    source: str
    resources: dict[str, PlannedResource]

    def by_urn(self, urn: str | None) -> PlannedResource | None:
        if urn is None:
            return None
        return self.resources.get(_strip_provider_id(urn))


def _strip_provider_id(reference: str) -> str:
    """Provider references are `<urn>::<id>`; the URN alone identifies the provider."""
    head, sep, tail = reference.rpartition("::")
    # A URN's last segment is the resource name; an id segment follows a complete URN
    # that itself contains at least the `urn:pulumi:` prefix.
    if sep and head.startswith("urn:pulumi:") and head.count("::") >= 3:
        return head
    return reference


def _entry_key(entry: Mapping[str, Any]) -> str:
    urn = entry.get("urn")
    if isinstance(urn, str) and urn:
        return urn
    # Without a URN, type + name + parent identify a resource as the engine does.
    parent = entry.get("parent") or ""
    return f"{parent}${entry['type']}::{entry['name']}"


def _as_entries(document: Any, source: str) -> list[Mapping[str, Any]]:
    if isinstance(document, Mapping) and "resources" in document:
        document = document["resources"]
    if isinstance(document, Mapping):
        entries: list[Mapping[str, Any]] = []
        for urn, entry in document.items():
            if not isinstance(entry, Mapping):
                raise PlanFileError(f"{source}: entry {urn!r} is not an object")
            entries.append({"urn": urn, **entry})
        return entries
    if isinstance(document, list) and all(isinstance(e, Mapping) for e in document):
        return list(document)
    raise PlanFileError(f"{source}: expected a list of resources, got {type(document).__name__}")


def parse_plan(document: Any, source: str) -> Plan:
    """Build a Plan from the decoded JSON of a resources.json."""
    resources: dict[str, PlannedResource] = {}
    for entry in _as_entries(document, source):
        missing = [key for key in ("type", "name") if not isinstance(entry.get(key), str)]
        if missing:
            raise PlanFileError(f"{source}: a resource lacks {', '.join(missing)}: {entry!r:.200}")
        key = _entry_key(entry)
        digests = entry.get("secretDigests") or {}
        resources[key] = PlannedResource(
            key=key,
            type=entry["type"],
            name=entry["name"],
            parent=entry.get("parent") or None,
            provider=_strip_provider_id(entry["provider"]) if entry.get("provider") else None,
            dependencies=tuple(entry.get("dependencies") or ()),
            inputs=dict(entry.get("inputs") or {}),
            secret_digests={str(k): str(v) for k, v in dict(digests).items()},
        )
    return Plan(source=source, resources=resources)


def load_plan(directory: Path) -> Plan:
    """Read `DIRECTORY/resources.json` (or a resources.json path given directly)."""
    path = directory if directory.is_file() else directory / RESOURCES_FILE
    if not path.is_file():
        raise PlanFileError(
            f"no {RESOURCES_FILE} in {directory}; write one with "
            "`uv run todo-infra plan --stack NAME --out DIR`"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PlanFileError(f"{path}: not valid JSON ({error})") from error
    return parse_plan(document, str(path))
