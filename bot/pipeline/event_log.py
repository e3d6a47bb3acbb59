"""The event log's reads and writes, as single SQL statements on the worker's hot path.

Every event costs at most three short transactions: record it (one upsert of
the event row plus one of the user, and whether the chat is with staff), store
the decided answer before it is sent, and mark it done, a step that answers
finishing at the same time share (group commit). Upserts (``INSERT ... ON
CONFLICT ... RETURNING``, on PostgreSQL and SQLite alike) replace
read-modify-write round trips.

The database changes a handler decided on (``Turn.write``) commit in the
transaction that stores the answer: a worker dying before that commit leaves
neither, so the retry runs the handler again and every change happens once.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import String, Table, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.dialogue.router import Write
from bot.line.events import InboundEvent
from bot.storage.db import Database, DeadLetter, EventLog, Handoff, User, utcnow

T = TypeVar("T")
#: Most rows one group commit marks done, and the longest one may take.
MAX_GROUP = 500
COMMIT_SECONDS = 10.0


class AlreadyDecided(RuntimeError):
    """Another try of this event stored its answer first (its worker lost the chat's lock
    while still working): this try's answer and writes are dropped; the retry resends the
    stored one."""


class GroupCommit(Generic[T]):
    """Runs ``commit`` on batches of items: an item added while a commit is under way waits
    for the next one, which carries every item that arrived meanwhile. One transaction per
    event when the worker is idle, far fewer under load, and no added delay when idle.
    ``add`` returns after the commit that carried its item, or raises what it raised."""

    def __init__(self, commit: Callable[[list[T]], Awaitable[None]]) -> None:
        self.commit = commit
        self._waiting: collections.deque[tuple[T, asyncio.Future[None]]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    async def add(self, item: T) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append((item, future))
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._waiting:
            batch = [self._waiting.popleft() for _ in range(min(MAX_GROUP, len(self._waiting)))]
            try:
                # A hung connection fails its batch (each event retries) instead of holding
                # every later answer of this worker behind it.
                await asyncio.wait_for(self.commit([item for item, _ in batch]), COMMIT_SECONDS)
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)


_LOG: Table = EventLog.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_DEAD: Table = DeadLetter.__table__  # type: ignore[assignment]
_HANDOFFS: Table = Handoff.__table__  # type: ignore[assignment]
FINAL = ("done", "standby", "held")


@dataclass(frozen=True)
class Recorded:
    """The event's row after recording this attempt."""

    status: str
    delivery: str | None
    outbox: dict[str, Any] | None
    #: The user's ``users.id`` (a one-to-one event from a user), for counted links.
    user_pk: int | None = None
    #: The chat is with staff right now (``contact_staff``): the bot stays quiet for it.
    handed_off: bool = False


class EventLogStore:
    """Idempotency records for events, on the bot's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = (
            postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
        )
        # Single-statement writes need no BEGIN/COMMIT round trips of their own.
        self._autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        # Statements are built once with bound parameters: building SQLAlchemy constructs
        # per event cost more CPU than running them.
        ins = self._insert(_LOG)
        self._record = ins.on_conflict_do_update(
            index_elements=[_LOG.c.webhook_event_id],
            set_={
                "attempts": ins.excluded.attempts,
                "updated_at": ins.excluded.updated_at,
                # A dead or refused event that an operator replays is worked again.
                "status": case(
                    (_LOG.c.status.in_(("dead", "failed")), "processing"), else_=_LOG.c.status
                ),
            },
        ).returning(
            _LOG.c.status,
            _LOG.c.delivery,
            _LOG.c.outbox,
            # Is the chat with staff right now? Asked here rather than in a statement of its own.
            select(_HANDOFFS.c.line_user_id)
            .where(
                _HANDOFFS.c.line_user_id == bindparam("handoff_chat"),
                _HANDOFFS.c.until > bindparam("handoff_now", type_=_HANDOFFS.c.until.type),
            )
            .exists()
            .label("handed_off"),
        )
        users = self._insert(_USERS)
        self._visit = users.on_conflict_do_update(
            index_elements=[_USERS.c.line_user_id],
            set_={"last_seen_at": users.excluded.last_seen_at},
        ).returning(_USERS.c.id)
        self._follow = users.on_conflict_do_update(
            index_elements=[_USERS.c.line_user_id],
            set_={
                "last_seen_at": users.excluded.last_seen_at,
                "following": users.excluded.following,
                "follow_changed_at": users.excluded.follow_changed_at,
            },
        ).returning(_USERS.c.id)
        where = _LOG.c.webhook_event_id == bindparam("event_id")
        self._sending = (
            update(_LOG)
            .where(where, _LOG.c.status == "processing")
            .values(
                status="sending",
                outbox=bindparam("outbox"),
                delivery=bindparam("delivery"),
                retry_key=bindparam("retry_key"),
                updated_at=bindparam("now"),
            )
        )
        self._delivery = (
            update(_LOG)
            .where(where)
            .values(delivery=bindparam("delivery"), updated_at=bindparam("now"))
        )
        self._hold = (
            update(_LOG)
            .where(where, _LOG.c.status == "sending")
            .values(status="held", delivery="held", updated_at=bindparam("now"))
        )
        self._finish_sent = (
            update(_LOG)
            .where(
                _LOG.c.webhook_event_id.in_(bindparam("ids", expanding=True)),
                _LOG.c.status == "sending",
            )
            .values(
                status="done",
                outbox=None,
                delivery=bindparam("delivery", type_=String),
                updated_at=bindparam("now"),
            )
        )
        self._done: GroupCommit[tuple[str, str]] = GroupCommit(self._mark_sent)
        self._finish = (
            update(_LOG)
            .where(where)
            .values(
                status=bindparam("status"),
                outbox=None,
                delivery=func.coalesce(bindparam("delivery", type_=String), _LOG.c.delivery),
                error=func.coalesce(bindparam("error", type_=String), _LOG.c.error),
                updated_at=bindparam("now"),
            )
        )

    async def record(self, event: InboundEvent, attempts: int) -> Recorded:
        """Record this attempt (and the user's visit) in one transaction."""
        now = utcnow()
        values = {
            "webhook_event_id": event.id,
            "chat_id": event.chat_id,
            "event_type": event.type[:32],
            "event_ts": event.timestamp_ms,
            "status": "standby" if event.mode == "standby" else "processing",
            "attempts": attempts,
            "created_at": now,
            "updated_at": now,
            "handoff_chat": event.chat_id,
            "handoff_now": now,
        }
        user_pk: int | None = None
        async with self.db.engine.begin() as conn:
            row = (await conn.execute(self._record, values)).one()
            if event.user_id and event.source_type == "user" and event.mode != "standby":
                follows = event.type in ("follow", "unfollow")
                user = {
                    "line_user_id": event.user_id,
                    "following": event.type != "unfollow",
                    "follow_changed_at": now if follows else None,
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
                found = await conn.execute(self._follow if follows else self._visit, user)
                user_pk = found.scalar()
        handed = bool(row.handed_off) and event.type in ("message", "postback")
        return Recorded(row.status, row.delivery, row.outbox, user_pk, handed)

    async def _run(self, stmt: Any, writes: Sequence[Write] = (), **params: Any) -> int:
        """One statement on its own, or with the handler's writes in one transaction;
        returns the rows the statement changed."""
        values = {"now": utcnow(), **params}
        if not writes:
            async with self._autocommit.connect() as conn:
                alone = await conn.execute(stmt, values)
            return int(getattr(alone, "rowcount", 0) or 0)
        async with self.db.session() as s, s.begin():
            # The event-log statement first: on SQLite it is what opens the transaction
            # (the driver begins one at the first change), so every write is inside it.
            result = await s.execute(stmt, values)
            changed = int(getattr(result, "rowcount", 0) or 0)
            if stmt is self._sending and not changed:
                raise AlreadyDecided(params.get("event_id", "?"))  # rolls the writes back
            for write in writes:
                await write(s)
        return changed

    async def sending(
        self,
        event_id: str,
        outbox: dict[str, Any],
        delivery: str | None,
        key: str,
        writes: Sequence[Write] = (),
    ) -> None:
        """Store the decided answer and how it will go, before anything is sent, with the
        handler's ``writes`` in the same transaction."""
        changed = await self._run(
            self._sending,
            writes,
            event_id=event_id,
            outbox=outbox,
            delivery=delivery,
            retry_key=key,
        )
        if not changed:
            raise AlreadyDecided(event_id)

    async def set_delivery(self, event_id: str, delivery: str) -> None:
        """The answer goes another way (the reply token was refused: push)."""
        await self._run(self._delivery, event_id=event_id, delivery=delivery)

    async def finish(
        self,
        event_id: str,
        status: str = "done",
        delivery: str | None = None,
        error: str | None = None,
    ) -> None:
        """The event needs nothing more; its outbox (texts) is dropped as no longer needed.

        An answer just sent (``delivery`` reply or push) is counted per Thai day for
        ``bot quota`` in the same transaction, once: only the try that moves the row out of
        ``sending`` counts it. Those rows are group-committed (``GroupCommit``): under load
        one transaction marks many answers done; this returns once the row is committed.
        """
        if delivery is None or status != "done":
            await self._run(
                self._finish, event_id=event_id, status=status, delivery=delivery, error=error
            )
            return
        await self._done.add((event_id, delivery))

    async def _mark_sent(self, batch: list[tuple[str, str]]) -> None:
        """One transaction for every answer that finished while the previous one committed:
        each row leaves ``sending`` once, and only rows that did are counted."""
        from bot.storage.daily import DELIVERY, add, local_day

        now, day = utcnow(), local_day()
        by_way: dict[str, list[str]] = {}
        for event_id, delivery in batch:
            by_way.setdefault(delivery, []).append(event_id)
        async with self.db.session() as s, s.begin():
            for delivery, ids in sorted(by_way.items()):
                result = await s.execute(
                    self._finish_sent, {"ids": ids, "delivery": delivery, "now": now}
                )
                sent = int(getattr(result, "rowcount", 0) or 0)
                if sent:
                    await add(s, day, DELIVERY, delivery, sent)

    async def hold(self, event_id: str) -> None:
        """Keep the decided answer for its "ดูผลลัพธ์" tap (``bot.pipeline.held``)."""
        async with self._autocommit.connect() as conn:
            await conn.execute(self._hold, {"event_id": event_id, "now": utcnow()})

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
