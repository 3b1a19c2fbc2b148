"""Plan a git revision of this repository offline, for `todo-infra diff --base REF`.

The revision is exported with `git archive` into a temporary directory (the repository's
`.git` and working tree are not touched) and planned there by its own `todo-infra plan`,
run with this interpreter: the base is planned with the dependencies installed now. When
the base needs other dependencies, plan it in its own checkout and pass the directories.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.tooling.delivery.ephemeral_names import is_ephemeral_stack
from infra.tooling.delivery.plan_files import RESOURCES_FILE

# Run the revision's own CLI entry point as `todo-infra plan ...` would.
_PLAN_SCRIPT = (
    "import sys; from infra.tooling.cli import main; "
    "sys.argv = ['todo-infra', 'plan', *sys.argv[1:]]; main()"
)


class RevisionPlanError(RuntimeError):
    """A revision could not be exported or planned."""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)


def resolve_revision(repo: Path, ref: str) -> str:
    """The commit `ref` names; RevisionPlanError with git's reason otherwise."""
    result = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if result.returncode != 0:
        raise RevisionPlanError(f"{ref!r} is not a commit in {repo}")
    return result.stdout.decode().strip()


@contextmanager
def exported_revision(repo: Path, ref: str) -> Iterator[Path]:
    """A temporary directory holding the files of `ref` (removed afterwards)."""
    commit = resolve_revision(repo, ref)
    with tempfile.TemporaryDirectory(prefix="todo-infra-base-") as tmp:
        archive = Path(tmp) / "revision.tar"
        result = _git(repo, "archive", "--format=tar", f"--output={archive}", commit)
        if result.returncode != 0:
            raise RevisionPlanError(f"git archive {commit[:12]} failed: {result.stderr.decode()}")
        tree = Path(tmp) / "tree"
        with tarfile.open(archive) as tar:
            _extract(tar, tree)
        archive.unlink()
        yield tree


def _extract(tar: tarfile.TarFile, tree: Path) -> None:
    """Extract with the `data` filter (PEP 706: no absolute paths, no `..`, no links out
    of the tree, no special files), or its checks by hand on a Python 3.11 older than
    3.11.4, which lacks extraction filters."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(tree, filter="data")
        return
    root = tree.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        link = (target.parent / member.linkname).resolve() if member.issym() else target
        if not (member.isfile() or member.isdir() or member.issym()):
            raise RevisionPlanError(f"git archive holds a special file: {member.name}")
        if not (target.is_relative_to(root) and link.is_relative_to(root)):
            raise RevisionPlanError(f"git archive member leaves the tree: {member.name}")
    tar.extractall(tree)  # noqa: S202 - every member checked above


def plan_tree(tree: Path, stack: str, out: Path, *, timeout: float = 300) -> Path:
    """Run `todo-infra plan --stack STACK --out OUT` on the code in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PLAN_SCRIPT, "--stack", stack, "--out", str(out)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RevisionPlanError(f"planning {stack} in {tree} took over {timeout:.0f}s") from None
    if result.returncode != 0 or not (out / RESOURCES_FILE).is_file():
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise RevisionPlanError(f"`todo-infra plan --stack {stack}` failed in {tree}:\n{tail}")
    return out


def stacks_in(tree: Path) -> list[str]:
    """The long-lived stacks a tree has config files for (not dev-*/pr-* leftovers)."""
    names = (
        path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for path in (tree / "stacks").glob("Pulumi.*.yaml")
    )
    return sorted(name for name in names if not is_ephemeral_stack(name))
