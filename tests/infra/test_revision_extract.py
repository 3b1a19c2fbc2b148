"""Extracting a revision's `git archive`: safe on every Python 3.11, filters or not."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from infra.tooling.delivery import revision_plans
from infra.tooling.delivery.revision_plans import RevisionPlanError

# tarfile.FilterError exists from Python 3.11.4 (PEP 706); before, only our own checks run.
FILTER_ERROR: type[Exception] = getattr(tarfile, "FilterError", RevisionPlanError)


def _archive(*members: tuple[str, bytes | None, str]) -> tarfile.TarFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, payload, link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(payload or b"")
                tar.addfile(info, io.BytesIO(payload or b""))
    buffer.seek(0)
    return tarfile.open(fileobj=buffer)


@pytest.fixture(params=["filters", "python-3.11.0-3.11.3"])
def extraction(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "filters":
        # Python before 3.11.4 has no extraction filters (PEP 706).
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return str(request.param)


def test_a_revision_extracts(tmp_path: Path, extraction: str) -> None:
    tar = _archive(("infra/__main__.py", b"print()", ""), ("link", None, "infra/__main__.py"))
    revision_plans._extract(tar, tmp_path)
    assert (tmp_path / "infra" / "__main__.py").read_bytes() == b"print()"
    assert (tmp_path / "link").resolve() == (tmp_path / "infra" / "__main__.py").resolve()


@pytest.mark.parametrize(
    "member",
    [("../outside", b"x", ""), ("/etc/evil", b"x", ""), ("escape", None, "../../etc/passwd")],
)
def test_members_leaving_the_tree_are_refused(
    tmp_path: Path, extraction: str, member: tuple[str, bytes | None, str]
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    try:
        revision_plans._extract(_archive(member), tree)
    except (RevisionPlanError, FILTER_ERROR):
        pass
    else:
        # The `data` filter may instead re-root an absolute name inside the tree.
        assert hasattr(tarfile, "data_filter") and member[0].startswith("/")
        assert (tree / member[0].lstrip("/")).is_file()
    assert not (tmp_path / "outside").exists()
    assert not Path(member[0]).exists() or not member[0].startswith("/etc/evil")
