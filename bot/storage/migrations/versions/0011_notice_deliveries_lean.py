"""notice deliveries: no index on the retry key

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 00:30:00

A notice run logs one delivery row per user and course: 239,185 rows for 100,000
subscribers. Nothing looks deliveries up by retry key (the batch table holds the keys;
the monthly usage only groups by it within a time range, which the ``at`` index finds),
and that index was a fifth of each row's insert on PostgreSQL.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notice_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_deliveries_retry_key")


def downgrade() -> None:
    with op.batch_alter_table("notice_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_notice_deliveries_retry_key", ["retry_key"], unique=False)
