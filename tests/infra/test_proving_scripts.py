"""The proving ground's scripts, and the kind job of its workflow, run against fakes.

Docker, kind, a cluster, helm charts and the Pulumi CLI are not here. Each tool the scripts
call is a stand-in on PATH (`FAKE`, one Python script under every name) that records its
argv and can be told to print something or to fail. `run_job` executes the `run:` steps of
.github/workflows/proving-ground.yml in order with GitHub's rules for `if:` (no condition:
only while nothing failed; `always()`; `failure()`), so the order of operations asserted
here is the workflow's own, not a copy of it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from apps.contracts.services import APP_IDS

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / ".github" / "scripts"
WORKFLOW = ROOT / ".github" / "workflows" / "proving-ground.yml"
TOOLS = ROOT / ".github" / "proving-ground" / "tools.txt"
TOOL_NAMES = ("kind", "kubectl", "helm", "docker", "pulumi", "uv", "curl", "gh", "kubeconform")

FAKE = textwrap.dedent(
    """\
    #!{python}
    # Stand-in for a CLI: logs argv, prints canned output, fails when told to.
    import json, os, sys, time
    tool = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    line = " ".join([tool, *args])
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps([tool, *args]) + "\\n")
    for pattern in filter(None, os.environ.get("FAKE_FAIL", "").split("\\n")):
        if pattern in line:
            sys.exit(tool + ": failing as told (" + pattern + ")")
    if tool == "kubectl" and "port-forward" in args:
        print("Forwarding from 127.0.0.1:18080 -> 10080", flush=True)
        time.sleep(30)
    if tool == "pulumi" and args[:1] == ["login"]:
        os.makedirs(args[1].removeprefix("file://") + "/.pulumi", exist_ok=True)
    if tool == "curl":
        url, target = args[-1], args[args.index("--output") + 1]
        source = os.path.join(os.environ["FAKE_DOWNLOADS"], url.rsplit("/", 1)[-1])
        with open(source, "rb") as src, open(target, "wb") as dst:
            dst.write(src.read())
    outputs = json.load(open(os.environ["FAKE_OUTPUTS"])) if os.environ.get("FAKE_OUTPUTS") else []
    for pattern, out in outputs:
        if pattern in line:
            sys.stdout.write(out)
            break
    """
)

# What the cluster answers: workloads per namespace, the Envoy Service, the JWT key.
CLUSTER_OUTPUTS = [
    ["get deployments,statefulsets -n todo",
     "deployment.apps/backend\ndeployment.apps/notification\n"
     "deployment.apps/recurring\nstatefulset.apps/postgresql\n"],
    ["get deployments,statefulsets -n kafka", "deployment.apps/strimzi-cluster-operator\n"],
    ["get deployments,statefulsets -n dapr-system", "deployment.apps/dapr-operator\n"],
    ["get deployments,statefulsets -n envoy-gateway-system", "deployment.apps/envoy-gateway\n"],
    ["get deployments,statefulsets -n monitoring", "deployment.apps/grafana\n"],
    ["get service -n envoy-gateway-system", "envoy-envoy-gateway-system-todo-1a2b3c4d"],
    ["stack output authJwtKey", "jwt-key-from-the-stack"],
]  # fmt: skip


@dataclass
class Fakes:
    """A repository copy and a PATH of fakes; `calls` is what they were asked, in order."""

    tmp: Path
    outputs: list[list[str]] = field(default_factory=lambda: [list(o) for o in CLUSTER_OUTPUTS])
    fail: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Steps of `run_job` that failed, with their stderr."""

    def __post_init__(self) -> None:
        self.bin = self.tmp / "fake-bin"
        self.bin.mkdir()
        for name in TOOL_NAMES:
            path = self.bin / name
            path.write_text(FAKE.format(python=sys.executable))
            path.chmod(0o755)
        self.log = self.tmp / "calls.jsonl"
        self.log.touch()
        self.downloads = self.tmp / "downloads"
        self.downloads.mkdir()
        self.repo = self.tmp / "repo"
        shutil.copytree(ROOT / ".github", self.repo / ".github")
        self.runner_temp = self.tmp / "runner-temp"
        self.runner_temp.mkdir()
        self.github_path = self.tmp / "github-path"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        outputs = self.tmp / "outputs.json"
        outputs.write_text(json.dumps(self.outputs))
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.tmp),
            "FAKE_LOG": str(self.log),
            "FAKE_FAIL": "\n".join(self.fail),
            "FAKE_OUTPUTS": str(outputs),
            "FAKE_DOWNLOADS": str(self.downloads),
            "RUNNER_TEMP": str(self.runner_temp),
            "GITHUB_PATH": str(self.github_path),
            "GITHUB_REPOSITORY": "acme/todo",
            "GITHUB_SHA": "c" * 40,
            **(extra or {}),
        }

    def run(
        self, script: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:  # noqa: E501
        return subprocess.run(
            ["bash", str(self.repo / ".github" / "scripts" / script), *args],
            cwd=self.repo, env=self.env(env), capture_output=True, text=True, check=False,
            timeout=120,
        )  # fmt: skip

    @property
    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def lines(self) -> list[str]:
        return [" ".join(call) for call in self.calls]

    def index(self, fragment: str) -> int:
        """Position of the first call containing `fragment` (fails the test if none)."""
        for position, line in enumerate(self.lines()):
            if fragment in line:
                return position
        raise AssertionError(f"no call contains {fragment!r}:\n" + "\n".join(self.lines()))

    def called(self, fragment: str) -> bool:
        return any(fragment in line for line in self.lines())

    def fake_downloads(self) -> dict[str, str]:
        """Downloads for every tool of tools.txt (the fake itself), and the checksum files
        their projects publish, in each project's format; the digests by tool."""
        text = (self.repo / ".github" / "proving-ground" / "tools.txt").read_text()
        digests: dict[str, str] = {}
        for name, version, expected, url, member in _tool_lines(text):
            payload = FAKE.format(python=sys.executable).encode()
            if member:
                path = member + name if member.endswith("/") else member
                buffer = io.BytesIO()
                with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
                    info = tarfile.TarInfo(path)
                    info.size, info.mode = len(payload), 0o755
                    archive.addfile(info, io.BytesIO(payload))
                payload = buffer.getvalue()
            file_name = url.replace("{version}", version).rsplit("/", 1)[-1]
            (self.downloads / file_name).write_bytes(payload)
            digest = digests[name] = hashlib.sha256(payload).hexdigest()
            if expected.startswith("published="):
                listing = expected.removeprefix("published=").replace("{version}", version)
                # kubectl publishes a bare digest; the others `digest  file` lines, with
                # other files' lines around it (goreleaser, Pulumi).
                body = (
                    f"{digest}\n"
                    if listing.endswith(".sha256")
                    else f"{'0' * 64}  other-file\n{digest}  {file_name}\n"
                )
                (self.downloads / listing.rsplit("/", 1)[-1]).write_text(body)
        return digests

    def pin_fake_downloads(self) -> None:
        """The fake downloads, with their digests pinned in tools.txt."""
        tools = self.repo / ".github" / "proving-ground" / "tools.txt"
        text = tools.read_text()
        for name, digest in self.fake_downloads().items():
            text = re.sub(rf"^({re.escape(name)}\s+\S+\s+)\S+", rf"\g<1>{digest}",
                          text, flags=re.MULTILINE)  # fmt: skip
        tools.write_text(text)


def _tool_lines(text: str) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or line.startswith("chart:"):
            continue
        name, version, digest, url, *member = line.split()
        rows.append((name, version, digest, url, member[0] if member else ""))
    return rows


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path)


# --------------------------------------------------------------------------- the workflow


def _condition_allows(condition: Any, failed: bool) -> bool:
    if condition is None:
        return not failed
    text = str(condition).strip()
    if text in ("always()", "${{ always() }}"):
        return True
    if text in ("failure()", "${{ failure() }}"):
        return failed
    raise AssertionError(f"the simulation does not know `if: {text}`")


def _expand(value: Any) -> str:
    text = str(value)
    assert "${{" not in text or text == "${{ github.token }}", f"unexpected expression {text}"
    return text


def run_job(fakes: Fakes, job_name: str = "kind") -> tuple[bool, list[str]]:
    """Run the job's `run:` steps as the runner would; (job failed, names of steps run)."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"][job_name]
    env = {k: _expand(v) for k, v in {**workflow.get("env", {}), **job.get("env", {})}.items()}
    failed, ran = False, []
    for step in job["steps"]:
        if "run" not in step or not _condition_allows(step.get("if"), failed):
            continue
        step_env = {**env, **{k: _expand(v) for k, v in step.get("env", {}).items()}}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=fakes.repo, env=fakes.env(step_env), capture_output=True, text=True,
            check=False, timeout=180,
        )  # fmt: skip
        ran.append(step.get("name", step["run"]))
        if done.returncode != 0:
            fakes.failures.append(f"{ran[-1]}: {done.stderr[-2000:]}")
        failed = failed or done.returncode != 0
    return failed, ran


@pytest.fixture
def job(fakes: Fakes) -> Fakes:
    """Fakes ready for the kind job: pinned fake tools, a plan's manifests on disk."""
    fakes.pin_fake_downloads()
    manifests = fakes.repo / "build" / "plan" / "kind" / "manifests"
    manifests.mkdir(parents=True)
    for name in (
        "todo_deployment_backend.yaml",
        "kafka_kafka_todo.yaml",
        "todo_job_migrate-1.yaml",
    ):
        (manifests / name).write_text("kind: Object\n")
    return fakes


def test_the_whole_run_in_order(job: Fakes) -> None:
    failed, ran = run_job(job)
    assert not failed, job.failures
    order = [
        "kind create cluster --config .github/kind/cluster.yaml",
        "helm install cilium cilium --repo https://helm.cilium.io/ --version 1.17.5",
        "docker build --target backend --tag todo-backend:proving",
        "pulumi login file://",
        "pulumi up --stack kind --yes",
        "rollout status -n todo deployment.apps/backend",
        "wait -n kafka kafka/todo --for=condition=Ready",
        "uv run python -m infra.tooling.delivery.smoke",
        "uv run todo-infra proving scenarios --kube-context kind-todo-proving",
        "apply --server-side --dry-run=server",
        "pulumi preview --stack kind --expect-no-changes",
        "pulumi destroy --stack kind --run-program --yes",
        "kind delete cluster --name todo-proving",
    ]
    positions = [job.index(fragment) for fragment in order]
    assert positions == sorted(positions), job.lines()
    # Each image is built, then loaded into the cluster under the tag the stack deploys.
    for app in APP_IDS:
        assert (
            job.index(f"docker build --target {app}")
            < job.index(f"kind load docker-image todo-{app}:proving --name todo-proving")
            < job.index("pulumi up")
        )
    # Every workload of every app namespace is awaited, with a timeout, before the smoke test.
    waits = [line for line in job.lines() if " rollout status -n " in line]
    assert len(waits) == 8 and all("--timeout=" in line for line in waits)
    assert max(job.index(w) for w in waits) < job.index("infra.tooling.delivery.smoke")
    # The edge is reached through a port-forward of the Envoy Service.
    assert job.called(
        "port-forward -n envoy-gateway-system service/envoy-envoy-gateway-system-todo"
    )
    assert not job.called("diagnostics") and not (job.repo / "build" / "diagnostics").exists()
    # The migration Job is left out of the dry run (immutable template).
    dry_run = job.lines()[job.index("--dry-run=server")]
    assert "todo_deployment_backend.yaml" in dry_run and "_job_" not in dry_run


def test_a_failed_update_still_destroys_and_collects_diagnostics(job: Fakes) -> None:
    job.fail = ["pulumi up"]
    failed, ran = run_job(job)
    assert failed
    assert job.index("pulumi up") < job.index("pulumi destroy --stack kind --run-program --yes")
    assert job.called("kind delete cluster")
    for skipped in ("infra.tooling.delivery.smoke", "proving scenarios", "--expect-no-changes"):
        assert not job.called(skipped), skipped
    assert "Diagnostics" in ran
    diagnostics = job.repo / "build" / "diagnostics"
    assert (diagnostics / "events.txt").is_file()
    assert job.called("logs -n todo") or job.called("get pods -n todo")


def test_changes_on_a_second_preview_fail_the_run_and_still_destroy(job: Fakes) -> None:
    job.fail = ["--expect-no-changes"]
    failed, _ = run_job(job)
    assert failed
    assert job.index("--expect-no-changes") < job.index("pulumi destroy")


def test_a_cluster_that_never_came_up_has_nothing_to_destroy(job: Fakes) -> None:
    job.fail = ["kind create cluster"]
    failed, ran = run_job(job)
    assert failed
    assert "pulumi destroy --stack kind" in ran  # the step ran ...
    assert not job.called("pulumi destroy")  # ... and found no state to destroy
    assert not job.called("docker build")
    assert job.called("kind delete cluster --name todo-proving")


def test_the_render_job_validates_plan_and_charts_strictly(job: Fakes) -> None:
    failed, _ = run_job(job, "render")
    assert not failed, job.failures
    assert job.index("uv run todo-infra plan --stack kind") < job.index("proving helm-values")
    assert job.index("proving helm-template") < job.index("kubeconform -strict")
    kubeconform = job.lines()[job.index("kubeconform -strict")]
    assert "-strict" in kubeconform
    assert "crd-schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" in kubeconform
    assert "build/plan/kind/manifests" in kubeconform and "build/proving/rendered" in kubeconform


# --------------------------------------------------------------------------- the scripts


def test_an_empty_namespace_fails_the_wait(fakes: Fakes) -> None:
    fakes.outputs = [o for o in fakes.outputs if "-n monitoring" not in o[0]]
    done = fakes.run("proving-ground.sh", "await")
    assert done.returncode == 1
    assert "no Deployment or StatefulSet in namespace monitoring" in done.stderr


def test_smoke_goes_through_the_edge_with_the_host_header_and_a_masked_key(fakes: Fakes) -> None:
    fake_uv = fakes.bin / "uv"
    fake_uv.write_text(
        f"#!{sys.executable}\nimport os, json\n"
        f"open({str(fakes.tmp / 'uv-env.json')!r}, 'w').write(json.dumps("
        "{k: os.environ.get(k) for k in "
        "('SMOKE_BASE_URL', 'SMOKE_HOST_HEADER', 'AUTH_JWT_SECRET')}))\n"
    )
    done = fakes.run("proving-ground.sh", "smoke", env={"PULUMI_CONFIG_PASSPHRASE": "p"})
    assert done.returncode == 0, done.stderr
    seen = json.loads((fakes.tmp / "uv-env.json").read_text())
    assert seen == {
        "SMOKE_BASE_URL": "http://127.0.0.1:18080",
        "SMOKE_HOST_HEADER": "api.todo.localhost",
        "AUTH_JWT_SECRET": "jwt-key-from-the-stack",
    }
    assert "::add-mask::jwt-key-from-the-stack" in done.stderr
    assert "jwt-key-from-the-stack" not in done.stdout


def test_pulumi_needs_the_passphrase_of_the_local_backend(fakes: Fakes) -> None:
    done = fakes.run("proving-ground.sh", "up")
    assert done.returncode == 1
    assert "PULUMI_CONFIG_PASSPHRASE is not set" in done.stderr
    assert not fakes.called("pulumi up")


def test_install_checks_each_download_and_adds_the_folder_to_the_path(fakes: Fakes) -> None:
    fakes.pin_fake_downloads()
    bin_dir = fakes.tmp / "tools"
    done = fakes.run("install-tools.sh", ".github/proving-ground/tools.txt", str(bin_dir))
    assert done.returncode == 0, done.stderr
    assert {p.name for p in bin_dir.iterdir()} == {
        "kind",
        "kubectl",
        "helm",
        "kubeconform",
        "pulumi",
    }
    assert all(os.access(p, os.X_OK) for p in bin_dir.iterdir())
    assert fakes.github_path.read_text().strip() == str(bin_dir)
    assert fakes.called("curl --fail --silent --show-error --location --retry 3 --output")


def test_a_tampered_download_is_refused(fakes: Fakes) -> None:
    fakes.pin_fake_downloads()
    (fakes.downloads / "kind-linux-amd64").write_bytes(b"something else")
    bin_dir = fakes.tmp / "tools"
    done = fakes.run("install-tools.sh", ".github/proving-ground/tools.txt", str(bin_dir))
    assert done.returncode == 1
    assert "kind v0.29.0: sha256" in done.stderr
    assert not (bin_dir / "kind").exists()


def test_published_checksums_are_checked_until_pinned(fakes: Fakes) -> None:
    tools = ".github/proving-ground/tools.txt"
    fakes.fake_downloads()
    bin_dir = fakes.tmp / "tools"
    done = fakes.run("install-tools.sh", tools, str(bin_dir))
    assert done.returncode == 0, done.stderr
    assert len(list(bin_dir.iterdir())) == 5
    assert "kind v0.29.0: checked against its release's published checksum" in done.stderr
    # A download that differs from what the release publishes is refused.
    (fakes.downloads / "kubectl").write_bytes(b"something else")
    done = fakes.run("install-tools.sh", tools, str(fakes.tmp / "again"))
    assert done.returncode == 1 and "kubectl v1.33.1: sha256" in done.stderr
    # --pin refuses it too, and leaves its line as it was.
    done = fakes.run("install-tools.sh", "--pin", tools)
    assert done.returncode == 1 and "but the release publishes" in done.stderr
    assert "published=https://dl.k8s.io" in (fakes.repo / tools).read_text()


def test_pinning_writes_the_verified_digests(fakes: Fakes) -> None:
    tools = ".github/proving-ground/tools.txt"
    digests = fakes.fake_downloads()
    done = fakes.run("install-tools.sh", "--pin", tools)
    assert done.returncode == 0, done.stderr
    rows = {row[0]: row for row in _tool_lines((fakes.repo / tools).read_text())}
    assert {name: row[2] for name, row in rows.items()} == digests
    done = fakes.run("install-tools.sh", tools, str(fakes.tmp / "tools"))
    assert done.returncode == 0 and "published checksum" not in done.stderr


def test_unpinned_tools_are_refused(fakes: Fakes) -> None:
    tools = ".github/proving-ground/tools.txt"
    text = (fakes.repo / tools).read_text()
    (fakes.repo / tools).write_text(re.sub(r"published=\S+", "unpinned", text))
    fakes.fake_downloads()
    done = fakes.run("install-tools.sh", tools, str(fakes.tmp / "tools"))
    assert done.returncode == 1 and "has no checksum" in done.stderr and "--pin" in done.stderr


def test_the_committed_tools_file_pins_what_the_workflows_use() -> None:
    rows = {row[0]: row for row in _tool_lines(TOOLS.read_text())}
    assert set(rows) == {"kind", "kubectl", "helm", "kubeconform", "pulumi"}
    for name, _version, digest, url, _ in rows.values():
        assert url.startswith("https://") and "{version}" in url, name
        # Pinned, or checked against the checksum file the project publishes on its host.
        published = digest.removeprefix("published=")
        assert re.fullmatch(r"[0-9a-f]{64}", digest) or (
            published.startswith("https://") and "{version}" in published
        ), name
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    assert rows["pulumi"][1] == deploy["env"]["PULUMI_VERSION"]
    assert re.search(r"^chart:cilium\s+\d+\.\d+\.\d+\s+-\s+https://helm\.cilium\.io/$",
                     TOOLS.read_text(), flags=re.M)  # fmt: skip


def test_the_kind_cluster_has_no_default_cni() -> None:
    config = yaml.safe_load((ROOT / ".github" / "kind" / "cluster.yaml").read_text())
    assert config["networking"]["disableDefaultCNI"] is True
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.kind.yaml").read_text())["config"]
    assert stack["todo:cluster"] == {"kubeContext": f"kind-{config['name']}", "cni": "cilium"}
    assert stack["todo:apps"]["images"] == {"registry": "", "tag": "proving"}


# --------------------------------------------------------------------------- require-proven

SHA = "a" * 40
HEAD = "b" * 40


def _gh(fakes: Fakes, runs: dict[str, int], pulls: list[str]) -> None:
    fakes.outputs = [
        *([f"runs?head_sha={sha}&status=success", f"{count}\n"] for sha, count in runs.items()),
        [f"commits/{SHA}/pulls", "".join(f"{p}\n" for p in pulls)],
    ]


def test_prod_is_allowed_when_the_commit_itself_was_proven(fakes: Fakes) -> None:
    _gh(fakes, {SHA: 1}, [])
    done = fakes.run("require-proven.sh", SHA)
    assert done.returncode == 0, done.stderr
    first = fakes.calls[0]
    assert first[:2] == ["gh", "api"]
    runs = "repos/acme/todo/actions/workflows/proving-ground.yml/runs"
    assert first[2] == f"{runs}?head_sha={SHA}&status=success&per_page=1"


def test_prod_is_allowed_when_the_pull_request_head_was_proven(fakes: Fakes) -> None:
    _gh(fakes, {SHA: 0, HEAD: 2}, [HEAD])
    done = fakes.run("require-proven.sh", SHA)
    assert done.returncode == 0, done.stderr
    assert f"the head of the pull request that made {SHA}" in done.stdout


def test_prod_is_refused_without_a_proving_ground_run(fakes: Fakes) -> None:
    _gh(fakes, {SHA: 0, HEAD: 0}, [HEAD])
    done = fakes.run("require-proven.sh", SHA)
    assert done.returncode == 1
    assert f"no successful proving-ground run for {SHA}" in done.stderr
    assert "workflow_dispatch" in done.stderr


def test_a_failing_api_call_refuses_too(fakes: Fakes) -> None:
    fakes.fail = ["gh api"]
    assert fakes.run("require-proven.sh", SHA).returncode != 0
    assert fakes.run("require-proven.sh", "main").returncode == 2
