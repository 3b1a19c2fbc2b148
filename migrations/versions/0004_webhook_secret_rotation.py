"""webhook secret rotation: the previous secret and until when it still signs

A user rotating their webhook secret gets a new one at once, while the one it replaces
keeps signing deliveries (a second `v1,` signature) until
`webhook_secret_previous_expires_at`, so their receiver can switch over without a gap.
Both columns are set together or not at all. Rows from before this revision have
neither: nothing changes for them until they rotate.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "notification_settings",
        sa.Column("webhook_secret_previous", sa.Text(), nullable=True),
    )
    op.add_column(
        "notification_settings",
        sa.Column("webhook_secret_previous_expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_check_constraint(
        "ck_settings_previous_secret_expires",
        "notification_settings",
        "(webhook_secret_previous IS NULL) = (webhook_secret_previous_expires_at IS NULL)",
    )


def downgrade() -> None:
    op.drop_constraint(
        "ck_settings_previous_secret_expires", "notification_settings", type_="check"
    )
    op.drop_column("notification_settings", "webhook_secret_previous_expires_at")
    op.drop_column("notification_settings", "webhook_secret_previous")
