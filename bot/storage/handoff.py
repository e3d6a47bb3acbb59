"""Staff hand-offs: while one is open the bot stays quiet for that user.

``contact_staff`` starts (or extends) a hand-off; staff end it with
``bot handoff end USER_ID`` or ``POST /admin/handoffs/{user_id}/end``, and it
ends by itself at ``until`` (``HANDOFF_SECONDS`` after it started). The
pipeline checks the table before every message (``bot.pipeline.event_log``, in the
transaction that records the event) and ``Pipeline.prune`` deletes rows that ended.
One row per user, so asking for staff again only moves ``until`` forward.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.db import Database, Handoff, aware, utcnow
from bot.storage.queries import handed_off


@dataclass(frozen=True)
class OpenHandoff:
    """A user who is with staff right now."""

    user_id: str
    agency: str | None
    started_at: dt.datetime
    until: dt.datetime

    def to_json(self) -> dict[str, Any]:
        """The admin endpoint's form (ISO 8601 times, UTC)."""
        return {
            "user_id": self.user_id,
            "agency": self.agency,
            "started_at": self.started_at.isoformat(),
            "until": self.until.isoformat(),
        }


def _open(row: Handoff) -> OpenHandoff:
    return OpenHandoff(row.line_user_id, row.agency, aware(row.started_at), aware(row.until))


async def start(db: Database, user_id: str, agency: str | None, seconds: int) -> OpenHandoff:
    """Hand ``user_id`` to staff for ``seconds`` from now (a second request restarts the clock)."""
    async with db.session() as s, s.begin():
        return await start_in(s, user_id, agency, seconds)


async def start_in(s: AsyncSession, user_id: str, agency: str | None, seconds: int) -> OpenHandoff:
    """``start`` inside a caller's transaction (a handler's write, committed with its answer)."""
    now = utcnow()
    until = now + dt.timedelta(seconds=seconds)
    row = await s.get(Handoff, user_id)
    if row is None:
        row = Handoff(line_user_id=user_id, agency=agency, started_at=now, until=until)
        s.add(row)
    else:
        if aware(row.until) <= now:  # an ended one not yet pruned: a new hand-off
            row.started_at = now
        row.agency = agency
        row.until = until
    return OpenHandoff(user_id, agency, aware(row.started_at), until)


async def end(db: Database, user_id: str) -> bool:
    """End ``user_id``'s hand-off now; False when there was none open."""
    async with db.session() as s, s.begin():
        result = await s.execute(
            delete(Handoff).where(Handoff.line_user_id == user_id, Handoff.until > utcnow())
        )
        # An expired row left for prune is removed too, but does not count as ended now.
        await s.execute(delete(Handoff).where(Handoff.line_user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


async def active(db: Database) -> list[OpenHandoff]:
    """Hand-offs still open, the oldest first (who has waited longest for staff)."""
    async with db.session() as s:
        rows = (
            await s.scalars(
                select(Handoff).where(Handoff.until > utcnow()).order_by(Handoff.started_at)
            )
        ).all()
    return [_open(r) for r in rows]


async def is_open(db: Database, user_id: str) -> bool:
    """Is ``user_id`` with staff right now?"""
    async with db.session() as s:
        return await handed_off(s, user_id)
