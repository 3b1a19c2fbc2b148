"""What a packaged Helm chart (`helm pull`'s `.tgz`) holds that the reference data needs.

Read in memory, never extracted: the chart's `values.yaml`, the `values.yaml` of each of
its direct subcharts (under the key Helm gives their values: the dependency's `alias`,
else the subchart's name), and every CRD Helm installs from it, which is the files under
`crds/` of the chart and of all its subcharts, recursively.

Mirrors Helm's loader (helm/helm `pkg/chart/v2/loader/load.go`): a subchart under
`charts/` is either a directory or a packaged `.tgz`; names under `charts/` that start
with `.` or `_`, and `.prov` files, are not subcharts. And `Chart.CRDObjects`
(`pkg/chart/v2/chart.go`): a CRD file is one under `crds/` whose name ends in `.yaml`,
`.yml` or `.json` (any case), in the chart and, recursively, in its dependencies. Such a
file is kept under its base name with a `.yaml` suffix (JSON is YAML), which is what the
readers of the reference folder look for.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

CRD_SUFFIXES = (".yaml", ".yml", ".json")


class ChartArchiveError(ValueError):
    """The archive is not a chart, or holds two CRD files of the same name."""


@dataclass
class ChartContents:
    name: str
    version: str
    values: bytes
    subchart_values: dict[str, bytes] = field(default_factory=dict)
    """Values key (alias or name) → the direct subchart's `values.yaml`."""
    crds: dict[str, bytes] = field(default_factory=dict)
    """File name → content, for the chart's and every subchart's `crds/` files."""


def read_chart_archive(data: bytes, where: str = "chart archive") -> ChartContents:
    """The chart in a `.tgz` (one top-level folder, as `helm package` writes it)."""
    files: dict[str, bytes] = {}
    roots: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive.getmembers():
                if not member.isfile():
                    continue
                parts = PurePosixPath(member.name).parts
                if member.name.startswith("/") or ".." in parts or len(parts) < 2:
                    raise ChartArchiveError(f"{where}: unexpected path {member.name!r}")
                extracted = archive.extractfile(member)
                if extracted is None:
                    continue
                roots.add(parts[0])
                files["/".join(parts[1:])] = extracted.read()
    except tarfile.TarError as error:
        raise ChartArchiveError(f"{where}: not a chart archive ({error})") from None
    if len(roots) != 1:
        raise ChartArchiveError(f"{where}: expected one chart folder, found {sorted(roots)}")
    return read_chart_files(files, f"{where}:{roots.pop()}")


def read_chart_files(files: dict[str, bytes], where: str) -> ChartContents:
    """The chart whose files (paths relative to its folder) are `files`."""
    if "Chart.yaml" not in files:
        raise ChartArchiveError(f"{where}: no Chart.yaml")
    metadata = _yaml_mapping(files["Chart.yaml"], f"{where}/Chart.yaml")
    contents = ChartContents(
        name=str(metadata.get("name", "")),
        version=str(metadata.get("version", "")),
        values=files.get("values.yaml", b""),
    )
    for path, content in sorted(files.items()):
        if path.startswith("crds/") and path.lower().endswith(CRD_SUFFIXES):
            name = PurePosixPath(path).stem + ".yaml"
            _add_crd(contents, name, content, f"{where}/{path}")
    for subchart in _subcharts(files, where):
        for key in _values_keys(metadata, subchart.name):
            contents.subchart_values[key] = subchart.values
        for name, content in subchart.crds.items():
            _add_crd(contents, name, content, f"{where}/charts ({subchart.name})")
    return contents


def _subcharts(files: dict[str, bytes], where: str) -> list[ChartContents]:
    groups: dict[str, dict[str, bytes]] = {}
    for path, content in files.items():
        if not path.startswith("charts/"):
            continue
        entry = path.removeprefix("charts/")
        if entry.startswith((".", "_")):
            continue
        head, _, rest = entry.partition("/")
        groups.setdefault(head, {})[rest] = content
    subcharts: list[ChartContents] = []
    for head, group in sorted(groups.items()):
        if "" in group:  # a file directly in charts/
            if head.endswith(".tgz"):
                subcharts.append(read_chart_archive(group[""], f"{where}/charts/{head}"))
            continue  # e.g. a provenance file
        subcharts.append(read_chart_files(group, f"{where}/charts/{head}"))
    return subcharts


def _values_keys(metadata: dict[str, Any], subchart: str) -> list[str]:
    """Where the parent passes values to `subchart`: each matching dependency's alias."""
    dependencies = metadata.get("dependencies") or []
    keys = [
        str(dependency.get("alias") or subchart)
        for dependency in dependencies
        if isinstance(dependency, dict) and dependency.get("name") == subchart
    ]
    return sorted(set(keys)) or [subchart]


def _add_crd(contents: ChartContents, name: str, content: bytes, where: str) -> None:
    if name in contents.crds and contents.crds[name] != content:
        raise ChartArchiveError(f"{where}: a different CRD file named {name} is already there")
    contents.crds[name] = content


def _yaml_mapping(content: bytes, where: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as error:
        raise ChartArchiveError(f"{where}: not valid YAML ({error})") from None
    if not isinstance(document, dict):
        raise ChartArchiveError(f"{where}: expected a mapping")
    return document
