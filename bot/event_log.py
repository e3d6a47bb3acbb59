"""The event log's reads and writes, as single SQL statements on the worker's hot path.

Every event costs three short transactions: record it (one upsert of the
event row plus one of the user), store the decided answer before it is sent,
and mark it done. Upserts (``INSERT ... ON CONFLICT ... RETURNING``, on
PostgreSQL and SQLite alike) replace read-modify-write round trips, which
is what lets one worker keep up with hundreds of events a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, case, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.db import Database, DeadLetter, EventLog, User, utcnow
from bot.events import InboundEvent

_LOG: Table = EventLog.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_DEAD: Table = DeadLetter.__table__  # type: ignore[assignment]
FINAL = ("done", "standby")


@dataclass(frozen=True)
class Recorded:
    """The event's row after recording this attempt."""

    status: str
    delivery: str | None
    outbox: dict[str, Any] | None


class EventLogStore:
    """Idempotency records for events, on the bot's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = (
            postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
        )
        # Single-statement writes need no BEGIN/COMMIT round trips of their own.
        self._autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def record(self, event: InboundEvent, attempts: int) -> Recorded:
        """Record this attempt (and the user's visit) in one transaction."""
        now = utcnow()
        ins = self._insert(_LOG).values(
            webhook_event_id=event.id,
            chat_id=event.chat_id,
            event_type=event.type[:32],
            event_ts=event.timestamp_ms,
            status="standby" if event.mode == "standby" else "processing",
            attempts=attempts,
            created_at=now,
            updated_at=now,
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[_LOG.c.webhook_event_id],
            set_={
                "attempts": ins.excluded.attempts,
                "updated_at": now,
                # A dead or refused event that an operator replays is worked again.
                "status": case(
                    (_LOG.c.status.in_(("dead", "failed")), "processing"), else_=_LOG.c.status
                ),
            },
        ).returning(_LOG.c.status, _LOG.c.delivery, _LOG.c.outbox)
        async with self.db.engine.begin() as conn:
            row = (await conn.execute(stmt)).one()
            if event.user_id and event.source_type == "user" and event.mode != "standby":
                await conn.execute(self._user_upsert(event, now))
        return Recorded(row.status, row.delivery, row.outbox)

    def _user_upsert(self, event: InboundEvent, now: Any) -> Any:
        follows = event.type in ("follow", "unfollow")
        ins = self._insert(_USERS).values(
            line_user_id=event.user_id,
            following=event.type != "unfollow",
            follow_changed_at=now if follows else None,
            first_seen_at=now,
            last_seen_at=now,
        )
        changes: dict[str, Any] = {"last_seen_at": now}
        if follows:
            changes |= {"following": event.type == "follow", "follow_changed_at": now}
        return ins.on_conflict_do_update(index_elements=[_USERS.c.line_user_id], set_=changes)

    async def _update(self, event_id: str, **values: Any) -> None:
        stmt = (
            update(_LOG)
            .where(_LOG.c.webhook_event_id == event_id)
            .values(updated_at=utcnow(), **values)
        )
        async with self._autocommit.connect() as conn:
            await conn.execute(stmt)

    async def sending(self, event_id: str, outbox: dict[str, Any], delivery: str, key: str) -> None:
        """Store the decided answer and how it will go, before anything is sent."""
        await self._update(
            event_id, status="sending", outbox=outbox, delivery=delivery, retry_key=key
        )

    async def set_delivery(self, event_id: str, delivery: str) -> None:
        """The answer goes another way (the reply token was refused: push)."""
        await self._update(event_id, delivery=delivery)

    async def finish(self, event_id: str, status: str = "done", **values: Any) -> None:
        """The event needs nothing more; its outbox (texts) is dropped as no longer needed."""
        await self._update(event_id, status=status, outbox=None, **values)

    async def dead_letter(
        self,
        event_id: str,
        chat_id: str,
        payload: dict[str, Any],
        error: str,
        attempts: int,
        status: str,
    ) -> None:
        """Keep a failed event for an operator (``bot events dead``) and mark its row."""
        now = utcnow()
        ins = self._insert(_DEAD).values(
            webhook_event_id=event_id,
            chat_id=chat_id,
            event_type=str(payload.get("type", "?"))[:32],
            payload=payload,
            error=error[:300],
            attempts=attempts,
            died_at=now,
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[_DEAD.c.webhook_event_id],
            set_={
                "payload": ins.excluded.payload,
                "error": ins.excluded.error,
                "attempts": ins.excluded.attempts,
                "died_at": now,
            },
        )
        mark = (
            update(_LOG)
            .where(_LOG.c.webhook_event_id == event_id, _LOG.c.status.not_in(FINAL))
            .values(status=status, error=error[:300], outbox=None, updated_at=now)
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(stmt)
            await conn.execute(mark)
