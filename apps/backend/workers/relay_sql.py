"""The SQL of the outbox relay: claiming rows head-first per key, marking them published
or failed, releasing backoffs, the pending gauges and the purge of published rows."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class Row:
    """An unpublished outbox row, as the relay publishes it."""

    id: int
    topic: str
    partition_key: str
    event_id: str
    event_type: str
    payload: str
    """The envelope as JSON text (`payload::text`): published as it is, never decoded."""
    attempts: int
    traceparent: str | None = None
    tracestate: str | None = None


ROW_FIELDS = (
    "id",
    "topic",
    "partition_key",
    "event_id",
    "event_type",
    "payload",
    "attempts",
    "traceparent",
    "tracestate",
)


# `followers`: whether the key has later unpublished rows, so that the second query
# runs only for keys that have some (most keys have one pending row at a time).
HEADS = sa.text(
    """
    SELECT o.id, o.topic, o.partition_key, o.event_id::text AS event_id, o.event_type,
           o.payload::text AS payload, o.attempts, o.traceparent, o.tracestate,
           EXISTS (
               SELECT 1 FROM outbox f
               WHERE f.partition_key = o.partition_key
                 AND f.published_at IS NULL
                 AND f.id > o.id
           ) AS followers
    FROM outbox o
    WHERE o.published_at IS NULL
      AND o.next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.partition_key = o.partition_key
            AND p.published_at IS NULL
            AND p.id < o.id
      )
    ORDER BY o.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)

# Later rows of keys whose head this transaction holds: no other relay can claim them
# (their head is unpublished), so a plain lock is enough.
FOLLOWERS = sa.text(
    """
    SELECT id, topic, partition_key, event_id::text AS event_id, event_type,
           payload::text AS payload, attempts, traceparent, tracestate
    FROM outbox
    WHERE published_at IS NULL
      AND partition_key = ANY(:keys)
      AND id <> ALL(:heads)
    ORDER BY id
    LIMIT :limit
    FOR UPDATE
    """
)

MARK_PUBLISHED = sa.text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)")

# One statement for all of a round's failures (a failed bulk call fails many rows).
MARK_FAILED = sa.text(
    """
    UPDATE outbox o
    SET attempts = o.attempts + 1,
        last_error = f.error,
        next_attempt_at = now() + make_interval(secs => f.delay)
    FROM unnest(CAST(:ids AS bigint[]), CAST(:errors AS text[]), CAST(:delays AS float8[]))
         AS f(id, error, delay)
    WHERE o.id = f.id
    """
)

RETRY_NOW = sa.text(
    "UPDATE outbox SET next_attempt_at = now() "
    "WHERE published_at IS NULL AND next_attempt_at > now()"
)

PENDING = sa.text(
    "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at)) "
    "FROM outbox WHERE published_at IS NULL"
)

PURGE = sa.text(
    """
    DELETE FROM outbox WHERE id IN (
        SELECT id FROM outbox
        WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => :age)
        LIMIT 5000
    )
    """
)
