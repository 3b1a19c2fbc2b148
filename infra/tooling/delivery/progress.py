"""A live progress line for `pulumi up`/`destroy` runs, fed by Automation API events.

Events arrive on the Automation API's own thread; rich's Live display is thread-safe for
updates, and the counters are only touched under a lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from pulumi.automation import EngineEvent
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from infra.tooling.delivery.ephemeral_ops import Progress

_DONE_OPS = ("create", "update", "delete", "replace", "create-replacement", "delete-replaced")


class EventProgress:
    """Counts resource steps and shows the one in flight."""

    def __init__(self, verb: str, stack: str) -> None:
        self.verb = verb
        self.stack = stack
        self.ops: Counter[str] = Counter()
        self.current = ""
        self.failures: list[str] = []
        self.diagnostics: list[str] = []
        self._lock = threading.Lock()

    def on_event(self, event: EngineEvent) -> None:
        with self._lock:
            if event.resource_pre_event is not None:
                meta = event.resource_pre_event.metadata
                if str(meta.op.value) != "same":
                    self.current = f"{meta.op.value} {meta.urn.rsplit('::', 1)[-1]}"
            elif event.res_outputs_event is not None:
                op = str(event.res_outputs_event.metadata.op.value)
                if op in _DONE_OPS:
                    self.ops[op] += 1
            elif event.res_op_failed_event is not None:
                urn = event.res_op_failed_event.metadata.urn
                self.failures.append(urn.rsplit("::", 1)[-1])
            elif event.diagnostic_event is not None:
                diag = event.diagnostic_event
                if diag.severity == "error" and diag.message.strip():
                    self.diagnostics.append(diag.message.strip())

    def render(self) -> Spinner:
        with self._lock:
            done = ", ".join(f"{n} {op}" for op, n in sorted(self.ops.items())) or "starting"
            line = Text.assemble(
                (f"{self.verb} {self.stack}", "bold"), f"  {done}", (f"  {self.current}", "dim")
            )
        return Spinner("dots", text=line)

    def summary(self) -> str:
        with self._lock:
            done = ", ".join(f"{n} {op}" for op, n in sorted(self.ops.items()))
        return done or "no changes"


@contextmanager
def live_progress(
    console: Console, verb: str, stack: str
) -> Iterator[tuple[Progress, EventProgress]]:
    """Show a progress line while the block runs; yields what to pass to the operation."""
    tracker = EventProgress(verb, stack)

    class _Renderable:
        def __rich__(self) -> Spinner:
            return tracker.render()

    with Live(_Renderable(), console=console, refresh_per_second=8, transient=True):
        yield Progress(on_event=tracker.on_event), tracker
