"""The repository's Kubernetes reference data: CRD schemas and Helm charts' default values.

`infra/k8s-reference/` holds upstream CRDs and chart `values.yaml` files for the chart
versions the program pins, with a lock file (`sources.yaml`: where each file came from
and its sha256). `todo-infra reference refresh` rewrites the folder for the pinned
versions (`infra/tooling/plan/reference_refresh.py`). The plan's footprint and the tests read it
from here; `K8S_REFERENCE_DIR` points them at another copy (a refreshed one being tried).
A missing or unreadable folder is an error, never a reason to check less.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from infra.tooling.plan import bytecode_cache
from infra.tooling.repo import REFERENCE_DIR

ENV_VAR = "K8S_REFERENCE_DIR"
DEFAULT_REFERENCE_DIR = REFERENCE_DIR
"""The vendored copy: `infra/k8s-reference/`."""
REFRESH_COMMAND = "uv run todo-infra reference refresh"
# libyaml's loader when PyYAML has it: the kube-prometheus-stack defaults alone are 200 KB,
# half a second with the pure-Python loader.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_T = TypeVar("_T")


class ReferenceDataError(RuntimeError):
    """The reference folder is missing or not what the lock file says."""


def reference_dir() -> Path:
    """`$K8S_REFERENCE_DIR` if set and not empty, else the vendored `infra/k8s-reference`."""
    configured = os.environ.get(ENV_VAR)
    path = Path(configured) if configured else DEFAULT_REFERENCE_DIR
    missing = [f"{name}/" for name in ("crds", "values") if not (path / name).is_dir()]
    if missing:
        origin = f"${ENV_VAR}" if configured else "the repository's copy"
        raise ReferenceDataError(
            f"k8s reference data at {path} ({origin}) has no {' or '.join(missing)}: "
            f"restore infra/k8s-reference from git or run `{REFRESH_COMMAND}`"
        )
    return path


@cache
def _load_yaml(path: Path) -> Any:
    """The file's data, parsed once per process and kept between processes.

    The chart defaults are read-only reference files (kube-prometheus-stack's alone is
    200 KB, ~0.15 s even with libyaml); their parsed form is kept as `marshal` data
    next to the CLI's bytecode cache (off with it), keyed by the file's path, size and
    modification time, and read back in a few milliseconds.
    """
    cached = _cache_file(path)
    if cached is not None:
        try:
            return marshal.loads(cached.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            pass
    data = _parse(path, lambda text: yaml.load(text, Loader=_LOADER))  # noqa: S506 (safe)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            temporary = cached.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(marshal.dumps(data))
            temporary.replace(cached)
        except (OSError, ValueError):
            pass  # unmarshallable data or a read-only cache: parse again next time
    return data


def _parse(path: Path, load: Callable[[str], _T]) -> _T:
    """`load` of the file's text; a file that is not YAML is named in the error."""
    try:
        return load(path.read_text())
    except yaml.YAMLError as error:
        raise ReferenceDataError(
            f"{path} is not valid YAML ({error}); `{REFRESH_COMMAND}` writes it again"
        ) from None


def _cache_file(path: Path) -> Path | None:
    """Where the parsed form of `path` is kept, or None when there is no cache."""
    directory = bytecode_cache.cache_dir()
    if directory is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    key = hashlib.sha256(
        f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{sys.version_info[:2]}".encode()
    ).hexdigest()[:32]
    return directory.parent / "yaml" / f"{key}.marshal"


def chart_defaults(chart: str, version: str, root: Path | None = None) -> dict[str, Any] | None:
    """A chart's default values with its subcharts' defaults under their keys.

    `chart` may be a repository path (`oci://.../gateway-helm`); the last segment is the
    chart name. Returns None when the reference data has no file for this chart version
    (a chart it does not cover); the tests hold every pinned chart to having one.
    """
    base = root or reference_dir()
    name = chart.rstrip("/").rsplit("/", 1)[-1]
    values_dir = base / "values"
    # Some charts are published both as `v1.2.3` and `1.2.3` (Envoy Gateway).
    bare = version.removeprefix("v")
    candidates = [version, bare, f"v{bare}"]
    found = [v for v in candidates if (values_dir / f"{name}-{v}.values.yaml").is_file()]
    if not found:
        return None
    version = found[0]
    main = values_dir / f"{name}-{version}.values.yaml"
    defaults: dict[str, Any] = dict(_load_yaml(main) or {})
    # Subcharts are stored as <chart>-<subchart>-<version>.values.yaml; in the parent
    # chart their values live under the subchart's name.
    for sub_file in sorted(values_dir.glob(f"{name}-*-{version}.values.yaml")):
        subchart = sub_file.name.removeprefix(f"{name}-").removesuffix(f"-{version}.values.yaml")
        sub_defaults = _load_yaml(sub_file) or {}
        merged = deep_merge(sub_defaults, defaults.get(subchart) or {})
        defaults[subchart] = merged
    return defaults


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's value merge: mappings merge key by key, anything else replaces."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def crd_documents(root: Path | None = None) -> list[dict[str, Any]]:
    """Every CRD in the reference folder."""
    base = root or reference_dir()
    documents: list[dict[str, Any]] = []
    for path in sorted((base / "crds").rglob("*.yaml")):
        parsed = _parse(path, lambda text: list(yaml.load_all(text, Loader=_LOADER)))  # noqa: S506
        for document in parsed:
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                documents.append(document)
    return documents
