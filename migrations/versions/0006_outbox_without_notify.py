"""the outbox's NOTIFY trigger goes: relays are woken in their own process

Every statement that wrote outbox rows sent `NOTIFY outbox_new` (revision 0002). A
transaction that has notified takes a cluster-wide heavyweight lock before it commits
and holds it until after the commit (PostgreSQL src/backend/commands/async.c,
`PreCommit_Notify`: "Serialize writers by acquiring a special lock that we hold till
after commit", so that queue entries appear in commit order). Every change of a task
therefore committed, WAL flush included, one after another: sessions under load showed
`Lock/object` waits on COMMIT. On the benchmark machine, whose local disk flushes in
well under a millisecond, an A/B run showed no difference beyond the noise; on a managed
database, whose commits wait for network storage (and a standby, with HA), the lock caps
all writers at one commit per flush.

The only writer of outbox rows is the backend, and the replica that commits a change
wakes its own relay in-process (`apps.backend.deps.wake_relay`, called by the write
routes after their commits and by the reminder scan after each batch); a row no relay
was woken for (its replica died right after the commit) goes out on another replica's
next poll.

During a rolling upgrade, backends still on the previous release hear no NOTIFY any
more and publish on their poll (OUTBOX_RELAY_POLL_SECONDS, 1 s) until they are replaced.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX_CHANNEL = "outbox_new"


def upgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")


def downgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{OUTBOX_CHANNEL}', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )
