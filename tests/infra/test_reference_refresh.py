"""`todo-infra reference refresh`, offline.

helm and the network are not available here, so the test builds small chart archives
the way `helm package` lays them out (values.yaml, a subchart folder and a packaged
subchart under charts/, crds/), puts a stand-in `helm` on PATH that answers `helm pull`
by copying the archive for the asked chart and version (its flags are Helm's:
`--version`, `--repo`, `--destination`), and serves the release-asset manifest from a
loopback HTTP server.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.tooling.cli import app
from infra.tooling.plan.chart_archive import ChartArchiveError, read_chart_archive
from infra.tooling.plan.reference import (
    DEFAULT_REFERENCE_DIR,
    REFRESH_COMMAND,
    chart_defaults,
    crd_documents,
)
from infra.tooling.plan.reference_lock import LOCK_FILE, lock_problems, read_lock
from infra.tooling.plan.reference_refresh import (
    ENVOY_GATEWAY_CRD_FILES,
    HelmChart,
    Manifest,
    RefreshError,
    pinned_sources,
    refresh,
    vendoring_problems,
)

REPOSITORY = "https://charts.example.test/"
OCI_CHART = "oci://registry.example.test/charts/edgechart"

FAKE_HELM = """\
#!{python}
# A stand-in for `helm pull CHART --version V [--repo URL] --destination DIR`: copies
# $FAKE_HELM_CHARTS/<name>-<version>.tgz into DIR, as helm writes the chart it downloaded,
# and appends its arguments to $FAKE_HELM_LOG.
import argparse, os, shutil, sys
from pathlib import Path

with open(os.environ["FAKE_HELM_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
parser = argparse.ArgumentParser(prog="helm")
commands = parser.add_subparsers(dest="command", required=True)
pull = commands.add_parser("pull")
pull.add_argument("chart")
pull.add_argument("--version", required=True)
pull.add_argument("--repo")
pull.add_argument("--destination", "-d", default=".")
args = parser.parse_args()
if args.chart.startswith("oci://") == bool(args.repo):
    sys.exit("Error: a chart name needs --repo; an oci:// reference takes none")
name = args.chart.rsplit("/", 1)[-1]
archive = Path(os.environ["FAKE_HELM_CHARTS"]) / f"{{name}}-{{args.version}}.tgz"
if not archive.is_file():
    sys.exit(f'Error: chart "{{name}}" version "{{args.version}}" not found in '
             f"{{args.repo or args.chart}} repository")
shutil.copy(archive, Path(args.destination) / archive.name)
"""


def crd(group: str, plural: str, kind: str) -> str:
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  names: {{kind: {kind}, plural: {plural}}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {{type: object, properties: {{size: {{type: integer}}}}}}
"""


def tgz(root: str, files: dict[str, bytes]) -> bytes:
    """A gzipped tar with every file under `root/`, as `helm package` writes a chart."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, content in files.items():
            info = tarfile.TarInfo(f"{root}/{path}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


MAIN_VALUES = b"# defaults\nreplicas: 1\nsub:\n  enabled: true\n"
SUB_VALUES = b"image:\n  tag: v1\n"
PACKED_VALUES = b"port: 80\n"
WIDGETS = crd("example.com", "widgets", "Widget").encode()
GADGETS_JSON = json.dumps(
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Gadget", "plural": "gadgets"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
).encode()


def main_chart() -> bytes:
    packed = tgz(
        "packed",
        {
            "Chart.yaml": b"apiVersion: v2\nname: packed\nversion: 0.1.0\n",
            "values.yaml": PACKED_VALUES,
            "crds/packedthings.yaml": crd("example.com", "packedthings", "PackedThing").encode(),
        },
    )
    return tgz(
        "mychart",
        {
            "Chart.yaml": (
                b"apiVersion: v2\nname: mychart\nversion: 1.0.0\ndependencies:\n"
                b"- name: sub\n  version: 1.0.0\n"
                b"- name: packed\n  version: 0.1.0\n  alias: packed_alias\n"
            ),
            "values.yaml": MAIN_VALUES,
            "templates/deployment.yaml": b"replicas: {{ .Values.replicas }}\n",
            "crds/widgets.yaml": WIDGETS,
            "crds/gadgets.json": GADGETS_JSON,
            "charts/sub/Chart.yaml": b"apiVersion: v2\nname: sub\nversion: 1.0.0\n",
            "charts/sub/values.yaml": SUB_VALUES,
            "charts/sub/crds/subthings.yaml": crd("example.com", "subthings", "SubThing").encode(),
            "charts/packed-0.1.0.tgz": packed,
            "charts/_ignored/Chart.yaml": b"name: ignored\n",
        },
    )


MANIFEST = (
    "# A release asset: CRDs and one other object.\n---\n"
    + crd("things.example.org", "alphas", "Alpha")
    + "---\n"
    + crd("things.example.org", "betas", "Beta")
    + "---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n"
    + "metadata: {name: safe-upgrades}\n"
).encode()


@pytest.fixture
def fake_helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in helm first on PATH; returns its argument log."""
    charts = tmp_path / "charts"
    charts.mkdir()
    (charts / "mychart-1.0.0.tgz").write_bytes(main_chart())
    edge_values = b"deployment:\n  replicas: 1\n"
    (charts / "edgechart-v2.0.0.tgz").write_bytes(
        tgz(
            "edgechart",
            {"Chart.yaml": b"name: edgechart\nversion: v2.0.0\n", "values.yaml": edge_values},
        )
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(FAKE_HELM.format(python=sys.executable))
    helm.chmod(helm.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "helm.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_HELM_CHARTS", str(charts))
    monkeypatch.setenv("FAKE_HELM_LOG", str(log))
    # Parsed chart defaults are not kept in the user's cache by these tests.
    monkeypatch.setenv("TODO_INFRA_BYTECODE_CACHE", "off")
    return log


@pytest.fixture
def release_assets(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A loopback HTTP server with the manifest at /v1.0.0/install.yaml; its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server interface)
            if self.path != "/v1.0.0/install.yaml":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(MANIFEST)))
            self.end_headers()
            self.wfile.write(MANIFEST)

        def log_message(self, *_: object) -> None:
            pass

    for variable in ("NO_PROXY", "no_proxy"):  # straight to loopback, whatever the proxy
        monkeypatch.setenv(variable, "127.0.0.1")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def sources(base_url: str) -> list[HelmChart | Manifest]:
    return [
        HelmChart("mychart", "1.0.0", REPOSITORY, "example"),
        HelmChart(OCI_CHART, "v2.0.0", None, None),
        Manifest("things", f"{base_url}/v1.0.0/install.yaml", "v1.0.0", "things"),
    ]


def stale_folder(target: Path) -> None:
    """A folder refreshed before: an older chart version's files and the README."""
    (target / "values").mkdir(parents=True)
    (target / "crds" / "example").mkdir(parents=True)
    (target / "README.md").write_text("# k8s-reference\n")
    (target / "values" / "mychart-0.9.0.values.yaml").write_text("replicas: 2\n")
    (target / "values" / "mychart-1.0.0.values.yaml").write_text("replicas: 0\n")
    (target / "crds" / "example" / "retired.yaml").write_text(crd("example.com", "olds", "Old"))


def test_refresh_writes_the_charts_values_crds_and_lock(
    tmp_path: Path, fake_helm: Path, release_assets: str
) -> None:
    target = tmp_path / "k8s-reference"
    stale_folder(target)
    report = refresh(target, sources(release_assets))

    values, crds = target / "values", target / "crds"
    assert (values / "mychart-1.0.0.values.yaml").read_bytes() == MAIN_VALUES
    assert (values / "mychart-sub-1.0.0.values.yaml").read_bytes() == SUB_VALUES
    # A dependency with an alias gets its values under the alias (Helm's rule).
    assert (values / "mychart-packed_alias-1.0.0.values.yaml").read_bytes() == PACKED_VALUES
    assert (values / "edgechart-v2.0.0.values.yaml").is_file()
    assert sorted(p.name for p in (crds / "example").iterdir()) == [
        "gadgets.yaml",  # crds/gadgets.json: JSON is YAML, kept under .yaml
        "packedthings.yaml",
        "subthings.yaml",
        "widgets.yaml",
    ]
    assert (crds / "example" / "widgets.yaml").read_bytes() == WIDGETS
    # The manifest: one file per CRD (controller-gen's names), other kinds left out.
    assert sorted(p.name for p in (crds / "things").iterdir()) == [
        "things.example.org_alphas.yaml",
        "things.example.org_betas.yaml",
    ]
    assert report.notes == ["things: 1 other object(s) in the manifest not kept"]
    # What was there for a version no longer pinned is gone; the README stays.
    assert not (values / "mychart-0.9.0.values.yaml").exists()
    assert report.removed == ["crds/example/retired.yaml", "values/mychart-0.9.0.values.yaml"]
    assert report.changed == ["values/mychart-1.0.0.values.yaml"]
    assert (target / "README.md").read_text() == "# k8s-reference\n"

    # The lock lists every file with its hash, and where it came from.
    assert lock_problems(target) == []
    lock = {entry.name: entry for entry in read_lock(target)}
    assert set(lock) == {"mychart", "edgechart", "things"}
    assert (lock["mychart"].chart, lock["mychart"].repository) == ("mychart", REPOSITORY)
    assert lock["mychart"].origin == "helm pull" and lock["things"].origin == "download"
    assert lock["edgechart"].chart == OCI_CHART and lock["edgechart"].repository is None
    assert lock["mychart"].files["values/mychart-1.0.0.values.yaml"] == (
        hashlib.sha256(MAIN_VALUES).hexdigest()
    )
    assert len(lock["mychart"].files) == 7 and len(lock["things"].files) == 2
    assert vendoring_problems(target, sources(release_assets)) == []

    # helm was asked the way Helm takes it: --repo for a repository, none for oci://.
    calls = fake_helm.read_text().splitlines()
    assert calls[0].startswith(f"pull mychart --version 1.0.0 --repo {REPOSITORY} --destination ")
    assert calls[1].startswith(f"pull {OCI_CHART} --version v2.0.0 --destination ")

    # And the readers find it: values merged with the subcharts' under their keys, CRDs.
    assert chart_defaults("mychart", "1.0.0", target) == {
        "replicas": 1,
        "sub": {"enabled": True, "image": {"tag": "v1"}},
        "packed_alias": {"port": 80},
    }
    kinds = {doc["spec"]["names"]["kind"] for doc in crd_documents(target)}
    assert kinds == {"Widget", "Gadget", "SubThing", "PackedThing", "Alpha", "Beta"}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_failing_pull_changes_nothing(
    tmp_path: Path, fake_helm: Path, release_assets: str
) -> None:
    target = tmp_path / "k8s-reference"
    stale_folder(target)
    before = _snapshot(target)
    missing = [*sources(release_assets), HelmChart("mychart-extra", "3.0.0", REPOSITORY, None)]
    with pytest.raises(RefreshError, match='chart "mychart-extra" version "3.0.0" not found'):
        refresh(target, missing)
    assert _snapshot(target) == before


def test_a_manifest_that_cannot_be_downloaded_changes_nothing(
    tmp_path: Path, fake_helm: Path, release_assets: str
) -> None:
    target = tmp_path / "k8s-reference"
    stale_folder(target)
    before = _snapshot(target)
    gone = Manifest("things", f"{release_assets}/v9/install.yaml", "v9", "things")
    with pytest.raises(RefreshError, match="HTTP Error 404"):
        refresh(target, [gone])
    assert _snapshot(target) == before


def test_without_helm_the_refresh_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(RefreshError, match=r"helm is not on PATH: install Helm 3\.8"):
        refresh(tmp_path / "k8s-reference", [HelmChart("mychart", "1.0.0", REPOSITORY, None)])
    assert not (tmp_path / "k8s-reference").exists()


def listed_crds_chart() -> bytes:
    """A chart laid out like gateway-helm: its `crds` subchart holds generated CRDs in a
    folder below `crds/`, next to another project's CRDs (the Gateway API channel)."""
    generated = "charts/crds/crds/generated"
    return tgz(
        "listed",
        {
            "Chart.yaml": b"name: listed\nversion: v3.0.0\ndependencies:\n- name: crds\n",
            "values.yaml": b"crds:\n  enabled: true\n",
            "charts/crds/Chart.yaml": b"name: crds\nversion: 0.0.0\n",
            f"{generated}/example.com_alphas.yaml": crd("example.com", "alphas", "Alpha").encode(),
            f"{generated}/example.com_betas.yaml": crd("example.com", "betas", "Beta").encode(),
            f"{generated}/example.com_gammas.yaml": crd("example.com", "gammas", "Gamma").encode(),
            "charts/crds/crds/other-channel.yaml": crd("other.example", "ways", "Way").encode(),
        },
    )


LISTED = frozenset({"example.com_alphas.yaml", "example.com_betas.yaml"})


def test_a_chart_with_a_list_of_crd_files_keeps_only_those(tmp_path: Path, fake_helm: Path) -> None:
    (fake_helm.parent / "charts" / "listed-v3.0.0.tgz").write_bytes(listed_crds_chart())
    source = HelmChart("listed", "v3.0.0", REPOSITORY, "listed", crd_files=LISTED)
    target = tmp_path / "k8s-reference"
    report = refresh(target, [source])
    assert sorted(p.name for p in (target / "crds" / "listed").iterdir()) == sorted(LISTED)
    assert report.notes == ["listed: kept 2 of its 4 CRD files (the source's list)"]
    assert vendoring_problems(target, [source]) == []
    # A listed file the reference data lost is named, with the command that brings it back.
    unlisted = without_file(target, "crds/listed/example.com_betas.yaml")
    assert vendoring_problems(unlisted, [source]) == [
        f"listed v3.0.0: no crds/listed/example.com_betas.yaml; run `{REFRESH_COMMAND}`"
    ]
    # A listed file the chart does not have (renamed upstream) stops the refresh.
    before = _snapshot(target)
    renamed = HelmChart(
        "listed", "v3.0.0", REPOSITORY, "listed", crd_files=LISTED | {"example.com_deltas.yaml"}
    )
    with pytest.raises(RefreshError, match="no CRD file example.com_deltas.yaml in the chart"):
        refresh(target, [renamed])
    assert _snapshot(target) == before


def without_file(target: Path, dropped: str) -> Path:
    """A copy of the folder whose lock no longer lists `dropped` (and without the file)."""
    copy = target.parent / "copy"
    shutil.copytree(target, copy)
    (copy / dropped).unlink()
    lock = copy / LOCK_FILE
    lock.write_text(
        "".join(line for line in lock.read_text().splitlines(True) if dropped not in line)
    )
    return copy


def test_the_envoy_gateway_crds_the_program_validates_survive_a_refresh() -> None:
    # gateway-helm's CRDs are kept, but only the listed Envoy Gateway ones: its crds/ also
    # holds the experimental Gateway API channel, which must not shadow the standard one.
    (gateway_helm,) = [s for s in pinned_sources() if s.name == "gateway-helm"]
    assert isinstance(gateway_helm, HelmChart)
    assert gateway_helm.crds_folder == "envoy-gateway"
    assert (
        gateway_helm.crd_files
        == ENVOY_GATEWAY_CRD_FILES
        == {
            "gateway.envoyproxy.io_backendtrafficpolicies.yaml",
            "gateway.envoyproxy.io_clienttrafficpolicies.yaml",
        }
    )
    vendored = DEFAULT_REFERENCE_DIR / "crds" / "envoy-gateway"
    assert {p.name for p in vendored.iterdir()} == ENVOY_GATEWAY_CRD_FILES


def test_two_different_crd_files_of_one_name_are_refused() -> None:
    archive = tgz(
        "clash",
        {
            "Chart.yaml": b"name: clash\nversion: 1.0.0\n",
            "crds/things.yaml": crd("a.example", "things", "Thing").encode(),
            "charts/sub/Chart.yaml": b"name: sub\nversion: 1.0.0\n",
            "charts/sub/crds/things.yaml": crd("b.example", "things", "Thing").encode(),
        },
    )
    with pytest.raises(ChartArchiveError, match="a different CRD file named things.yaml"):
        read_chart_archive(archive)


def test_an_archive_reaching_outside_its_folder_is_refused() -> None:
    with pytest.raises(ChartArchiveError, match="unexpected path"):
        read_chart_archive(tgz("chart/../..", {"Chart.yaml": b"name: x\n"}))


# --- the command --------------------------------------------------------------------------

runner = CliRunner()


def test_the_refresh_command_without_helm_exits_1_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "k8s-reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, target)
    before = _snapshot(target)
    monkeypatch.setenv("PATH", str(tmp_path))
    result = runner.invoke(app, ["reference", "refresh", "--target", str(target)])
    assert result.exit_code == 1, result.output
    message = " ".join(result.stderr.split())
    assert "helm is not on PATH" in message and "Nothing was changed." in message
    assert _snapshot(target) == before


def test_the_check_command_passes_the_vendored_data_and_names_a_broken_file(
    tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["reference", "check"])
    assert result.exit_code == 0, result.output
    copy = tmp_path / "k8s-reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, copy)
    (copy / LOCK_FILE).write_text((copy / LOCK_FILE).read_text().replace("1.18.3", "1.18.2"))
    result = runner.invoke(app, ["reference", "check", "--dir", str(copy)])
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "values/dapr-1.18.2.values.yaml: listed for dapr but missing" in message
    assert "dapr: pinned at 1.18.3, the reference data has 1.18.2" in message
