"""Child processes that do not outlive `todo-local`.

`todo-local` stops its services on Ctrl-C or SIGTERM, but a SIGKILL (the OOM killer, a
`kill -9`, a crashed terminal) gives it no chance: the uvicorn processes it started
would keep running, holding the fixed local ports, and the next `todo-local` could not
start. On Linux a child can ask the kernel for a signal when its parent dies
(`prctl(PR_SET_PDEATHSIG)`, prctl(2)); `die_with_parent` is the `preexec_fn` that asks
for SIGTERM, so uvicorn shuts down as it does under Kubernetes. Elsewhere it does
nothing (there, a stale process shows up as a port already in use).

prctl(2) notes that the signal follows the death of the parent *thread* that forked:
`todo-local` forks from its main thread and from the supervisor's thread, which both
live until it stops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


# Loaded once here: the code between fork and exec should do as little as it can.
_PRCTL = _load_prctl()


def die_with_parent_hook() -> Callable[[], None] | None:
    """The `preexec_fn` for a child that must end with this process (None: unsupported)."""
    if _PRCTL is None:
        return None
    parent = os.getpid()
    prctl = _PRCTL

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return die_with_parent
