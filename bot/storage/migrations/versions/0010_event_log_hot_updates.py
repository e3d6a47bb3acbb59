"""event log: updates that touch no index (HOT), retention by creation time

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 21:00:00

Each answered event's row is written three times (recorded, answer stored, done). The
indexes on ``status`` and ``updated_at`` made each of those writes a new entry in every
index of the table. Nothing needs to find rows by status alone (the answer's statements go
by id), and retention can go by ``created_at`` (never later than ``updated_at``), which no
update changes. Without those two indexes PostgreSQL updates a row in place on its page
(a heap-only tuple) and touches no index, when the page has room. The few held answers
(forgotten after a day) get a column of their own, ``held_at``, with a partial index that
no other row is in (taking or erasing an answer clears it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


HELD = sa.text("held_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("event_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
    # answers held before this version: held since their last change (found by the status
    # index while it is there; a worker of the old version still running may hold more, which
    # the prune forgets with the old rows, as it cannot tell when)
    op.execute("UPDATE event_log SET held_at = updated_at WHERE status = 'held'")
    with op.batch_alter_table("event_log", schema=None) as batch_op:
        batch_op.drop_index("ix_event_log_status")
        batch_op.drop_index("ix_event_log_updated_at")
        batch_op.create_index(batch_op.f("ix_event_log_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            "ix_event_log_held_at",
            ["held_at"],
            unique=False,
            postgresql_where=HELD,
            sqlite_where=HELD,
        )


def downgrade() -> None:
    with op.batch_alter_table("event_log", schema=None) as batch_op:
        batch_op.drop_index("ix_event_log_held_at")
        batch_op.drop_index(batch_op.f("ix_event_log_created_at"))
        batch_op.create_index("ix_event_log_updated_at", ["updated_at"], unique=False)
        batch_op.create_index("ix_event_log_status", ["status"], unique=False)
        batch_op.drop_column("held_at")
