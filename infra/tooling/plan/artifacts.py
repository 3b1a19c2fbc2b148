"""Write a plan to disk: resources.json, manifests/, helm-releases/, graph.mmd (§8).

`manifests/` holds exactly the Kubernetes objects the program declares, one per file,
so that `kubectl apply --dry-run`, kubernetes-validate and checkov can take the folder
as it is. Helm releases are not objects (helm renders the chart's objects at deploy
time, which needs helm and the chart: not available offline), so their records go to
`helm-releases/`, one file per release with its chart, version and values.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from infra.tooling.plan.graph import CriticalPath, mermaid
from infra.tooling.plan.objects import KubernetesObject, normalize_numbers
from infra.tooling.plan.runner import PlanRun
from infra.tooling.plan.secret_digest import secret_digests

RESOURCES_FILE = "resources.json"
MANIFESTS_DIR = "manifests"
HELM_RELEASES_DIR = "helm-releases"
GRAPH_FILE = "graph.mmd"
HELM_NOTE = (
    "# Helm release record written by `todo-infra plan`: not a Kubernetes object. The\n"
    "# chart's own objects cannot be rendered offline without helm and the chart, so\n"
    "# this is what the program asks helm for: chart, version, repository, values.\n"
)


def resources_document(run: PlanRun) -> dict[str, Any]:
    """Every resource as §8 describes it; inputs already have secrets as "[secret]"."""
    return {
        "stack": run.stack,
        "resources": [
            {
                "urn": resource.urn,
                "type": resource.type,
                "name": resource.name,
                "parent": resource.parent,
                "provider": resource.provider_urn,
                "dependencies": sorted(resource.dependencies),
                "custom": resource.custom,
                **({"read": True} if resource.read else {}),
                "inputs": normalize_numbers(resource.inputs),
                # Digests of the masked (stand-in) values, so that `todo-infra diff` can
                # tell a changed secret without seeing it (infra/tooling/plan/secret_digest.py).
                **(
                    {"secretDigests": secret_digests(resource.inputs, resource.raw_inputs)}
                    if resource.has_secrets
                    else {}
                ),
            }
            # By URN, not registration order: the program registers concurrently, so that
            # order (and the key order of inputs read back from protobuf maps) varies from
            # run to run, and two plans of the same program must be the same files.
            for resource in sorted(run.resources.values(), key=lambda r: r.urn)
        ],
        "outputs": normalize_numbers(run.outputs),
    }


# libyaml's emitter when available: same YAML, several times faster for ~100 manifests.
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


_HEAD_KEYS = ("apiVersion", "kind", "metadata")


def _dump_yaml(body: dict[str, Any]) -> str:
    """Keys sorted (deterministic files), but a manifest's head where people look for it."""
    head = {key: body[key] for key in _HEAD_KEYS if key in body}
    rest = {key: value for key, value in body.items() if key not in head}
    return "".join(
        yaml.dump(part, Dumper=_DUMPER, sort_keys=True, default_flow_style=False, width=100)
        for part in (head, rest)
        if part
    )


def write_plan(
    run: PlanRun,
    objects: list[KubernetesObject],
    critical: CriticalPath,
    out_dir: Path,
) -> None:
    """Replace `out_dir`'s plan files with this plan's."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESOURCES_FILE).write_text(
        json.dumps(resources_document(run), indent=2, sort_keys=True) + "\n"
    )
    manifests = _fresh_dir(out_dir / MANIFESTS_DIR)
    releases = _fresh_dir(out_dir / HELM_RELEASES_DIR)
    seen: dict[Path, int] = {}
    for obj in sorted(objects, key=lambda o: (o.file_name(), o.resource.urn)):
        target = (releases if obj.is_helm_release else manifests) / obj.file_name()
        if target in seen:  # two resources declaring the same object: keep both, visibly
            seen[target] += 1
            target = target.with_name(f"{target.stem}-{seen[target]}.yaml")
        else:
            seen[target] = 0
        text = _dump_yaml(obj.body)
        target.write_text(HELM_NOTE + text if obj.is_helm_release else text)
    (out_dir / GRAPH_FILE).write_text(mermaid(run.resources, run.stack_urn, critical))


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)  # no stale files from an earlier plan
    path.mkdir()
    return path
