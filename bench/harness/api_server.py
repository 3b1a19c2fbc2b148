"""The backend as its image runs it, in a child process pinned to its own core(s)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.harness import ROOT

_PR_SET_PDEATHSIG = 1


def _child_setup(cores: set[int] | None) -> Callable[[], None]:
    def setup() -> None:
        # Die with the benchmark even if it is killed before it can stop the server.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if cores:
            os.sched_setaffinity(0, cores)

    return setup


@contextmanager
def uvicorn_server(
    url: str,
    port: int,
    cores: set[int] | None,
    pool_size: int,
    log_dir: Path,
    jwt_secret: str,
    app: str = "apps.backend.main:app",
) -> Iterator[subprocess.Popen[bytes]]:
    """The backend as its image runs it (uvicorn's defaults pick uvloop and httptools),
    without the access log, which repeats the app's own request log line. `app` may
    name another ASGI app served the same way and configured by the same variables
    (the benchmark's floors, bench/scenarios/floor.py)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AUTH_JWT_SECRET": jwt_secret,
        "APP_ENV": "prod",
        # The outbox relay needs a Dapr sidecar (none here); bench/pipeline.py measures it.
        "OUTBOX_RELAY_ENABLED": "false",
        # Without a sidecar /readyz would never answer 200 (apps/shared/service.py).
        "DAPR_SIDECAR_REQUIRED": "false",
    }
    env["DB_POOL_SIZE"] = str(pool_size)
    log_path = log_dir / f"uvicorn-{app.replace(':', '-')}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-server-header",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_child_setup(cores),
        )
    try:
        _wait_ready(process, port, log_path)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"uvicorn exited during startup:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("uvicorn did not become ready within 60s")
