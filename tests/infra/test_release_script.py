""".github/scripts/release-images.sh: which images a stack runs, and which it proved.

The script drives the `pulumi` CLI, which cannot run here; a stand-in `pulumi` on PATH
implements the four commands it uses (`config set/get --path`, `stack tag set/get`) with
the CLI's arguments and exit codes, keeping each stack's config and tags in a JSON file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from apps.contracts.services import APP_IDS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github" / "scripts" / "release-images.sh"

FAKE_PULUMI = textwrap.dedent(
    """\
    #!{python}
    # Stand-in for the commands of the Pulumi CLI that release-images.sh runs.
    import json, os, sys
    state_file = os.environ["FAKE_PULUMI_STATE"]
    state = json.load(open(state_file)) if os.path.exists(state_file) else {{}}
    args = sys.argv[1:]
    stack = args[args.index("--stack") + 1]
    args = [a for i, a in enumerate(args) if a != "--stack" and args[i - 1] != "--stack"]
    entry = state.setdefault(stack, {{"config": {{}}, "tags": {{}}}})
    if args[:2] == ["config", "set"] and args[2] == "--path":
        node = entry["config"]
        *parents, leaf = ("todo:" + args[3]).split(".")
        for part in parents:
            node = node.setdefault(part, {{}})
        node[leaf] = args[4]
    elif args[:2] == ["config", "get"] and args[2] == "--path":
        node = entry["config"]
        for part in ("todo:" + args[3]).split("."):
            if not isinstance(node, dict) or part not in node:
                sys.exit("error: configuration key '" + args[3] + "' not found for stack")
            node = node[part]
        print(node)
    elif args[:3] == ["stack", "tag", "set"]:
        entry["tags"][args[3]] = args[4]
    elif args[:3] == ["stack", "tag", "get"]:
        if args[3] not in entry["tags"]:
            sys.exit("error: stack tag '" + args[3] + "' not found for stack")
        print(entry["tags"][args[3]])
    else:
        sys.exit("fake pulumi: unsupported " + " ".join(sys.argv[1:]))
    json.dump(state, open(state_file, "w"))
    """
)


class Pulumi:
    """Runs the script against the stand-in and reads back what it did."""

    def __init__(self, tmp_path: Path) -> None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "pulumi"
        fake.write_text(FAKE_PULUMI.format(python=sys.executable))
        fake.chmod(0o755)
        self.state = tmp_path / "state.json"
        self.output = tmp_path / "github-output"
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_PULUMI_STATE": str(self.state),
            "GITHUB_OUTPUT": str(self.output),
        }
        self.tmp = tmp_path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def stack(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state.read_text())[name]
        return data

    def digests(self, fill: str) -> Path:
        directory = self.tmp / f"digests-{fill}"
        directory.mkdir()
        for app in APP_IDS:
            (directory / app).write_text(f"sha256:{fill * 64}\n")
        return directory


@pytest.fixture
def pulumi(tmp_path: Path) -> Pulumi:
    return Pulumi(tmp_path)


def _release(pulumi: Pulumi, stack: str, release: str, fill: str) -> None:
    done = pulumi.run("set", stack, "ghcr.io/acme", release, str(pulumi.digests(fill)))
    assert done.returncode == 0, done.stderr
    done = pulumi.run("record", stack)
    assert done.returncode == 0, done.stderr


def test_set_then_record_on_staging(pulumi: Pulumi) -> None:
    _release(pulumi, "acme/todo/staging", "a" * 40, "1")
    staging = pulumi.stack("acme/todo/staging")
    images = staging["config"]["todo:apps"]["images"]
    assert images == {
        "registry": "ghcr.io/acme",
        "tag": "a" * 40,
        "digests": dict.fromkeys(APP_IDS, "sha256:" + "1" * 64),
    }
    assert staging["tags"]["todo:release"] == "a" * 40
    assert staging["tags"]["todo:digest-recurring"] == "sha256:" + "1" * 64
    assert not any(tag.startswith("todo:previous-") for tag in staging["tags"])


def test_prod_takes_exactly_what_staging_recorded(pulumi: Pulumi) -> None:
    _release(pulumi, "acme/todo/staging", "b" * 40, "2")
    done = pulumi.run("use", "acme/todo/staging", "acme/todo/prod", "--require")
    assert done.returncode == 0, done.stderr
    prod_images = pulumi.stack("acme/todo/prod")["config"]["todo:apps"]["images"]
    assert prod_images == pulumi.stack("acme/todo/staging")["config"]["todo:apps"]["images"]
    assert f"release={'b' * 40}" in pulumi.output.read_text()


def test_nothing_to_promote_without_a_proven_release(pulumi: Pulumi) -> None:
    done = pulumi.run("use", "acme/todo/staging", "acme/todo/prod", "--require")
    assert done.returncode == 1
    assert "no proven release" in done.stdout
    # Without --require (previews) the stack file's images are kept.
    assert pulumi.run("use", "acme/todo/staging", "acme/todo/staging").returncode == 0


def test_rollback_returns_to_the_previous_release(pulumi: Pulumi) -> None:
    stack = "acme/todo/prod"
    _release(pulumi, stack, "c" * 40, "3")
    _release(pulumi, stack, "d" * 40, "4")
    assert pulumi.stack(stack)["tags"]["todo:previous-release"] == "c" * 40

    done = pulumi.run("rollback", stack)
    assert done.returncode == 0, done.stderr
    images = pulumi.stack(stack)["config"]["todo:apps"]["images"]
    assert images["tag"] == "c" * 40
    assert set(images["digests"].values()) == {"sha256:" + "3" * 64}


def test_a_malformed_digest_stops_the_deploy(pulumi: Pulumi) -> None:
    digests = pulumi.digests("5")
    (digests / "notification").write_text("latest\n")
    done = pulumi.run("set", "acme/todo/staging", "ghcr.io/acme", "e" * 40, str(digests))
    assert done.returncode == 1
    assert "not an image digest" in done.stdout
