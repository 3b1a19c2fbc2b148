"""A child started with `die_with_parent_hook` ends when its parent is SIGKILLed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.local.lifeline import die_with_parent_hook

# The parent: starts a long-sleeping child the way todo-local starts a service, prints
# the child's pid, then waits to be killed.
_PARENT = """
import subprocess, sys, time
from apps.local.lifeline import die_with_parent_hook
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(120)"],
    start_new_session=True,
    preexec_fn=die_with_parent_hook() if sys.argv[1] == "hook" else None,
)
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (reaped by init soon after).
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def _child_after_parent_killed(mode: str) -> tuple[int, bool]:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    return child, _alive(child)


@pytest.mark.skipif(die_with_parent_hook() is None, reason="PR_SET_PDEATHSIG is Linux-only")
def test_child_ends_with_its_killed_parent() -> None:
    child, alive = _child_after_parent_killed("hook")
    assert not alive, f"child {child} outlived its SIGKILLed parent"


@pytest.mark.skipif(die_with_parent_hook() is None, reason="PR_SET_PDEATHSIG is Linux-only")
def test_without_the_hook_the_child_would_be_left_behind() -> None:
    """The control: what todo-local did before (so the test above can fail)."""
    child, alive = _child_after_parent_killed("none")
    try:
        assert alive
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
