"""The whole system on one machine: the three services as real uvicorn processes, each
instance with its own stand-in sidecar, on one PostgreSQL database.

Used by `todo-local`, the end-to-end tests and the pipeline benchmark. The settings the
sidecars get mirror the cluster's (see `cluster_mesh_config`): consumer group per app
id, the subscriptions the apps declare, the `reminder-scan` cron binding on the backend,
access control that lets only the recurring service call the backend's internal route,
an app token per app and an API token per sidecar.

A `Supervisor` (see `apps.local.supervisor`) restarts what dies, as the kubelet does: a
service process that exits is started again on its port with the same sidecar, a
crashed sidecar is started again on its ports, and any extra unit the caller adds
(todo-local adds its PostgreSQL). Restarts are logged, counted and shown by `status()`.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt

from apps.contracts.services import ACCESS_RULES, APPS, REMINDER_SCAN
from apps.local.lifeline import die_with_parent_hook
from apps.local.ports import free_port
from apps.local.standin import (
    AccessRule,
    CronBinding,
    MeshConfig,
    MeshThread,
    RetryPolicy,
    Sidecar,
    SidecarSpec,
)
from apps.local.supervisor import Backoff, Supervisor, Unit
from apps.shared import http_limits

SERVICES: Mapping[str, str] = {app.app_id.value: app.asgi for app in APPS}
DEFAULT_PORTS: Mapping[str, int] = {app.app_id.value: app.local_port for app in APPS}


def cluster_mesh_config(**overrides: object) -> MeshConfig:
    """The sidecar settings the cluster is expected to have (reported for the infra)."""
    config = MeshConfig(
        partitions=8,
        pubsub_inbound_retry=RetryPolicy(
            policy="exponential", initial_interval=0.5, max_interval=10.0, max_retries=8
        ),
        access_control={
            callee.value: tuple(
                AccessRule(caller=rule.caller.value, verb=rule.verb, path_prefix=rule.path_prefix)
                for rule in ACCESS_RULES
                if rule.callee is callee
            )
            for callee in dict.fromkeys(rule.callee for rule in ACCESS_RULES)
        },
    )
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@dataclass
class Instance:
    """One running instance of a service and its sidecar."""

    app_id: str
    port: int
    sidecar: Sidecar
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class _Pending:
    """An instance whose process was started and may not listen yet."""

    app_id: str
    port: int
    fixed_port: bool
    sidecar: Sidecar
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class LocalSystem:
    """Start with `start()`, stop with `stop()` (or use it as a context manager)."""

    database_url: str
    log_dir: Path
    ports: Mapping[str, int] = field(default_factory=dict)
    replicas: Mapping[str, int] = field(default_factory=dict)
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    mesh_config: MeshConfig = field(default_factory=cluster_mesh_config)
    cron_every_seconds: float = 1.0
    extra_env: Mapping[str, str] = field(default_factory=dict)
    startup_timeout_seconds: float = 60.0
    # Restart what dies (None: nothing is restarted, as before supervision existed).
    backoff: Backoff | None = field(default_factory=Backoff)
    # More units to keep running (todo-local's PostgreSQL).
    extra_units: tuple[Unit, ...] = ()
    on_event: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        self.standin = MeshThread(self.mesh_config)
        self.instances: list[Instance] = []
        self._started: dict[str, int] = {}
        self.app_tokens = {app_id: secrets.token_urlsafe(24) for app_id in SERVICES}
        self.supervisor = Supervisor(self.backoff, on_event=self.on_event)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> LocalSystem:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.standin.start()
        try:
            wanted = [
                (app_id, self.ports.get(app_id, 0) if number == 0 else 0)
                for app_id in SERVICES
                for number in range(self.replicas.get(app_id, 1))
            ]
            # The first process fills the bytecode cache; the others then start quickly.
            (first_app, first_port), *rest = wanted
            self.instances.append(self._await_listening(self._launch(first_app, first_port)))
            launched = [self._launch(app_id, port) for app_id, port in rest]
            self.instances.extend(self._await_listening(pending) for pending in launched)
            for instance in self.instances:
                self._wait_ready(instance)
            for instance in self.instances:
                self.standin.call(instance.sidecar.attached.wait)
            if self.backoff is not None:
                for unit in self.extra_units:
                    self.supervisor.add(unit)
                for instance in self.instances:
                    self.supervisor.add(ServiceUnit(self, instance))
                    self.supervisor.add(SidecarUnit(self, instance))
                self.supervisor.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.supervisor.stop()  # nothing is restarted while everything stops
        # Sidecars first, as when a pod's sidecar goes: no delivery hits a stopping app.
        self.standin.stop()
        processes = [instance.process for instance in self.instances]
        for process in processes:  # all at once: their graceful shutdowns overlap
            _signal(process, signal.SIGTERM)
        for process in processes:
            _terminate(process)
        self.instances = []

    def __enter__(self) -> LocalSystem:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what callers use --------------------------------------------------------------

    def url(self, app_id: str) -> str:
        return next(i.url for i in self.instances if i.app_id == app_id)

    def of(self, app_id: str) -> list[Instance]:
        return [i for i in self.instances if i.app_id == app_id]

    def token(self, user: str, ttl_seconds: int = 3600) -> str:
        return make_token(user, self.jwt_secret, ttl_seconds)

    def kill(self, instance: Instance, signum: int = signal.SIGKILL) -> None:
        """Send `signum` to an instance's process group (SIGKILL: a crash)."""
        _signal(instance.process, signum)

    def crash_sidecar(self, instance: Instance) -> None:
        """The instance's sidecar dies abruptly (the supervisor brings it back)."""
        self.standin.call(self.standin.mesh.crash, instance.sidecar)

    def ready(self, instance: Instance) -> bool:
        """The instance's process answers `/readyz` with 200 (database and sidecar up)."""
        if instance.process.poll() is not None:
            return False
        try:
            return httpx.get(f"{instance.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> list[dict[str, object]]:
        """What the supervisor sees: every unit, its pid, state and restart count."""
        return self.supervisor.status()

    # -- internals ---------------------------------------------------------------------

    def _env(self, app_id: str, sidecar: Sidecar) -> dict[str, str]:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("DAPR_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env = {
            **inherited,
            **bytecode_cache_env(),
            "DATABASE_URL": self.database_url,
            "AUTH_JWT_SECRET": self.jwt_secret,
            "APP_API_TOKEN": self.app_tokens[app_id],
            "APP_ENV": "dev",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # local receivers live on loopback
            "DB_POOL_SIZE": "10",
            "DAPR_HEALTH_TIMEOUT": "5",
            **sidecar.env,
            **self.extra_env,
        }
        return env

    def _launch(self, app_id: str, port: int) -> _Pending:
        """Start the sidecar and the process of one instance (without waiting for it)."""
        bindings = (
            (
                CronBinding(
                    name=REMINDER_SCAN.name,
                    every_seconds=self.cron_every_seconds,
                    route=REMINDER_SCAN.route,
                ),
            )
            if app_id == REMINDER_SCAN.app_id
            else ()
        )
        chosen = port or free_port()
        sidecar = self.standin.add_sidecar(
            SidecarSpec(
                app_id=app_id,
                app_port=chosen,
                app_token=self.app_tokens[app_id],
                api_token=secrets.token_urlsafe(16),
                bindings=bindings,
            )
        )
        number = self._started.get(app_id, 0)
        self._started[app_id] = number + 1
        log_path = self.log_dir / f"{app_id}-{number}.log"
        process = self._spawn(app_id, chosen, sidecar, log_path)
        return _Pending(app_id, chosen, port != 0, sidecar, process, log_path)

    def _await_listening(self, pending: _Pending) -> Instance:
        """Wait until the instance listens; on a lost port race, try another port."""
        for attempt in range(5):
            if _listening(pending.port, pending.process, timeout=self.startup_timeout_seconds):
                return Instance(
                    pending.app_id, pending.port, pending.sidecar, pending.process, pending.log
                )
            _terminate(pending.process)
            if pending.fixed_port or attempt == 4:
                raise RuntimeError(
                    f"{pending.app_id} did not start on port {pending.port}; see {pending.log}"
                )
            pending.port = free_port()  # someone took the port in between: try another
            pending.sidecar.channel.port = pending.port
            pending.process = self._spawn(
                pending.app_id, pending.port, pending.sidecar, pending.log
            )
        raise AssertionError("unreachable")

    def _spawn(
        self, app_id: str, port: int, sidecar: Sidecar, log_path: Path
    ) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            SERVICES[app_id],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--http",
            http_limits.PROTOCOL,
            "--timeout-graceful-shutdown",
            "3",
        ]
        with log_path.open("ab") as log:
            return subprocess.Popen(
                command,
                env=self._env(app_id, sidecar),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a signal to the caller does not hit the apps first
                preexec_fn=die_with_parent_hook(),  # nor does a SIGKILL leave them behind
            )

    def _wait_ready(self, instance: Instance) -> None:
        deadline = time.monotonic() + self.startup_timeout_seconds
        while time.monotonic() < deadline:
            if instance.process.poll() is not None:
                raise RuntimeError(f"{instance.app_id} exited; see {instance.log_path}")
            try:
                if httpx.get(f"{instance.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{instance.app_id} not ready; see {instance.log_path}")


@dataclass
class ServiceUnit:
    """A service process, restarted on its port with the same sidecar."""

    system: LocalSystem
    instance: Instance

    @property
    def name(self) -> str:
        return f"{self.instance.sidecar.instance_id}"

    def running(self) -> bool:
        return self.instance.process.poll() is None

    def exit_reason(self) -> str:
        return _exit_reason(self.instance.process.returncode)

    def pid(self) -> int | None:
        return self.instance.process.pid

    def restart(self) -> None:
        old = self.instance.process
        try:  # whatever the dead leader left in its group (children) goes too
            os.killpg(old.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        instance = self.instance
        instance.process = self.system._spawn(
            instance.app_id, instance.port, instance.sidecar, instance.log_path
        )


@dataclass
class SidecarUnit:
    """An instance's stand-in sidecar (a part of this process, not a process of its own)."""

    system: LocalSystem
    instance: Instance

    @property
    def name(self) -> str:
        return f"{self.instance.sidecar.instance_id}-sidecar"

    def running(self) -> bool:
        return not self.system.standin.mesh.down(self.instance.sidecar)

    def exit_reason(self) -> str:
        return "crashed"

    def pid(self) -> int | None:
        return None

    def restart(self) -> None:
        self.system.standin.call(self.system.standin.mesh.restart, self.instance.sidecar)


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def bytecode_cache_env() -> dict[str, str]:
    """Compiled bytecode for the service processes, kept under a private cache directory.

    uv installs packages without `.pyc` files and this team's machines set
    `PYTHONDONTWRITEBYTECODE=1`, so each process would compile FastAPI, SQLAlchemy, gRPC
    and the rest from source again (seconds of CPU per process). With
    `PYTHONPYCACHEPREFIX` the bytecode goes to a cache directory of our own, next to no
    source file. `TODO_LOCAL_BYTECODE_CACHE=off` opts out, `=/some/dir` moves it.
    """
    setting = os.environ.get("TODO_LOCAL_BYTECODE_CACHE", "").strip()
    if setting.lower() in {"off", "0", "no", "false"}:
        return {"PYTHONDONTWRITEBYTECODE": "1"}
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    cache_dir = Path(setting) if setting else Path(base) / "todo-local" / "pycache"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return {"PYTHONDONTWRITEBYTECODE": "1"}
    return {"PYTHONPYCACHEPREFIX": str(cache_dir)}


def make_token(user: str, secret: str, ttl_seconds: int = 3600) -> str:
    """An HS256 bearer token for `user`, as an identity provider would issue it."""
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + ttl_seconds}, secret, "HS256")


def _listening(port: int, process: subprocess.Popen[bytes], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
