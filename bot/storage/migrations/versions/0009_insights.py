"""insights: raw moments per person, the rollup the views read, dirty days, rollup runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insight_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("line_user_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("sector", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("insight_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insight_events_day"), ["day"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_insight_events_line_user_id"), ["line_user_id"], unique=False
        )
    op.create_table(
        "insights_rollup",
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("sector", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("grain", "start", "kind", "province", "sector", "stage", "key"),
    )
    op.create_table(
        "insights_dirty",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "insights_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("periods", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("insights_runs")
    op.drop_table("insights_dirty")
    op.drop_table("insights_rollup")
    with op.batch_alter_table("insight_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insight_events_line_user_id"))
        batch_op.drop_index(batch_op.f("ix_insight_events_day"))
    op.drop_table("insight_events")
