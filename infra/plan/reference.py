"""Reference data outside the repository: CRD schemas and Helm charts' default values.

The team keeps byte-for-byte copies of upstream CRDs and chart `values.yaml` files in
`../shared/k8s-reference` (next to the repository; `K8S_REFERENCE_DIR` overrides it).
They are read from there at run time and never copied into the repository. When the
folder is absent, callers get `None` and say what they could not check.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.plan import bytecode_cache
from infra.plan.runner import PROJECT_ROOT

ENV_VAR = "K8S_REFERENCE_DIR"
# libyaml's loader when PyYAML has it: the kube-prometheus-stack defaults alone are 200 KB,
# half a second with the pure-Python loader.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def reference_dir() -> Path | None:
    """The reference folder, or None when it is not there."""
    configured = os.environ.get(ENV_VAR)
    path = Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "k8s-reference"
    return path if (path / "values").is_dir() or (path / "crds").is_dir() else None


def missing_reference_message() -> str:
    return (
        "k8s-reference data not found (set K8S_REFERENCE_DIR or place it at "
        "../shared/k8s-reference next to the repository)"
    )


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
    data = yaml.load(path.read_text(), Loader=_LOADER)  # noqa: S506 (a safe loader)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            temporary = cached.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(marshal.dumps(data))
            temporary.replace(cached)
        except (OSError, ValueError):
            pass  # unmarshallable data or a read-only cache: parse again next time
    return data


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
    chart name. Returns None when the reference data has no file for this chart version.
    """
    base = root or reference_dir()
    if base is None:
        return None
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
    if base is None:
        return []
    documents: list[dict[str, Any]] = []
    for path in sorted((base / "crds").rglob("*.yaml")):
        for document in yaml.load_all(path.read_text(), Loader=_LOADER):  # noqa: S506
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                documents.append(document)
    return documents
