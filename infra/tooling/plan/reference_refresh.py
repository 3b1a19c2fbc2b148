"""`todo-infra reference refresh`: rewrite infra/k8s-reference for the pinned versions.

The sources are the charts the components pin (their constants are imported, never
copied here) and two manifests published as release assets:

- a Helm chart: `helm pull` at the pinned version into a temporary folder; from the
  archive (infra/tooling/plan/chart_archive.py) its `values.yaml` becomes
  `values/<chart>-<version>.values.yaml`, each direct subchart's
  `values/<chart>-<subchart>-<version>.values.yaml`, and, where the chart's CRDs are
  wanted, every file Helm installs from `crds/` (or only the files of the source's
  allow-list) lands in `crds/<folder>/`;
- a manifest URL: every CustomResourceDefinition in the multi-document file becomes
  `crds/<folder>/<group>_<plural>.yaml` (controller-gen's file naming); other kinds
  in it are left out.

Everything is fetched and checked before the folder is touched; then `crds/` and
`values/` are replaced as a whole (so files of versions no longer pinned go) and the
lock file is rewritten. Needs `helm` (3.8 or newer, for `oci://` charts) and the network.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from infra.tooling.plan.chart_archive import ChartArchiveError, read_chart_archive
from infra.tooling.plan.reference import REFRESH_COMMAND
from infra.tooling.plan.reference_lock import (
    DATA_FOLDERS,
    LockedSource,
    data_files,
    lock_problems,
    read_lock,
    sha256_of,
    write_lock,
)

GATEWAY_API_FOR_ENVOY_GATEWAY = {"v1.9.0": "v1.6.1"}
"""The Gateway API release each Envoy Gateway version is built against (Envoy Gateway's
compatibility matrix, https://gateway.envoyproxy.io/news/releases/matrix/): the
standard-channel CRDs its gateway-crds-helm chart installs where a cluster has none.
Add the entry when bumping `ENVOY_GATEWAY_VERSION` (infra/components/edge.py)."""

ENVOY_GATEWAY_CRD_FILES = frozenset(
    {
        "gateway.envoyproxy.io_backendtrafficpolicies.yaml",
        "gateway.envoyproxy.io_clienttrafficpolicies.yaml",
    }
)
"""The Envoy Gateway CRDs kept from gateway-helm (its `crds` subchart's
`crds/generated/`): the policy kinds the program creates, so that they are validated
against their schemas. Only these, by name: the same `crds/` holds the experimental
Gateway API channel (`gatewayapi-crds.yaml`), which the program never installs, and
`EnvoyProxy`'s CRD, which `tests/infra/validation.py` checks field by field instead.
Add a file here when the program starts creating another Envoy Gateway kind."""

GATEWAY_API_CRDS_URL = (
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/{version}/"
    "standard-install.yaml"
)
"""The standard channel's CRDs as one manifest (gateway-api.sigs.k8s.io/guides/)."""
CERT_MANAGER_CRDS_URL = (
    "https://github.com/cert-manager/cert-manager/releases/download/{version}/"
    "cert-manager.crds.yaml"
)
"""cert-manager's CRDs as one manifest (cert-manager.io/docs/installation/helm/): the
chart renders them from `templates/crd-*.yaml` under `crds.enabled`, not from `crds/`."""

HELM_INSTALL_HINT = "install Helm 3.8 or newer (https://helm.sh/docs/intro/install/)"
_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)


class RefreshError(RuntimeError):
    """A source could not be fetched or read; the folder was left as it was."""


@dataclass(frozen=True)
class HelmChart:
    """A chart as `helm pull` takes it: a name and `repository`, or an `oci://` ref."""

    chart: str
    version: str
    repository: str | None
    crds_folder: str | None
    """`crds/<folder>/` receives the CRDs it installs from `crds/`; None: not kept."""
    crd_files: frozenset[str] | None = None
    """With a `crds_folder`: only these CRD files (by file name) are kept, and each must be
    in the chart; None: every one."""

    @property
    def name(self) -> str:
        return self.chart.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Manifest:
    """A multi-document YAML file at a URL (a release asset) whose CRDs are kept."""

    name: str
    url: str
    version: str
    crds_folder: str


Source = HelmChart | Manifest


@dataclass
class RefreshReport:
    sources: list[LockedSource]
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def gateway_api_version(envoy_gateway_version: str) -> str:
    try:
        return GATEWAY_API_FOR_ENVOY_GATEWAY[envoy_gateway_version]
    except KeyError:
        raise RefreshError(
            f"no Gateway API version known for Envoy Gateway {envoy_gateway_version}: add it "
            "to GATEWAY_API_FOR_ENVOY_GATEWAY in infra/tooling/plan/reference_refresh.py"
        ) from None


def pinned_sources() -> list[Source]:
    """Every source of the reference data, at the versions the components pin."""
    # Imported here: the components import the Pulumi SDKs, which `todo-infra` loads
    # only for the commands that need them.
    from infra.components import dapr, edge, kafka, observability
    from infra.components.observability import logs, tracing

    gateway_api = gateway_api_version(edge.ENVOY_GATEWAY_VERSION)
    return [
        HelmChart(dapr.DAPR_CHART, dapr.DAPR_CHART_VERSION, dapr.DAPR_REPOSITORY, "dapr"),
        HelmChart(
            kafka.STRIMZI_CHART, kafka.STRIMZI_CHART_VERSION, kafka.STRIMZI_REPOSITORY, "strimzi"
        ),
        HelmChart(
            observability.CHART,
            observability.CHART_VERSION,
            observability.CHART_REPO,
            # The Prometheus Operator's CRDs, from the chart's `crds` subchart.
            "prometheus-operator",
        ),
        HelmChart(
            tracing.COLLECTOR_CHART, tracing.COLLECTOR_CHART_VERSION, tracing.COLLECTOR_REPO, None
        ),
        HelmChart(tracing.TEMPO_CHART, tracing.TEMPO_CHART_VERSION, tracing.TEMPO_REPO, None),
        HelmChart(logs.LOKI_CHART, logs.LOKI_CHART_VERSION, logs.LOKI_REPO, None),
        HelmChart(logs.ALLOY_CHART, logs.ALLOY_CHART_VERSION, logs.ALLOY_REPO, None),
        HelmChart(edge.CERT_MANAGER_CHART, edge.CERT_MANAGER_VERSION, edge.CERT_MANAGER_REPO, None),
        Manifest(
            "cert-manager-crds",
            CERT_MANAGER_CRDS_URL.format(version=edge.CERT_MANAGER_VERSION),
            edge.CERT_MANAGER_VERSION,
            "cert-manager",
        ),
        # Its `crds/` holds the experimental Gateway API channel (the program installs the
        # standard one) next to Envoy Gateway's own CRDs: only the listed ones are kept.
        HelmChart(
            edge.GATEWAY_CHART,
            edge.ENVOY_GATEWAY_VERSION,
            None,
            "envoy-gateway",
            crd_files=ENVOY_GATEWAY_CRD_FILES,
        ),
        Manifest(
            "gateway-api",
            GATEWAY_API_CRDS_URL.format(version=gateway_api),
            gateway_api,
            "gateway-api",
        ),
    ]


# --- fetching -------------------------------------------------------------------------


def helm_binary() -> str:
    found = shutil.which("helm")
    if found is None:
        raise RefreshError(f"helm is not on PATH: {HELM_INSTALL_HINT}")
    return found


def pull_chart(source: HelmChart, helm: str, workdir: Path) -> bytes:
    """The chart archive `helm pull` writes for the pinned version."""
    destination = workdir / source.name
    destination.mkdir(parents=True)
    command = [helm, "pull", source.chart, "--version", source.version]
    if source.repository is not None:
        command += ["--repo", source.repository]
    command += ["--destination", str(destination)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RefreshError(f"`helm {' '.join(command[1:])}` did not run: {error}") from None
    if result.returncode != 0:
        raise RefreshError(
            f"`helm {' '.join(command[1:])}` failed: {(result.stderr or result.stdout).strip()}"
        )
    archives = sorted(destination.glob("*.tgz"))
    if len(archives) != 1:
        raise RefreshError(f"helm pull {source.chart}: expected one .tgz, found {archives}")
    return archives[0].read_bytes()


def download(url: str) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in {"https", "http"}:
        raise RefreshError(f"{url}: only http(s) URLs are fetched")
    request = urllib.request.Request(url, headers={"User-Agent": "todo-infra"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (checked)
            body: bytes = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise RefreshError(f"download of {url} failed: {error}") from None
    return body


# --- turning what was fetched into the folder's files ---------------------------------


def chart_files(source: HelmChart, archive: bytes) -> tuple[dict[str, bytes], list[str]]:
    """Relative path → content of what the chart contributes, and notes."""
    try:
        contents = read_chart_archive(archive, f"{source.name} {source.version}")
    except ChartArchiveError as error:
        raise RefreshError(str(error)) from None
    if contents.name != source.name:
        raise RefreshError(f"helm pull {source.chart} gave chart {contents.name!r}")
    files = {f"values/{source.name}-{source.version}.values.yaml": contents.values}
    for key, values in contents.subchart_values.items():
        files[f"values/{source.name}-{key}-{source.version}.values.yaml"] = values
    for relative, content in files.items():
        _values_mapping(content, f"{source.name}: {relative}")
    notes: list[str] = []
    if source.crds_folder is not None:
        crds = contents.crds
        if source.crd_files is not None:
            missing = sorted(source.crd_files - set(crds))
            if missing:
                raise RefreshError(
                    f"{source.name} {source.version}: no CRD file {', '.join(missing)} in the "
                    "chart; fix the source's list of CRD files"
                )
            crds = {name: crds[name] for name in source.crd_files}
            notes.append(
                f"{source.name}: kept {len(crds)} of its {len(contents.crds)} CRD files "
                "(the source's list)"
            )
        for name, content in sorted(crds.items()):
            if _crd_documents(content, f"{source.name}: crds {name}"):
                files[f"crds/{source.crds_folder}/{name}"] = content
            elif source.crd_files is not None:
                raise RefreshError(f"{source.name}: listed crds file {name} holds no CRD")
            else:
                notes.append(f"{source.name}: crds file {name} holds no CRD; not kept")
    return files, notes


def manifest_files(source: Manifest, body: bytes) -> tuple[dict[str, bytes], list[str]]:
    """One file per CRD in the manifest, each document's text kept as it was."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise RefreshError(f"{source.url}: not UTF-8 text") from None
    files: dict[str, bytes] = {}
    others = 0
    for chunk in _DOCUMENT_SEPARATOR.split(text):
        documents = _crd_documents(chunk.encode(), source.url)
        if not documents:
            if not _only_comments(chunk):
                others += 1
            continue
        spec = documents[0]["spec"]
        relative = f"crds/{source.crds_folder}/{spec['group']}_{spec['names']['plural']}.yaml"
        if relative in files:
            raise RefreshError(f"{source.url}: two CRDs for {relative}")
        files[relative] = (chunk.strip("\n") + "\n").encode()
    if not files:
        raise RefreshError(f"{source.url}: no CustomResourceDefinition in it")
    notes = [f"{source.name}: {others} other object(s) in the manifest not kept"] if others else []
    return files, notes


def _only_comments(chunk: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in chunk.splitlines())


def _crd_documents(content: bytes, where: str) -> list[dict[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(content))
    except yaml.YAMLError as error:
        raise RefreshError(f"{where}: not valid YAML ({error})") from None
    crds = [
        d for d in documents if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
    ]
    for crd in crds:
        for version in crd.get("spec", {}).get("versions", []):
            if "openAPIV3Schema" not in (version.get("schema") or {}):
                name = crd.get("metadata", {}).get("name")
                raise RefreshError(f"{where}: CRD {name} {version.get('name')} has no schema")
    return crds


def _values_mapping(content: bytes, where: str) -> None:
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as error:
        raise RefreshError(f"{where}: not valid YAML ({error})") from None
    if document is not None and not isinstance(document, dict):
        raise RefreshError(f"{where}: chart values are not a mapping")


# --- the refresh ------------------------------------------------------------------------


def fetch_all(sources: Sequence[Source]) -> tuple[dict[str, bytes], list[LockedSource], list[str]]:
    """Every file of every source, their lock entries and notes; nothing written yet."""
    helm = helm_binary() if any(isinstance(s, HelmChart) for s in sources) else ""
    collected: dict[str, bytes] = {}
    owners: dict[str, str] = {}
    locked: list[LockedSource] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="k8s-reference-") as work:
        for source in sources:
            files, entry, found = _fetch(source, helm, Path(work))
            for relative in files:
                if relative in owners:
                    raise RefreshError(
                        f"{relative}: from both {owners[relative]} and {source.name}"
                    )
                owners[relative] = source.name
            collected.update(files)
            digests = {path: hashlib.sha256(content).hexdigest() for path, content in files.items()}
            locked.append(replace(entry, files=digests))
            notes.extend(found)
    return collected, locked, notes


def _fetch(
    source: Source, helm: str, work: Path
) -> tuple[dict[str, bytes], LockedSource, list[str]]:
    if isinstance(source, HelmChart):
        files, notes = chart_files(source, pull_chart(source, helm, work))
        entry = LockedSource(
            name=source.name,
            version=source.version,
            origin="helm pull",
            chart=source.chart,
            repository=source.repository,
        )
        return files, entry, notes
    files, notes = manifest_files(source, download(source.url))
    entry = LockedSource(source.name, source.version, origin="download", url=source.url)
    return files, entry, notes


def refresh(target: Path, sources: Sequence[Source] | None = None) -> RefreshReport:
    """Fetch every source and rewrite `target`'s data folders and lock file."""
    chosen = list(pinned_sources() if sources is None else sources)
    collected, locked, notes = fetch_all(chosen)
    before = {relative: sha256_of(target / relative) for relative in data_files(target)}
    target.mkdir(parents=True, exist_ok=True)
    for folder in DATA_FOLDERS:
        shutil.rmtree(target / folder, ignore_errors=True)
    for relative, content in collected.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    write_lock(target, locked)
    problems = lock_problems(target)
    if problems:  # a bug here, not upstream: the folder must match what was just written
        raise RefreshError("the refreshed folder does not match its lock: " + "; ".join(problems))
    after = {
        relative: hashlib.sha256(content).hexdigest() for relative, content in collected.items()
    }
    return RefreshReport(
        sources=locked,
        added=sorted(set(after) - set(before)),
        changed=sorted(r for r in set(after) & set(before) if after[r] != before[r]),
        removed=sorted(set(before) - set(after)),
        notes=notes,
    )


# --- is the folder current? -------------------------------------------------------------


def vendoring_problems(root: Path, sources: Sequence[Source] | None = None) -> list[str]:
    """How the folder's lock differs from the pinned sources (empty when it is current).

    A chart version bumped in a component without a refresh shows up here, as does a
    source whose values file or CRDs are missing.
    """
    chosen = list(pinned_sources() if sources is None else sources)
    hint = f"run `{REFRESH_COMMAND}`"
    locked = {entry.name: entry for entry in read_lock(root)}
    problems: list[str] = []
    for source in chosen:
        entry = locked.pop(source.name, None)
        if entry is None:
            problems.append(f"{source.name} {source.version}: not in the reference data; {hint}")
            continue
        expected = (
            (source.chart, source.repository, None)
            if isinstance(source, HelmChart)
            else (None, None, source.url)
        )
        if (
            entry.version != source.version
            or (entry.chart, entry.repository, entry.url) != expected
        ):
            problems.append(
                f"{source.name}: pinned at {source.version}, the reference data has "
                f"{entry.version}; {hint}"
            )
            continue
        if isinstance(source, HelmChart):
            values = f"values/{source.name}-{source.version}.values.yaml"
            if values not in entry.files:
                problems.append(f"{source.name} {source.version}: no {values}; {hint}")
        if source.crds_folder is None:
            continue
        listed = source.crd_files if isinstance(source, HelmChart) else None
        if listed is not None:
            problems.extend(
                f"{source.name} {source.version}: no crds/{source.crds_folder}/{name}; {hint}"
                for name in sorted(listed)
                if f"crds/{source.crds_folder}/{name}" not in entry.files
            )
        elif not any(
            relative.startswith(f"crds/{source.crds_folder}/") for relative in entry.files
        ):
            problems.append(
                f"{source.name} {source.version}: no CRDs in crds/{source.crds_folder}/; {hint}"
            )
    problems.extend(
        f"{name} {entry.version}: no longer pinned by the components; {hint}"
        for name, entry in locked.items()
    )
    return problems
