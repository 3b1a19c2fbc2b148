"""CPU time of the processes a benchmark involves, from Linux's /proc.

On a machine shared with other work, latency and throughput move with the load, but
the CPU time a request costs each process moves much less: it is the figure to compare
between runs. A PostgreSQL server's time is its postmaster's (including the backends
it has reaped) plus that of its live backends, so connections that come and go during
a phase are counted too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 onwards)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_cpu(pid: int, *, reaped_children: bool = False) -> float:
    """User + system seconds of `pid` (and of its reaped children if asked); 0 if gone."""
    fields = _fields(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICKS


def children(pid: int) -> list[int]:
    found = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _fields(int(entry.name))
            if fields is not None and fields[1] == str(pid):  # ppid
                found.append(int(entry.name))
    return found


def server_cpu(postmaster: int) -> float:
    """All CPU seconds a PostgreSQL server has used: postmaster, reaped and live backends.

    A backend reaped while its siblings are being read would be missed (or counted twice),
    so the reading is repeated until the postmaster's own figure holds still around it.
    """
    for _ in range(10):
        before = process_cpu(postmaster, reaped_children=True)
        live = sum(process_cpu(child) for child in children(postmaster))
        if process_cpu(postmaster, reaped_children=True) == before:
            break
    return before + live


def postmaster_of(backend: int) -> int | None:
    """The postmaster of a backend seen in this machine's /proc, else None (a remote
    server, or another pid namespace)."""
    fields = _fields(backend)
    try:
        parent = int(fields[1]) if fields else 0
        command = (_PROC / str(parent) / "cmdline").read_bytes()
    except OSError:
        return None
    return parent if b"postgres" in command else None


@dataclass(frozen=True)
class CpuMeter:
    """Cumulative CPU seconds of this process, the API server and the database server."""

    server_pid: int | None = None
    postmaster_pid: int | None = None

    def read(self) -> dict[str, float]:
        times = os.times()
        reading = {"client": times.user + times.system}
        if self.server_pid is not None:
            reading["server"] = process_cpu(self.server_pid)
        if self.postmaster_pid is not None:
            reading["postgres"] = server_cpu(self.postmaster_pid)
        return reading
