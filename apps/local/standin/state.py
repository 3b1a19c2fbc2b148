"""The `statestore` component: shared by every sidecar, in memory.

In the cluster it is `state.postgresql`. Here it is kept in memory on purpose: the apps
keep their own data in their PostgreSQL tables and use Dapr state only for data that
may be lost, so durability across a restart of the stand-in is not worth a second
database. What is modelled: daprd's key prefix (`<app-id>||<key>`), etags with
first-write and last-write concurrency, and all-or-nothing transactions.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal


class EtagMismatch(RuntimeError):
    """An etag was given and does not match the stored one (daprd answers ABORTED)."""


@dataclass(frozen=True)
class StateOperation:
    kind: Literal["upsert", "delete"]
    key: str
    value: bytes = b""
    etag: str | None = None
    first_write: bool = False


class StateStore:
    def __init__(self) -> None:
        self._items: dict[str, tuple[bytes, str]] = {}
        self._versions = itertools.count(1)

    @staticmethod
    def qualified(app_id: str, key: str) -> str:
        return f"{app_id}||{key}"

    def get(self, key: str) -> tuple[bytes, str] | None:
        return self._items.get(key)

    def _check(self, operation: StateOperation) -> None:
        current = self._items.get(operation.key)
        if operation.etag:
            if current is None or current[1] != operation.etag:
                raise EtagMismatch(f"possible etag mismatch for key {operation.key!r}")
        elif operation.first_write and operation.kind == "upsert" and current is not None:
            raise EtagMismatch(f"first-write: key {operation.key!r} exists and no etag given")

    def _apply(self, operation: StateOperation) -> None:
        if operation.kind == "upsert":
            self._items[operation.key] = (operation.value, str(next(self._versions)))
        else:
            self._items.pop(operation.key, None)

    def apply(self, operations: Iterable[StateOperation]) -> None:
        """Check every operation, then apply them all (nothing applied on a mismatch)."""
        batch = list(operations)
        for operation in batch:
            self._check(operation)
        for operation in batch:
            self._apply(operation)
