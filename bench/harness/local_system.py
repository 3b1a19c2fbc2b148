"""The whole system under `todo-local`, in a child process of its own, for bench/pipeline.py.

The child (`python -m bench.harness.local_system`) runs the three services with their
stand-in sidecars until SIGTERM and writes their URLs, the JWT secret and the process
ids to a state file; the benchmark's own process only drives them and reads the CPU
time each part spends.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from apps.local.system import LocalSystem
from bench.harness.procstat import children, process_cpu, server_cpu

STANDIN = "stand-in sidecars"


def serve(database_url: str, state_file: Path, replicas: dict[str, int], scan: float) -> None:
    """Child process: run the system until SIGTERM; write its ports and key to `state_file`."""
    stop = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # The stand-in's own warnings (retries, dead letters) would drown the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    kept = os.environ.get("BENCH_LOG_DIR")  # keep the services' logs for a look afterwards
    with tempfile.TemporaryDirectory(prefix="todo-bench-logs-") as logs:
        if kept:
            Path(kept).mkdir(parents=True, exist_ok=True)
        system = LocalSystem(
            database_url=database_url,
            log_dir=Path(kept or logs),
            replicas=replicas,
            cron_every_seconds=scan,
            extra_env={"LOG_LEVEL": "WARNING", "DB_POOL_SIZE": "20"},
        )
        with system:
            pids: dict[str, list[int]] = {STANDIN: [os.getpid()]}
            for instance in system.instances:
                pids.setdefault(instance.app_id, []).append(instance.process.pid)
            state = {
                "backend": system.url("backend"),
                "notification": system.url("notification"),
                "jwt_secret": system.jwt_secret,
                "pids": pids,
            }
            state_file.write_text(json.dumps(state))
            while not stop:
                time.sleep(0.2)


@contextmanager
def running_system(
    database_url: str, replicas: dict[str, int], scan: float
) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="todo-bench-") as scratch:
        state_file = Path(scratch) / "state.json"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.harness.local_system",
                database_url,
                "--state-file",
                str(state_file),
                "--replicas",
                json.dumps(replicas),
                "--scan-seconds",
                str(scan),
            ],
        )
        try:
            deadline = time.monotonic() + 240
            while not state_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the system did not start")
                time.sleep(0.2)
            time.sleep(0.2)  # the file is written in one go; let the writer close it
            yield json.loads(state_file.read_text())
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class SystemCpu:
    """CPU seconds (user + system) of each part of the system.

    A figure per completion that does not depend on how busy the machine is: where the
    time goes, whatever the wall clock says. Services count their children too (the
    recurring service's rule sandbox); the stand-in's process is the services' parent,
    so it counts only itself.
    """

    def __init__(self, postmaster: int | None, pids: dict[str, list[int]]) -> None:
        self.postmaster = postmaster  # the database server's, when it runs on this machine
        self.pids = pids

    @staticmethod
    def _with_children(pid: int) -> float:
        return process_cpu(pid, reaped_children=True) + sum(
            process_cpu(child) for child in children(pid)
        )

    def read(self) -> dict[str, float]:
        reading = {
            name: sum(
                process_cpu(pid) if name == STANDIN else self._with_children(pid) for pid in group
            )
            for name, group in self.pids.items()
        }
        if self.postmaster is not None:
            reading["postgres"] = server_cpu(self.postmaster)
        times = os.times()
        reading["driver (this process)"] = times.user + times.system
        return reading


def _child(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the local system until SIGTERM.")
    parser.add_argument("database_url")
    parser.add_argument("--state-file", required=True)
    parser.add_argument("--replicas", required=True, help="JSON: replicas per app id")
    parser.add_argument("--scan-seconds", type=float, required=True)
    args = parser.parse_args(argv)
    serve(args.database_url, Path(args.state_file), json.loads(args.replicas), args.scan_seconds)


if __name__ == "__main__":
    _child()
