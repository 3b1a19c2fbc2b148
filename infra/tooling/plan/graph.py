"""The deployment's dependency graph, its critical path, and a Mermaid rendering.

Nodes are the registered resources. An edge `a → b` means the engine cannot start
creating `b` before `a` is done, which happens for three reasons:

- `a` is in `b`'s dependencies (`depends_on`, or an output of `a` flows into `b`'s
  inputs); the SDK already expands a dependency on a component to its children;
- `a` is `b`'s provider (a Kubernetes provider built from a cluster's kubeconfig waits
  for the cluster, and so does everything created through it);
- `a` is `b`'s parent *and a custom resource*: the child is registered only once the
  parent's URN resolves, which for a custom resource is after it was created.
  Component parents create nothing, so that edge does not delay anything and is not
  in the graph.

Each node weighs its estimated duration (`infra.tooling.plan.durations`); the critical path is
the chain with the largest total, i.e. a lower bound on a first `pulumi up` with
unlimited parallelism. Its length is reported both in minutes and in resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from graphlib import TopologicalSorter

from infra.tooling.plan.durations import estimate_minutes
from infra.tooling.plan.mocks import RecordedResource


@dataclass(frozen=True)
class CriticalPath:
    """The heaviest chain of the dependency graph."""

    urns: tuple[str, ...]
    minutes: float

    @property
    def length(self) -> int:
        return len(self.urns)


def predecessors(
    resources: Mapping[str, RecordedResource],
) -> dict[str, set[str]]:
    """For every resource, the resources that must be done before it can start."""
    before: dict[str, set[str]] = {urn: set() for urn in resources}
    for urn, resource in resources.items():
        for dependency in resource.dependencies:
            if dependency in resources and dependency != urn:
                before[urn].add(dependency)
        provider = resource.provider_urn
        if provider and provider in resources:
            before[urn].add(provider)
        parent = resources.get(resource.parent or "")
        if parent is not None and parent.custom:
            before[urn].add(parent.urn)
    return before


def critical_path(resources: Mapping[str, RecordedResource]) -> CriticalPath:
    """The longest chain by estimated duration (ties: more resources, then name order)."""
    before = predecessors(resources)
    finish: dict[str, float] = {}
    chain_length: dict[str, int] = {}
    previous: dict[str, str | None] = {}
    for urn in TopologicalSorter(before).static_order():
        best: str | None = None
        for candidate in sorted(before[urn]):
            if best is None or (finish[candidate], chain_length[candidate]) > (
                finish[best],
                chain_length[best],
            ):
                best = candidate
        start = finish[best] if best else 0.0
        finish[urn] = start + estimate_minutes(resources[urn])
        chain_length[urn] = (chain_length[best] if best else 0) + 1
        previous[urn] = best
    if not finish:
        return CriticalPath(urns=(), minutes=0.0)
    end = max(sorted(finish), key=lambda urn: (finish[urn], chain_length[urn]))
    path: list[str] = []
    cursor: str | None = end
    while cursor is not None:
        path.append(cursor)
        cursor = previous[cursor]
    # Zero-weight links (components' children, providers) still count as resources on
    # the chain: they are real steps the engine takes, just quick ones.
    return CriticalPath(urns=tuple(reversed(path)), minutes=round(finish[end], 2))


def short_type(type_token: str) -> str:
    """A readable type: `apps/v1:Deployment`, `digitalocean:Vpc`, `provider:kubernetes`."""
    package, _, rest = type_token.partition(":")
    module, _, kind = rest.partition(":")
    if package == "pulumi" and module == "providers":
        return f"provider:{kind}"
    if package == "kubernetes":
        return f"{module.removeprefix('core/')}:{kind}"
    if package in {"digitalocean", "random"}:
        return f"{package}:{kind}"
    return kind or type_token


def mermaid(
    resources: Mapping[str, RecordedResource],
    stack_urn: str,
    critical: CriticalPath | None = None,
) -> str:
    """A Mermaid flowchart: components as nested subgraphs, edges `before --> after`."""
    # By URN: registration order varies between runs, the file should not.
    ids = {urn: f"r{index}" for index, urn in enumerate(sorted(resources))}
    children: dict[str, list[str]] = {}
    for urn, resource in sorted(resources.items()):
        parent = resource.parent if resource.parent in resources else stack_urn
        children.setdefault(parent or stack_urn, []).append(urn)
    lines = ["flowchart LR"]

    def label(resource: RecordedResource) -> str:
        text = f"{short_type(resource.type)}<br/>{resource.name}"
        return text.replace('"', "'")

    def emit(parent: str, depth: int) -> None:
        indent = "  " * depth
        for urn in children.get(parent, []):
            resource = resources[urn]
            if not resource.custom and urn in children:
                lines.append(f'{indent}subgraph {ids[urn]}["{label(resource)}"]')
                emit(urn, depth + 1)
                lines.append(f"{indent}end")
            else:
                lines.append(f'{indent}{ids[urn]}["{label(resource)}"]')
                emit(urn, depth)  # children of a custom resource sit beside it

    emit(stack_urn, 1)
    path = critical.urns if critical else ()
    path_edges = set(zip(path, path[1:], strict=False))
    for urn, before in sorted(predecessors(resources).items()):
        for dependency in sorted(before):
            arrow = "==>" if (dependency, urn) in path_edges else "-->"
            lines.append(f"  {ids[dependency]} {arrow} {ids[urn]}")
    if path:
        lines.append("  classDef critical stroke:#d33,stroke-width:3px")
        lines.append(f"  class {','.join(ids[urn] for urn in path)} critical")
    return "\n".join(lines) + "\n"
