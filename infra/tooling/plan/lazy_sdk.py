"""Load big generated Pulumi SDK packages lazily, so an offline plan starts fast.

`pulumi_digitalocean/__init__.py` star-imports all of its ~190 modules (every resource
and data source DigitalOcean has), and every one of them pulls in the 3.7 MB of
`_inputs.py`/`outputs.py`: about 2.4 s per process without bytecode, 0.7 s with it. A
plan touches five of those classes, or none at all on minikube.

`install()` puts a finder in front of the normal import machinery for the packages in
`LAZY_PACKAGES` and pulumi_kubernetes' API group packages (`core.v1` star-imports its
~120 resource modules; a program uses a handful). It runs the package's real
`__init__.py` minus its `from .x import *` and `from . import <public module>` lines (so
`_utilities.register(...)`, which tells the engine how to rehydrate resource
references, still runs), and resolves every other name on first
access through a module-level `__getattr__` (PEP 562), importing only the submodule
that defines it. `import pulumi_digitalocean as do; do.KubernetesCluster(...)`,
`from pulumi_digitalocean import Vpc` and `pulumi_digitalocean.outputs` behave exactly
as before. Only `from pulumi_digitalocean import *` would see fewer names (it reads the
module's dict, not `__getattr__`); the program never needs it.

The real `pulumi up` does not use this finder: it only changes how fast names appear,
never which objects they are.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

LAZY_PACKAGES = frozenset({"pulumi_digitalocean"})
# pulumi_kubernetes is lazy at the top already; its API group packages (`core.v1`, 120
# modules of which a program uses a handful) star-import everything the same way.
KUBERNETES_GROUP = re.compile(r"^pulumi_kubernetes\.[a-z0-9_]+\.v[0-9a-z]+$")

_STAR_IMPORT = re.compile(r"^from \.(\w+) import \*\s*$")
# `_utilities` is used by the `__init__` itself; public modules (`outputs`) can wait.
_MODULE_IMPORT = re.compile(r"^from \. import ([a-z]\w*)\s*$")
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")
# Generated type names carry these around the resource or function they belong to.
_TYPE_SUFFIXES = ("ArgsDict", "Args", "Result")


class LazyPackageFinder(importlib.abc.MetaPathFinder):
    """Hands out lazy loaders for the packages it was built for, and nothing else."""

    def __init__(self, packages: frozenset[str], pattern: re.Pattern[str] | None = None) -> None:
        self.packages = packages
        self.pattern = pattern

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.packages and not (self.pattern and self.pattern.match(fullname)):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.submodule_search_locations:
            return None
        spec.loader = LazyPackageLoader(Path(spec.origin))
        return spec


class LazyPackageLoader(importlib.abc.Loader):
    """Executes a package `__init__` without its eager submodule imports."""

    def __init__(self, init_file: Path) -> None:
        self.init_file = init_file

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        eager_lines: list[str] = []
        star_modules: list[str] = []
        plain_modules: list[str] = []
        for line in self.init_file.read_text().splitlines():
            if match := _STAR_IMPORT.match(line):
                star_modules.append(match.group(1))
                eager_lines.append("")  # keep line numbers true for tracebacks
            elif match := _MODULE_IMPORT.match(line):
                plain_modules.append(match.group(1))
                eager_lines.append("")
            else:
                eager_lines.append(line)
        code = compile("\n".join(eager_lines), str(self.init_file), "exec")
        exec(code, module.__dict__)  # noqa: S102 (the package's own __init__, trimmed)
        module.__getattr__ = _name_resolver(module, star_modules, plain_modules)  # type: ignore[method-assign]


def _name_resolver(
    package: ModuleType, star_modules: list[str], plain_modules: list[str]
) -> Callable[[str], Any]:
    """The package's `__getattr__`: import the submodule that exports `name`."""
    plain = set(plain_modules)
    loaded: set[str] = set()

    def load(submodule: str) -> None:
        # What `from .submodule import *` would have done, one module at a time.
        module = importlib.import_module(f"{package.__name__}.{submodule}")
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n in vars(module) if not n.startswith("_")]
        for exported in names:
            current = package.__dict__.get(exported)
            # Importing `get_x` binds the submodule as `package.get_x`; the function of
            # the same name replaces it, as the original star import did.
            if current is None or isinstance(current, ModuleType):
                setattr(package, exported, getattr(module, exported))
        loaded.add(submodule)

    def resolve(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in plain:
            return importlib.import_module(f"{package.__name__}.{name}")
        # Most names live where the generator's naming rule puts them; the scan of the
        # other modules only runs for names that break the rule (or do not exist).
        likely = [m for m in _likely_modules(name) if m in star_modules]
        for submodule in [*likely, *star_modules]:
            if submodule in loaded:
                continue
            load(submodule)
            if name in package.__dict__:
                return package.__dict__[name]
        raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}")

    return resolve


def _likely_modules(name: str) -> list[str]:
    """Where the code generators put `name`: `KubernetesClusterArgs` → `kubernetes_cluster`
    (pulumi_digitalocean), `DeploymentArgs` → `Deployment` (pulumi_kubernetes)."""
    if name[:1].islower():
        return [name.removesuffix("_output")]
    base = name.removeprefix("Awaitable")
    for suffix in _TYPE_SUFFIXES:
        if base.endswith(suffix) and base != suffix:
            base = base.removesuffix(suffix)
            break
    return [_CAMEL_BOUNDARY.sub("_", base).lower(), base, "_inputs", "_enums"]


def install(
    packages: frozenset[str] = LAZY_PACKAGES, pattern: re.Pattern[str] | None = KUBERNETES_GROUP
) -> None:
    """Put the lazy finder first in `sys.meta_path` (once); packages already imported stay."""
    if any(isinstance(finder, LazyPackageFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, LazyPackageFinder(packages, pattern))
