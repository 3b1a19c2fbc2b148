"""The machine line: what machine the numbers come from, and clean-up on signals.

On a busy shared machine the absolute figures move with the load, so each run prints the
load average at start and end; compare the ratios to the same-run baselines.
"""

from __future__ import annotations

import os
import platform
import signal
from types import FrameType


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min)"


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack: everything gets cleaned up


def start_run(name: str) -> None:
    """Clean up on SIGTERM/SIGHUP too, and say what machine the numbers come from."""
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    print(
        f"{name} on {platform.node()}: {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}; load average at start {load_average()}",
        flush=True,
    )
