"""A free loopback port, for the local runner, the benchmarks and the tests.

The port is free when this returns; something else may take it before the caller binds
it, so callers that cannot afford that retry (see `LocalSystem`) or bind port 0 themselves.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on or holds right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
