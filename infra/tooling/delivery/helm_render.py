"""The Helm releases of an offline plan, as files `helm template` can render.

    todo-infra proving helm-values --plan-dir build/plan/kind --out build/proving/helm

The program installs charts (`helm.sh/v3:Release`, `helm.sh/v4:Chart`) that the offline
plan cannot render: it records what the program asks Helm for in `resources.json`. This
module writes, for each release, its values (`values/<release>.yaml`) and a manifest
(`releases.json`: release name, chart, repository, version, namespace, values file), so
that the proving ground can run `helm template` with the program's own values and validate
what comes out (kubeconform against the CRD schemas, `kubectl apply --dry-run=server`).

Values the plan masks as secrets (`[secret]`) are not known offline; they become a
placeholder string (the schema check still sees a string where the program passes one),
and the manifest lists their paths.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The policy pack's module is stdlib-only: this reads a plan without importing the Pulumi SDK.
from infra.policy.rules import HELM_TYPES, SECRET_MASK

PLACEHOLDER = "proving-ground-placeholder"
MANIFEST = "releases.json"


class PlanReadError(RuntimeError):
    """The plan folder has no usable resources.json."""


@dataclass(frozen=True)
class HelmRelease:
    """One chart installation, as `helm template` needs it."""

    name: str
    chart: str
    version: str
    namespace: str
    repo: str | None
    values_file: str
    installed_by: str
    placeholders: list[str] = field(default_factory=list)

    def template_args(self, out_dir: Path) -> list[str]:
        """`helm template` arguments rendering this release (CRDs included)."""
        args = ["template", self.name, self.chart, "--version", self.version]
        if self.repo:
            args += ["--repo", self.repo]
        args += ["--namespace", self.namespace, "--values", str(out_dir / self.values_file)]
        return [*args, "--include-crds"]


def _resources(plan_dir: Path) -> list[dict[str, Any]]:
    path = plan_dir / "resources.json"
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PlanReadError(
            f"{path}: {error}; run `uv run todo-infra plan --stack <stack> --out {plan_dir}`"
        ) from None
    resources = document.get("resources") if isinstance(document, dict) else None
    if not isinstance(resources, list):
        raise PlanReadError(f"{path} has no `resources` list: is it a todo-infra plan?")
    return [r for r in resources if isinstance(r, dict)]


def _unmask(value: Any, path: str, found: list[str]) -> Any:
    """`value` with every secret mask replaced by a placeholder; paths go to `found`."""
    if value == SECRET_MASK:
        found.append(path or ".")
        return PLACEHOLDER
    if isinstance(value, Mapping):
        return {k: _unmask(v, f"{path}.{k}" if path else str(k), found) for k, v in value.items()}
    if isinstance(value, list):
        return [_unmask(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine carries every number as a float
    return value


def releases_of(plan_dir: Path) -> list[tuple[HelmRelease, dict[str, Any]]]:
    """Each Helm release in the plan with its values, in the plan's order."""
    found: list[tuple[HelmRelease, dict[str, Any]]] = []
    for resource in _resources(plan_dir):
        if resource.get("type") not in HELM_TYPES:
            continue
        inputs = resource.get("inputs") or {}
        # Release name as the plan's HelmRelease record names it (infra/tooling/plan/objects.py).
        name = str(inputs.get("name") or resource["name"])
        placeholders: list[str] = []
        values = _unmask(inputs.get("values") or {}, "", placeholders)
        repo = (inputs.get("repositoryOpts") or {}).get("repo")
        release = HelmRelease(
            name=name,
            chart=str(inputs["chart"]),
            version=str(inputs["version"]),
            namespace=str(inputs.get("namespace") or "default"),
            repo=str(repo) if repo else None,
            values_file=f"values/{name}.yaml",
            installed_by=str(resource["type"]),
            placeholders=placeholders,
        )
        found.append((release, values))
    names = [release.name for release, _ in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PlanReadError(f"two Helm releases share a name: {duplicates}")
    return found


def write_helm_values(plan_dir: Path, out_dir: Path) -> list[HelmRelease]:
    """Write values/<release>.yaml and releases.json under `out_dir`; return the releases."""
    found = releases_of(plan_dir)
    (out_dir / "values").mkdir(parents=True, exist_ok=True)
    for release, values in found:
        (out_dir / release.values_file).write_text(yaml.safe_dump(values, sort_keys=True))
    manifest = {"releases": [asdict(release) for release, _ in found]}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return [release for release, _ in found]


def read_manifest(out_dir: Path) -> list[HelmRelease]:
    """The releases a previous `write_helm_values` wrote."""
    document = json.loads((out_dir / MANIFEST).read_text())
    return [HelmRelease(**entry) for entry in document["releases"]]


def render_releases(helm_dir: Path, out_dir: Path, *, helm: str = "helm") -> list[Path]:
    """`helm template` each release of `helm_dir`'s manifest into out_dir/<release>.yaml.

    Needs helm and the network (charts are pulled); the proving-ground workflow runs it.
    """
    import subprocess

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for release in read_manifest(helm_dir):
        target = out_dir / f"{release.name}.yaml"
        with target.open("w") as stream:
            subprocess.run(
                [helm, *release.template_args(helm_dir)], stdout=stream, check=True, timeout=600
            )
        written.append(target)
    return written
