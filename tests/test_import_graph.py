"""No import cycles among the first-party packages (apps, infra, bench, migrations).

The graph is read from the source with `ast`, not by importing anything. What counts as
an edge:

* module-level imports only (inside `if`, `try` and `with` blocks too) — an import inside
  a function or method runs late, on call, and cannot take part in an import-time cycle;
* imports under `if TYPE_CHECKING:` do not count: they never run. The Dapr stand-in is
  held to more: no cycle even counting those, since its five-module cycle lived there;
* `import a.b.c` is an edge to `a.b.c`; `from a.b import c` is an edge to the module
  `a.b.c` when there is one, else to `a.b` (the name is an attribute of it); relative
  imports are resolved against the importing module;
* the implicit import of parent packages (`a`, `a.b` before `a.b.c`) is not an edge, as
  in import-linter/grimp: otherwise every package whose `__init__` re-exports one of its
  own modules would be a "cycle".
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("apps", "infra", "bench", "migrations")
STANDIN = "apps.local.standin"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(
    tree: ast.Module, *, type_checking: bool
) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported, plus TYPE_CHECKING ones if asked."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if type_checking or not _is_type_checking(node.test):
                pending.extend(node.body)
            pending.extend(node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, ast.With):
            pending.extend(node.body)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The most specific first-party module `name` denotes, if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    for alias in node.names:
        yield f"{base}.{alias.name}" if alias.name != "*" else base


def import_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _module_level_imports(tree, type_checking=type_checking):
            for target in _targets(name, path, node):
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    graph[name].add(resolved)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only components that hold a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def one_cycle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """A concrete cycle through the component's first member, for the failure message."""
    inside = set(members)
    start = members[0]
    paths: list[list[str]] = [[start]]
    seen = {start}
    while paths:
        path = paths.pop(0)
        for child in sorted(graph[path[-1]] & inside):
            if child == start:
                return [*path, start]
            if child not in seen:
                seen.add(child)
                paths.append([*path, child])
    return members  # pragma: no cover - a component always holds a cycle


def _describe(graph: dict[str, set[str]], components: list[list[str]]) -> str:
    return "\n".join(
        f"{' -> '.join(one_cycle(graph, members))}  (all of: {', '.join(members)})"
        for members in components
    )


def test_the_graph_sees_first_party_imports() -> None:
    graph = import_graph()
    # Edges the walker must find, one per import form: a sanity check on the parser.
    assert "apps.local.standin.grpc_api" in graph["apps.local.standin.sidecar"]  # from x import y
    assert "apps.local.standin.mesh" in graph[STANDIN]  # a package's __init__
    assert "infra.settings" in graph["infra.__main__"]
    assert all(target in graph for targets in graph.values() for target in targets)


def test_type_checking_imports_count_only_when_asked() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nimport b\n"
    tree = ast.parse(source)

    def imported(type_checking: bool) -> list[str]:
        found = _module_level_imports(tree, type_checking=type_checking)
        return [n.names[0].name for n in found if isinstance(n, ast.Import)]

    assert imported(False) == ["b"]
    assert sorted(imported(True)) == ["a", "b"]


def test_the_cycle_finder_finds_a_cycle_and_names_it() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert one_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles:\n" + _describe(graph, cycles)


SERVICES = ("apps.backend", "apps.notification", "apps.recurring")


def test_every_service_has_the_skeleton() -> None:
    """The parts every service has; `store`, `models` and `workers` where it has them."""
    modules = _modules()
    for service in SERVICES:
        for part in ("main", "settings", "deps", "schemas", "routes", "routes.public"):
            assert f"{service}.{part}" in modules, f"{service}.{part}"


def test_the_services_import_downwards_only() -> None:
    """Routes use the store, workers, deps and schemas, never the other way round, and
    nothing imports `main`: no cycle can form between a service's layers, not even
    through type hints."""
    graph = import_graph(type_checking=True)
    upward: list[str] = []
    for name, edges in graph.items():
        if not name.startswith(SERVICES):
            continue
        service = ".".join(name.split(".")[:2])
        for target in edges:
            into_routes = target.startswith(f"{service}.routes")
            if target == f"{service}.main" or (
                into_routes and not name.startswith((f"{service}.routes", f"{service}.main"))
            ):
                upward.append(f"{name} -> {target}")
    assert not upward, "\n".join(upward)
    cycles = [c for c in strongly_connected(graph) if any(m.startswith(SERVICES) for m in c)]
    assert not cycles, _describe(graph, cycles)


def test_the_standin_has_no_cycle_even_in_type_hints() -> None:
    """Its parts meet through `protocols`: only `runner` and the package know the sidecar."""
    graph = import_graph(type_checking=True)
    standin = {name: edges for name, edges in graph.items() if name.startswith(STANDIN)}
    cycles = strongly_connected(graph)
    assert not [c for c in cycles if any(m.startswith(STANDIN) for m in c)], _describe(
        graph, cycles
    )
    knows_sidecar = {name for name, edges in standin.items() if f"{STANDIN}.sidecar" in edges}
    assert knows_sidecar == {STANDIN, f"{STANDIN}.runner"}


def all_imports(module: str, path: Path) -> Iterator[str]:
    """Every import the module can run: module level, in functions, under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield from _targets(module, path, node)


TOOLING = "infra.tooling"
# The tooling's layers, bottom up: a layer may import those below it, never one above.
TOOLING_LAYERS = (
    ("infra.tooling.repo",),
    ("infra.tooling.plan",),
    ("infra.tooling.delivery",),
    ("infra.tooling.commands",),
    ("infra.tooling.cli", "infra.tooling"),
)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def _layer(module: str) -> int:
    """The layer of the most specific tooling package that holds `module`."""
    matches = [
        (len(package), level)
        for level, packages in enumerate(TOOLING_LAYERS)
        for package in packages
        if _within(module, package)
    ]
    assert matches, f"{module} is in no layer of the tooling"
    return max(matches)[1]


def test_the_program_never_imports_its_tooling() -> None:
    """`pulumi up` runs `infra/__main__.py`, settings, components and the policy pack; the
    `todo-infra` tooling imports them, never the other way, not even inside a function."""
    offenders = [
        (module, target)
        for module, path in _modules().items()
        if not _within(module, TOOLING)
        for target in all_imports(module, path)
        if _within(target, TOOLING)
    ]
    assert not offenders


def test_no_tooling_import_runs_back_up() -> None:
    modules = _modules()
    tooling = {name: path for name, path in modules.items() if _within(name, TOOLING)}
    assert len(tooling) > 20, "the walker should see the whole tooling"
    upward = [
        (module, target)
        for module, path in tooling.items()
        for target in all_imports(module, path)
        if _within(target, TOOLING)
        and (resolved := _resolve(target, modules)) is not None
        and _layer(resolved) > _layer(module)
    ]
    assert not upward


def test_the_layer_check_catches_an_upward_import() -> None:
    assert _layer("infra.tooling.plan.build") < _layer("infra.tooling.delivery.smoke")
    assert _layer("infra.tooling.cli") > _layer("infra.tooling.commands.diff")
    assert _layer("infra.tooling") == _layer("infra.tooling.cli")
