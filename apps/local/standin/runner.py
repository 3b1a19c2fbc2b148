"""Running a `Mesh` on its own thread and event loop, for synchronous callers.

pytest tests and the `todo-local` CLI drive the stand-in from ordinary code: they start
it, add sidecars, flip faults and read the journal through `call`, which runs a
coroutine function on the mesh's loop and waits for its result. This is where a `Mesh`
and its `Sidecar`s meet: they know each other only through `protocols`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from apps.local.standin.config import MeshConfig, SidecarSpec
from apps.local.standin.mesh import Mesh
from apps.local.standin.sidecar import Sidecar

P = ParamSpec("P")


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it comes with uvicorn[standard]): less CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


T = TypeVar("T")


class MeshThread:
    def __init__(self, config: MeshConfig | None = None) -> None:
        self._config = config or MeshConfig()
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._run, name="dapr-standin", daemon=True)
        self._mesh: Mesh | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def mesh(self) -> Mesh:
        if self._mesh is None:
            raise RuntimeError("the stand-in is not started")
        return self._mesh

    def start(self) -> Mesh:
        self._thread.start()

        async def create() -> Mesh:
            return Mesh(self._config)

        self._mesh = asyncio.run_coroutine_threadsafe(create(), self._loop).result()
        return self._mesh

    def call(
        self,
        function: Callable[P, Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `function(*args, **kwargs)` on the mesh's loop and return its result."""

        async def run() -> T:
            return await function(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def add_sidecar(self, spec: SidecarSpec) -> Sidecar:
        """Start the sidecar of one more instance of `spec.app_id`."""
        mesh = self.mesh

        async def add() -> Sidecar:
            sidecar = Sidecar(mesh, spec, mesh.next_instance_id(spec.app_id))
            await mesh.add_sidecar(sidecar)
            return sidecar

        return self.call(add)

    def stop(self) -> None:
        if self._mesh is not None:
            self.call(self._mesh.close)
            self._mesh = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> MeshThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
