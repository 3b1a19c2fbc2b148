"""The outbox relay: publishes committed outbox rows through Dapr, in order per key.

One relay runs in each backend replica. A round, in one transaction:

1. claim the oldest unpublished row of as many partition keys as it can
   (`FOR UPDATE SKIP LOCKED`, and only rows with no older unpublished row of the same
   key — so while one replica holds a key's head, no other replica can publish any of
   that key's later rows, and order per key holds with any number of replicas);
2. take the claimed keys' later rows too, in id order;
3. publish with Dapr's bulk publish, one wave per position in the keys' queues (a
   call holds at most one row of a key, and a key's next row goes only once its
   previous one is published), stopping a key at its first failure; with
   OUTBOX_RELAY_BULK_PUBLISH off, keys concurrently, each key's rows one call each;
4. mark published rows, and give failed rows `attempts + 1`, `last_error` and a
   `next_attempt_at` with exponential backoff.

The replica that commits a change wakes its own relay (`nudge`: the write routes through
`apps.backend.deps.wake_relay`, the reminder scan after each batch), and every relay
polls as a fallback, which publishes a row whose replica died right after committing it.
(A NOTIFY trigger on the outbox used to wake the relays, but a transaction that notifies
takes one cluster-wide lock from before its commit until the commit is flushed, so all
changes committed one at a time; migration 0006 dropped it.) Rounds are spaced by
`round_interval_seconds`, so under load one round takes what a burst of commits wrote.
While the sidecar does not answer it claims nothing and probes it every couple of
seconds, so a long outage costs no row attempts; the API keeps accepting changes
meanwhile, and when the sidecar is back, rows still waiting out a backoff are released
and everything is published at once. Published rows are deleted after a retention period.

Stopping (the app's shutdown, `apps.shared.shutdown`): the relay claims no new round,
the round in progress publishes and marks its rows and commits, then the relay ends.
If that round outlasts the drain budget it is cancelled: its transaction rolls back,
which releases every row lock it held (rows published but not yet marked are published
again by the next relay: delivery is at least once). Either way no row stays claimed
after the relay stops; the connections go back to the pool, which the app closes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from apps.backend.settings import BackendSettings, RelaySettings
from apps.backend.workers.relay_sql import (
    FOLLOWERS,
    HEADS,
    MARK_FAILED,
    MARK_PUBLISHED,
    PENDING,
    PURGE,
    RETRY_NOW,
    ROW_FIELDS,
    Row,
)
from apps.shared.dapr import (
    BulkEvent,
    DaprAccess,
    PublishFailed,
    PublishRejected,
    SidecarUnavailable,
)
from apps.shared.logs import get_logger
from apps.shared.metrics import (
    OUTBOX_OLDEST_PENDING_AGE,
    OUTBOX_PENDING_EVENTS,
    OUTBOX_PUBLISH_FAILURES,
)
from apps.shared.tracing import context_from, span_trace_headers, tracer

# The logger keeps the name it had before the relay moved here: its lines do not change.
_log = get_logger("apps.backend.outbox_relay")

_OUTAGE_PROBE_SECONDS = 2.0
_SLOW_ROUND_SECONDS = 5.0


def backoff_seconds(attempts: int, *, base: float, ceiling: float) -> float:
    """Exponential with full jitter, so replicas do not retry in lockstep."""
    return random.uniform(base, min(ceiling, base * 2 ** min(attempts, 30)))


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        dapr: DaprAccess,
        service: str,
        settings: RelaySettings | None = None,
    ) -> None:
        self._engine = engine
        self._dapr = dapr
        self._service = service
        self.settings = settings or RelaySettings()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_purge = 0.0
        self._sidecar_lost = False
        self._stopping = False
        self._round_started = 0.0
        """When the last round began (monotonic); 0: the next may start at once."""

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="outbox-relay"),
            asyncio.create_task(self._report(), name="outbox-gauges"),
        ]

    async def stop(self, *, drain_seconds: float = 0.0) -> None:
        """End the loop after the round in progress (cancelled after `drain_seconds`)."""
        self._stopping = True
        self._wake.set()
        run = self._tasks[0] if self._tasks else None
        for task in self._tasks[1:]:
            task.cancel()
        if run is not None and drain_seconds > 0:
            done, _ = await asyncio.wait({run}, timeout=drain_seconds)
            if not done:
                _log.warning("outbox relay round outlasted the drain; cancelling it")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def nudge(self) -> None:
        """Start a round now (a change was just committed in this process)."""
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        outage = 0
        while not self._stopping:
            try:
                if not await self._dapr.ready():
                    outage += 1
                    # Probing a local port is cheap: notice the sidecar's return quickly.
                    await self._sleep(min(self._backoff(outage), _OUTAGE_PROBE_SECONDS))
                    continue
                if outage or self._sidecar_lost:
                    # Rows that failed because the sidecar was gone need not wait out
                    # their backoff now that it answers (broker failures still do).
                    outage, self._sidecar_lost = 0, False
                    await self._retry_now()
                await self._space_rounds()
                if self._stopping:
                    return
                self._round_started = time.monotonic()
                published = await self.run_once()
                if self._stopping:
                    return
                await self._purge_if_due()
                if published >= self.settings.batch_size:
                    self._round_started = 0.0  # more may be waiting: go again at once
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down: keep trying, never die
                _log.error("outbox relay round failed", error=repr(exc))
                outage += 1
                await self._sleep(self._backoff(outage))
                continue
            await self._sleep(self.settings.poll_seconds)

    async def _space_rounds(self) -> None:
        """Wait out what remains of `round_interval_seconds` since the last round began
        (rows committed meanwhile go out together in the next round)."""
        remaining = self._round_started + self.settings.round_interval_seconds - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _retry_now(self) -> None:
        """The sidecar is back: rows waiting out a backoff need not wait any longer."""
        async with self._engine.begin() as connection:
            released = await connection.execute(RETRY_NOW)
        if released.rowcount:
            _log.info("sidecar back, retrying backed-off rows", rows=released.rowcount)

    def _backoff(self, attempts: int) -> float:
        return backoff_seconds(
            attempts,
            base=self.settings.backoff_base_seconds,
            ceiling=self.settings.backoff_max_seconds,
        )

    async def _sleep(self, seconds: float) -> None:
        """Until `seconds` pass or something wakes the relay.

        asyncio.timeout rather than wait_for: on Python 3.11, a cancellation arriving as
        wait_for times out can be swallowed, and a stopping relay would run on forever.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def run_once(self) -> int:
        """One round; returns how many rows were published."""
        started = time.monotonic()
        async with self._engine.begin() as connection:
            by_key = await self._claim(connection)
            if not by_key:
                return 0
            published, failed = await self._publish(by_key)
            if published:
                await connection.execute(MARK_PUBLISHED, {"ids": published})
            if failed:
                await connection.execute(
                    MARK_FAILED,
                    {
                        "ids": [row.id for row, _ in failed],
                        "errors": [error[:2000] for _, error in failed],
                        "delays": [self._backoff(row.attempts + 1) for row, _ in failed],
                    },
                )
        if failed:
            _log.warning(
                "outbox rows failed to publish",
                failed=len(failed),
                ok=len(published),
                error=failed[0][1][:500],
            )
        took = time.monotonic() - started
        if took > _SLOW_ROUND_SECONDS:
            _log.warning("slow outbox relay round", seconds=round(took, 3), rows=len(published))
        return len(published)

    async def _claim(self, connection: AsyncConnection) -> OrderedDict[str, list[Row]]:
        heads: list[Row] = []
        followed: list[Row] = []  # heads of keys with later rows
        rows = await connection.execute(HEADS, {"limit": self.settings.batch_size})
        for row in rows.mappings():
            head = Row(**{name: row[name] for name in ROW_FIELDS})
            heads.append(head)
            if row["followers"]:
                followed.append(head)
        by_key: OrderedDict[str, list[Row]] = OrderedDict((h.partition_key, [h]) for h in heads)
        room = self.settings.max_rows - len(heads)
        if followed and room > 0:
            followers = await connection.execute(
                FOLLOWERS,
                {
                    "keys": [h.partition_key for h in followed],
                    "heads": [h.id for h in followed],
                    "limit": room,
                },
            )
            for row in followers.mappings():
                by_key[row["partition_key"]].append(Row(**row))
        return by_key

    async def _publish(
        self, by_key: OrderedDict[str, list[Row]]
    ) -> tuple[list[int], list[tuple[Row, str]]]:
        if self.settings.bulk_publish:
            return await self._publish_in_waves(by_key)
        return await self._publish_one_by_one(by_key)

    async def _publish_one_by_one(
        self, by_key: OrderedDict[str, list[Row]]
    ) -> tuple[list[int], list[tuple[Row, str]]]:
        gate = asyncio.Semaphore(self.settings.concurrency)
        published: list[int] = []
        failed: list[tuple[Row, str]] = []

        async def publish_key(rows: Sequence[Row]) -> None:
            async with gate:
                for row in rows:
                    error = await self._publish_row(row)
                    if error is not None:
                        failed.append((row, error))
                        return  # later rows of this key wait: order per key holds
                    published.append(row.id)

        await asyncio.gather(*(publish_key(rows) for rows in by_key.values()))
        return published, failed

    async def _publish_in_waves(
        self, by_key: OrderedDict[str, list[Row]]
    ) -> tuple[list[int], list[tuple[Row, str]]]:
        """Bulk publish, one wave per position in the keys' queues.

        A bulk publish keeps no order among its entries, and some may fail while later
        ones go out. So a call holds at most one row of any key: wave n is the n-th row
        of every key whose earlier rows were all published; a key stops at its first
        failure, as it does one row at a time. Most rounds are one wave (keys with more
        than one pending row are rare), cut into calls of `bulk_max_entries` per topic.
        """
        published: list[int] = []
        failed: list[tuple[Row, str]] = []
        queues = [rows for rows in by_key.values() if rows]
        position = 0
        gate = asyncio.Semaphore(self.settings.concurrency)
        while queues:
            wave = [rows[position] for rows in queues]
            by_topic: dict[str, list[Row]] = {}
            for row in wave:
                by_topic.setdefault(row.topic, []).append(row)
            size = self.settings.bulk_max_entries
            calls = [
                rows[start : start + size]
                for rows in by_topic.values()
                for start in range(0, len(rows), size)
            ]

            async def call(rows: list[Row]) -> dict[int, str]:
                async with gate:
                    return await self._publish_rows(rows)

            errors: dict[int, str] = {}
            for outcome in await asyncio.gather(*(call(rows) for rows in calls)):
                errors.update(outcome)
            for row in wave:
                if row.id in errors:
                    failed.append((row, errors[row.id]))
                else:
                    published.append(row.id)
            position += 1
            queues = [
                rows
                for rows in queues
                if rows[position - 1].id not in errors and position < len(rows)
            ]
        return published, failed

    def _producer_span(self, row: Row) -> Span:
        # A producer span in the trace of the request that wrote the row (its stored
        # context); the event goes out carrying this span's context (`cloudevent.`
        # trace metadata). A row written outside any trace starts a new one, sampled by
        # the ratio.
        return tracer().start_span(
            f"{row.topic} publish",
            context=context_from(row.traceparent, row.tracestate),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "dapr",
                "messaging.operation.type": "send",
                "messaging.destination.name": row.topic,
                "messaging.message.id": row.event_id,
                "cloudevents.event_type": row.event_type,
            },
        )

    async def _publish_rows(self, rows: Sequence[Row]) -> dict[int, str]:
        """One bulk publish of rows of one topic (one row per key); failed row id → error."""
        spans = [self._producer_span(row) for row in rows]
        errors: dict[int, str] = {}
        try:
            failures = await self._dapr.publish_bulk(
                topic=rows[0].topic,
                events=[
                    BulkEvent(
                        entry_id=str(row.id),
                        event_id=row.event_id,
                        event_type=row.event_type,
                        envelope_json=row.payload,
                        partition_key=row.partition_key,
                        trace_headers=span_trace_headers(span),
                    )
                    for row, span in zip(rows, spans, strict=True)
                ],
            )
            errors = {int(entry_id): error for entry_id, error in failures.items()}
        except (SidecarUnavailable, PublishFailed, PublishRejected) as exc:
            if isinstance(exc, SidecarUnavailable):
                self._sidecar_lost = True
            errors = {row.id: str(exc) or type(exc).__name__ for row in rows}
        for row, span in zip(rows, spans, strict=True):
            if row.id in errors:
                OUTBOX_PUBLISH_FAILURES.labels(self._service, row.topic).inc()
                span.set_status(Status(StatusCode.ERROR, "PublishFailed"))
            span.end()
        return errors

    async def _publish_row(self, row: Row) -> str | None:
        with trace.use_span(self._producer_span(row), end_on_exit=True) as span:
            try:
                await self._dapr.publish(
                    topic=row.topic,
                    envelope_json=row.payload,
                    event_id=row.event_id,
                    event_type=row.event_type,
                    partition_key=row.partition_key,
                )
            except (SidecarUnavailable, PublishFailed, PublishRejected) as exc:
                if isinstance(exc, SidecarUnavailable):
                    self._sidecar_lost = True
                OUTBOX_PUBLISH_FAILURES.labels(self._service, row.topic).inc()
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                return str(exc) or type(exc).__name__
        return None

    async def _purge_if_due(self) -> None:
        retention = self.settings.retention_hours
        if retention <= 0 or time.monotonic() - self._last_purge < 300:
            return
        self._last_purge = time.monotonic()
        async with self._engine.begin() as connection:
            await connection.execute(PURGE, {"age": timedelta(hours=retention).total_seconds()})

    # -- wake-ups and gauges -------------------------------------------------------------

    async def _report(self) -> None:
        while True:
            try:
                async with self._engine.connect() as connection:
                    count, age = (await connection.execute(PENDING)).one()
                OUTBOX_PENDING_EVENTS.labels(self._service).set(count)
                OUTBOX_OLDEST_PENDING_AGE.labels(self._service).set(float(age or 0.0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the gauges keep their last value meanwhile
                _log.debug("outbox gauges not refreshed", error=repr(exc))
            await asyncio.sleep(self.settings.gauge_seconds)


@asynccontextmanager
async def open_outbox_relay(
    app: FastAPI, settings: BackendSettings, *, service: str
) -> AsyncIterator[None]:
    """The backend's part of the event pipeline, inside the app's lifespan once the
    database is open: its Dapr access on `app.state`, and one outbox relay per replica
    (unless OUTBOX_RELAY_ENABLED is off) until shutdown."""
    dapr = DaprAccess()
    app.state.dapr = dapr
    relay_settings = settings.outbox_relay
    relay: OutboxRelay | None = None
    if relay_settings.enabled:
        relay = OutboxRelay(
            engine=app.state.engine,
            dapr=dapr,
            service=service,
            settings=relay_settings,
        )
        relay.start()
    app.state.outbox_relay = relay
    try:
        yield
    finally:
        if relay is not None:
            await relay.stop(drain_seconds=settings.shutdown_drain_seconds)
        await dapr.close()
