"""handoff messages: what users and staff say during a hand-off (the console's inbox)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoff_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("line_user_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=True),
        sa.Column("staff", sa.String(length=64), nullable=True),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("retry_key", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
        sa.UniqueConstraint("retry_key"),
    )
    with op.batch_alter_table("handoff_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_handoff_messages_line_user_id"), ["line_user_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_handoff_messages_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handoff_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_messages_at"))
        batch_op.drop_index(batch_op.f("ix_handoff_messages_line_user_id"))
    op.drop_table("handoff_messages")
