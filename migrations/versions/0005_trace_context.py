"""trace context on queued work: the W3C traceparent and tracestate of the writer

The request that writes an outbox row stores its trace context with it, and the relay
publishes the event as part of that trace (the CloudEvent's `traceparent`/`tracestate`
extension attributes), so a consumer continues the writer's trace. Likewise a webhook
delivery keeps the context of the event handling that recorded it, and the webhook
worker's call continues that trace. All columns are nullable: rows written outside a
trace, or before this revision, have none and are handled as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without a default: a catalog-only change, no table rewrite.
    op.add_column("outbox", sa.Column("traceparent", sa.Text(), nullable=True))
    op.add_column("outbox", sa.Column("tracestate", sa.Text(), nullable=True))
    op.add_column("notification_deliveries", sa.Column("traceparent", sa.Text(), nullable=True))
    op.add_column("notification_deliveries", sa.Column("tracestate", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("notification_deliveries", "tracestate")
    op.drop_column("notification_deliveries", "traceparent")
    op.drop_column("outbox", "tracestate")
    op.drop_column("outbox", "traceparent")
