"""A service's real app in a real uvicorn process, and a steady load to stop it under."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from apps.local.ports import fixed_free_port
from apps.shared import http_limits


class UvicornProcess:
    """`uvicorn <target>` on a free loopback port with `env`; the log goes to a file."""

    def __init__(self, target: str, env: dict[str, str]) -> None:
        self.port = fixed_free_port()  # bound later by another process
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = Path(tempfile.mkstemp(prefix="uvicorn-", suffix=".log")[1])
        with self._log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1"]
                + ["--port", str(self.port), "--no-server-header"]
                + ["--http", http_limits.PROTOCOL],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"uvicorn exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"never ready:\n{self.log()}")

    def terminate(self) -> float:
        """Send SIGTERM; returns when (time.monotonic())."""
        at = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        return at

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self._log.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.unlink(missing_ok=True)


@dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    result: int | str  # the status code, or the transport error's name


@dataclass
class Load:
    """`workers` threads sending `send(client)` back to back, each on a new connection
    (`Connection: close`), so that a request is either accepted by the server or refused
    at connect: none is lost on an idle keep-alive connection the server closes."""

    send: Callable[[httpx.Client], httpx.Response]
    workers: int = 6
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, daemon=True) for _ in range(self.workers)
        ]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return list(self.outcomes)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with httpx.Client(timeout=30, headers={"connection": "close"}) as client:
                    result: int | str = self.send(client).status_code
            except httpx.HTTPError as exc:
                result = type(exc).__name__
                time.sleep(0.05)  # refused: the server is gone; do not spin
            with self._lock:
                self.outcomes.append(Outcome(started, time.monotonic(), result))


def readiness_after(url: str, since: float, until: Callable[[], bool]) -> list[tuple[int, str]]:
    """`/readyz` answers (status, body) to probes sent after `since`, while the server is up."""
    answers: list[tuple[int, str]] = []
    while not until():
        if time.monotonic() > since:
            try:
                response = httpx.get(f"{url}/readyz", timeout=2)
                answers.append((response.status_code, response.text))
            except httpx.HTTPError:
                break  # no longer accepting
        time.sleep(0.05)
    return answers
