"""The lock file of the k8s reference data: `infra/k8s-reference/sources.yaml`.

One entry per source (a Helm chart at a pinned version, or a manifest downloaded from a
URL): where it comes from, how its files were obtained, and the sha256 of every file it
put in the folder. `todo-infra reference refresh` writes it; `lock_problems` (run by the
tests and by `todo-infra reference check`) holds the folder to it: every listed file
there with its hash, and no file under `crds/` or `values/` that no source lists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.tooling.plan.reference import REFRESH_COMMAND, ReferenceDataError

LOCK_FILE = "sources.yaml"
DATA_FOLDERS = ("crds", "values")
"""The folders whose every file a source must list (README.md and the lock are not data)."""

_HEADER = f"""\
# The k8s reference data's sources and the sha256 of every file they put here.
# Written by `{REFRESH_COMMAND}` (infra/tooling/plan/reference_refresh.py);
# do not edit by hand. tests/infra/test_reference_data.py checks that every file under
# crds/ and values/ is listed with its hash, and that the versions are the ones
# infra/components pin.
"""


@dataclass(frozen=True)
class LockedSource:
    """One source's entry in the lock file."""

    name: str
    version: str
    origin: str
    """How the files were obtained: `helm pull`, `download`, or a note on a hand copy."""
    files: Mapping[str, str] = field(default_factory=dict)
    """Path relative to the reference folder (`values/dapr-1.18.3.values.yaml`) → sha256."""
    chart: str | None = None
    """The chart as `helm pull` takes it: a name (with `repository`) or `oci://...`."""
    repository: str | None = None
    url: str | None = None
    """A manifest's download URL (a release asset)."""

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        for key in ("chart", "repository", "url"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data.update(
            version=self.version, origin=self.origin, files=dict(sorted(self.files.items()))
        )
        return data


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_files(root: Path) -> list[str]:
    """Every file under the data folders, as posix paths relative to `root`."""
    return sorted(
        path.relative_to(root).as_posix()
        for folder in DATA_FOLDERS
        if (root / folder).is_dir()
        for path in (root / folder).rglob("*")
        if path.is_file()
    )


def write_lock(root: Path, sources: Sequence[LockedSource]) -> Path:
    path = root / LOCK_FILE
    body = yaml.safe_dump(
        {"sources": [source.as_data() for source in sources]},
        sort_keys=False,
        width=100,
        default_flow_style=False,
    )
    path.write_text(_HEADER + body)
    return path


def read_lock(root: Path) -> list[LockedSource]:
    """The lock file's entries; a missing or malformed file is a ReferenceDataError."""
    path = root / LOCK_FILE
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ReferenceDataError(
            f"{path} is missing: `{REFRESH_COMMAND}` writes it with the data"
        ) from None
    except yaml.YAMLError as error:
        raise ReferenceDataError(f"{path} is not valid YAML: {error}") from None
    entries = document.get("sources") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ReferenceDataError(f"{path}: expected a `sources:` list")
    sources: list[LockedSource] = []
    for entry in entries:
        try:
            sources.append(
                LockedSource(
                    name=str(entry["name"]),
                    version=str(entry["version"]),
                    origin=str(entry["origin"]),
                    files={str(k): str(v) for k, v in dict(entry["files"]).items()},
                    chart=entry.get("chart"),
                    repository=entry.get("repository"),
                    url=entry.get("url"),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ReferenceDataError(f"{path}: malformed entry {entry!r} ({error})") from None
    return sources


def lock_problems(root: Path) -> list[str]:
    """What differs between the folder and its lock file (empty when they agree)."""
    problems: list[str] = []
    listed: dict[str, str] = {}
    for source in read_lock(root):
        for relative, digest in source.files.items():
            if relative in listed:
                problems.append(f"{relative}: listed by both {listed[relative]} and {source.name}")
                continue
            listed[relative] = source.name
            path = root / relative
            if not path.is_file():
                problems.append(f"{relative}: listed for {source.name} but missing")
            elif sha256_of(path) != digest:
                problems.append(f"{relative}: sha256 differs from the lock ({source.name})")
    problems.extend(
        f"{relative}: not listed in {LOCK_FILE}"
        for relative in data_files(root)
        if relative not in listed
    )
    return problems
