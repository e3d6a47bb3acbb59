"""guides: per-guide daily counts, and the best guide of an unanswered message

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guide_stats",
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("offered", sa.Integer(), nullable=False),
        sa.Column("helpful", sa.Integer(), nullable=False),
        sa.Column("unhelpful", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("guide_id", "day"),
    )
    with op.batch_alter_table("unanswered", schema=None) as batch_op:
        batch_op.add_column(sa.Column("best_guide", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("unanswered", schema=None) as batch_op:
        batch_op.drop_column("best_guide")
    op.drop_table("guide_stats")
