"""A free loopback port, for the local runner, the benchmarks and the tests.

The port is free when this returns; something else may take it before the caller binds
it, so callers that cannot afford that retry (see `LocalSystem`) or bind port 0 themselves.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on or holds right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def fixed_free_port(rng: random.Random | None = None) -> int:
    """A free port below the kernel's ephemeral range, for a port chosen now and bound
    later by another process (`todo-local --backend-port`).

    A port from `free_port` comes from the ephemeral range, the same range the kernel
    gives every outgoing connection its local port from: between choosing and binding, any
    client socket on the machine (a database connection, an HTTP call) may take it, and
    the bind fails. Below the range only a listener could.
    """
    low = 32768
    if _EPHEMERAL_RANGE.exists():
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    pick = rng or random.SystemRandom()
    for _ in range(200):
        port = pick.randrange(max(1024, low - 12000), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()
