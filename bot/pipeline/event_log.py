"""The event log's reads and writes, as single SQL statements on the worker's hot path.

Every event costs at most three short transactions: record it (one upsert of
the event row plus one of the user, and whether the chat is with staff), store
the decided answer before it is sent, and mark it done. The last two are
group-committed: answers decided (or finished) while the previous transaction
of that step was committing share the next one, so under load a transaction
carries many events. Upserts (``INSERT ... ON CONFLICT ... RETURNING``, on
PostgreSQL and SQLite alike) replace read-modify-write round trips. On PostgreSQL each
step is one autocommitted statement in the usual case: an event recorded alone (the user's
visit rides in it as a CTE), answers whose writes only add rows (``answer_statement``),
and answers marked done (with the delivery count): 3 round trips per event below full
load, where BEGIN and COMMIT around each step and a statement per write made 14. The
"done" marks wait a moment (``DONE_LINGER_SECONDS``) for the next event's record, which
carries them as CTEs: below full load most events then cost 2 transactions, not 3.

The database changes a handler decided on (``Turn.write``) commit in the
transaction that stores the answer: a worker dying before that commit leaves
neither, so the retry runs the handler again and every change happens once.
Answers stored together share a statement per kind of change
(``bot.storage.merged``); when one answer's change fails, each is stored
again on its own, so only that answer fails.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    String,
    Table,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.types import JSON

from bot.dialogue.router import Write
from bot.line.events import InboundEvent
from bot.pipeline import answer_statement
from bot.storage.daily import DELIVERY, DailyCount, add, local_day
from bot.storage.db import Assessment, Database, DeadLetter, EventLog, Handoff, User, utcnow
from bot.storage.merged import run_together

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
#: What a group commit reports: None when every item committed, else each item's
#: exception (None for an item that committed).
Outcomes = Sequence[BaseException | None] | None
#: Most rows one group commit marks done, and the longest one may take.
MAX_GROUP = 500
COMMIT_SECONDS = 10.0
#: PostgreSQL: the longest an answer's "done" mark waits for the next event's recording to
#: carry it (``EventLogStore._record_alone``, or ``_record_together`` under load) before it
#: is committed on its own. At 50 events/s per worker nine in ten ride along; the chat's
#: next event waits at most this long.
DONE_LINGER_SECONDS = 0.05


class AlreadyDecided(RuntimeError):
    """Another try of this event stored its answer first (its worker lost the chat's lock
    while still working): this try's answer and writes are dropped; the retry resends the
    stored one."""


class GroupCommit(Generic[T]):
    """Runs ``together`` on batches of items: an item added while a commit is under way waits
    for the next one, which carries every item that arrived meanwhile. One transaction per
    event when the worker is idle, far fewer under load, and no added delay when idle.
    ``add`` returns after the commit that carried its item, or raises what it raised (all
    of the batch's items) or what ``together`` reported for that item alone.

    With ``alone``, a batch of one runs ``alone``, and a batch whose ``together`` failed runs
    ``alone`` for each item, so one bad item (a write that breaks a constraint) fails only
    its own event, not every event that happened to share its transaction. Each call gets
    ``COMMIT_SECONDS``: a hung connection fails its items (each event retries) instead of
    holding every later one behind it; after a time-out nothing is tried one by one.

    ``drop_cancelled``: an item whose caller gave up (its ``add`` was cancelled, e.g. by the
    handler time-out) before its batch began is left out, so nothing is stored for a try
    that no longer runs (the retry decides afresh).

    ``linger``: a batch that starts while nothing else is committing waits this long first,
    and another statement may meanwhile carry its items (``take``); below full load the
    items then cost no transaction of their own. An item added late in that wait gets
    about ``linger`` too (``_linger``)."""

    def __init__(
        self,
        together: Callable[[list[T]], Awaitable[Outcomes]],
        alone: Callable[[T], Awaitable[None]] | None = None,
        *,
        drop_cancelled: bool = False,
        linger: float = 0.0,
    ) -> None:
        self.together = together
        self.alone = alone
        self.drop_cancelled = drop_cancelled
        self.linger = linger
        self._waiting: collections.deque[tuple[T, asyncio.Future[None]]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        #: When a statement last carried items (``time.monotonic``).
        self._taken_at = -math.inf

    def take(
        self, limit: int = MAX_GROUP, may: Callable[[T], bool] | None = None
    ) -> list[tuple[T, asyncio.Future[None]]]:
        """Hand up to ``limit`` waiting items (those ``may`` allows) to a statement that
        carries them: its caller settles their futures (``settle``), or gives them back
        (``give_back``) if it fails. The items not allowed keep their place."""
        taken: list[tuple[T, asyncio.Future[None]]] = []
        kept: list[tuple[T, asyncio.Future[None]]] = []
        while self._waiting and len(taken) < limit:
            item, future = self._waiting.popleft()
            if self.drop_cancelled and future.done():
                continue
            (taken if may is None or may(item) else kept).append((item, future))
        self._waiting.extendleft(reversed(kept))
        if taken:
            self._taken_at = time.monotonic()
        return taken

    def give_back(self, items: list[tuple[T, asyncio.Future[None]]]) -> None:
        """Items a failed carrier took: they commit on their own, as if never taken (the
        carrier's failure may be its own, not theirs)."""
        if not items:
            return
        self._waiting.extendleft(reversed(items))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # shutting down: the rows stay as they were; a retry finishes them
            return
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._flush(linger=False))

    @staticmethod
    def settle(items: list[tuple[T, asyncio.Future[None]]]) -> None:
        """The carrier committed: the items it took are done."""
        for _, future in items:
            if not future.done():
                future.set_result(None)

    async def add(self, item: T) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append((item, future))
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._flush())
        await future

    async def _linger(self) -> None:
        """Wait ``linger`` for another statement to carry the waiting items. While
        statements carry some, wait on until what is left has waited about ``linger`` since
        the last one (at most ``3 × linger`` in all): a carrier takes everything waiting, so
        what is left came after it. Waiting only from the first item cost one answer in
        eleven a transaction of its own at 200 events/s (``end_to_end.py``)."""
        start = time.monotonic()
        await asyncio.sleep(self.linger)
        while self._waiting:
            now = time.monotonic()
            left = min(
                self.linger - (now - max(start, self._taken_at)),
                start + 3 * self.linger - now,
            )
            if left <= 0:
                return
            await asyncio.sleep(left)

    async def _flush(self, linger: bool = True) -> None:
        if linger and self.linger > 0:
            await self._linger()
        while self._waiting:
            batch: list[tuple[T, asyncio.Future[None]]] = []
            while self._waiting and len(batch) < MAX_GROUP:
                item, future = self._waiting.popleft()
                if not (self.drop_cancelled and future.done()):
                    batch.append((item, future))
            if not batch:
                continue
            try:
                outcomes = await self._commit([item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for index, (_, future) in enumerate(batch):
                failed = outcomes[index] if outcomes is not None else None
                if future.done():
                    continue
                if failed is None:
                    future.set_result(None)
                else:
                    future.set_exception(failed)

    async def _commit(self, items: list[T]) -> Outcomes:
        if self.alone is None:
            return await asyncio.wait_for(self.together(items), COMMIT_SECONDS)
        if len(items) > 1:
            try:
                return await asyncio.wait_for(self.together(items), COMMIT_SECONDS)
            except TimeoutError:
                raise  # the database hangs: one by one would only hang longer
            except Exception as exc:
                log.warning(
                    "group commit failed; each item on its own",
                    # the type only: the statement's parameters hold users' ids and texts
                    extra={"count": len(items), "error": type(exc).__name__},
                )
        outcomes: list[BaseException | None] = []
        hung: TimeoutError | None = None
        for item in items:
            if hung is not None:  # the database stopped answering: the rest fail as well
                outcomes.append(hung)
                continue
            try:
                await asyncio.wait_for(self.alone(item), COMMIT_SECONDS)
                outcomes.append(None)
            except TimeoutError as exc:
                hung = exc
                outcomes.append(exc)
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


_LOG: Table = EventLog.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_DEAD: Table = DeadLetter.__table__  # type: ignore[assignment]
_HANDOFFS: Table = Handoff.__table__  # type: ignore[assignment]
_DAILY: Table = DailyCount.__table__  # type: ignore[assignment]
_ASSESSMENTS: Table = Assessment.__table__  # type: ignore[assignment]
#: The columns of the latest assessment an event's record brings back (``Recorded.assessments``).
_ASSESSMENT_COLUMNS = ("id", "answers", "stage", "topics", "province_code", "created_at")
FINAL = ("done", "standby", "held")


@dataclass(frozen=True)
class Decided:
    """An answer to store before it is sent (``EventLogStore.sending``)."""

    event_id: str
    outbox: dict[str, Any]
    delivery: str | None
    retry_key: str
    writes: Sequence[Write]


@dataclass
class _Recording:
    """An attempt to record (``EventLogStore.record``), and what was found."""

    event: InboundEvent
    attempts: int
    result: Recorded | None = None


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
    #: The one-to-one chat's latest finished assessment (None: never assessed) by user id,
    #: when this recording read it: a turn then needs no read of its own (``Turn.assessments``).
    assessments: dict[str, Assessment | None] = field(default_factory=dict)


#: The columns an event's row is recorded with (``_event_row``, less ``handoff_now``).
_EVENT_COLUMNS = (
    "webhook_event_id",
    "chat_id",
    "event_type",
    "event_ts",
    "status",
    "attempts",
    "created_at",
    "updated_at",
)


def _event_row(item: _Recording, now: dt.datetime) -> dict[str, Any]:
    """An attempt's event-log values (and the time the hand-off check compares with)."""
    event = item.event
    return {
        "webhook_event_id": event.id,
        "chat_id": event.chat_id,
        "event_type": event.type[:32],
        "event_ts": event.timestamp_ms,
        "status": "standby" if event.mode == "standby" else "processing",
        "attempts": item.attempts,
        "created_at": now,
        "updated_at": now,
        "handoff_now": now,
    }


def _riding(riders: Sequence[tuple[tuple[str, str], Any]], now: dt.datetime) -> dict[str, Any]:
    """The parameters of the CTEs marking ``riders`` (event id, way) done and counting them
    (``EventLogStore._marked_done``)."""
    done = [{"event_id": event_id, "delivery": way} for (event_id, way), _ in riders]
    return {
        "done": json.dumps(done, ensure_ascii=False),
        "e_updated_at": now,
        "day": local_day(now),
    }


def _latest_assessment_json() -> Any:
    """The returned row's chat's latest finished assessment as one JSON object, or NULL
    (PostgreSQL): a handler about courses, a subscription or staff would otherwise read it in
    a statement and a transaction of its own (one event in five in ``end_to_end.py``)."""
    a = _ASSESSMENTS.c
    latest = (
        select(func.json_build_object(*(x for n in _ASSESSMENT_COLUMNS for x in (n, a[n]))))
        # the returned row's chat, by column name (see ``handed_off``)
        .where(a.line_user_id == literal_column(f"{_LOG.name}.chat_id"))
        .order_by(a.created_at.desc(), a.id.desc())
        .limit(1)
    )
    return latest.scalar_subquery().label("latest_assessment")


def _assessment_of(chat_id: str, found: Any) -> Assessment | None:
    """``_latest_assessment_json``'s object as a (detached) ``Assessment``."""
    if found is None:
        return None
    created = dt.datetime.fromisoformat(found["created_at"])
    values = {n: found[n] for n in _ASSESSMENT_COLUMNS if n != "created_at"}
    return Assessment(line_user_id=chat_id, created_at=created, **values)


def _visitor(event: InboundEvent) -> str | None:
    """The user whose visit an event records: a user's own event, not a standby one."""
    if event.source_type == "user" and event.mode != "standby":
        return event.user_id
    return None


class EventLogStore:
    """Idempotency records for events, on the bot's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._postgres = db.engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert
        # Single-statement writes need no BEGIN/COMMIT round trips of their own.
        self._autocommit = db.autocommit
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
                    # (not IN: an expanding list cannot go in a many-row statement)
                    (or_(_LOG.c.status == "dead", _LOG.c.status == "failed"), "processing"),
                    else_=_LOG.c.status,
                ),
            },
        ).returning(
            _LOG.c.webhook_event_id,
            _LOG.c.status,
            _LOG.c.delivery,
            _LOG.c.outbox,
            # Is the chat with staff right now? Asked here rather than in a statement of its own.
            select(_HANDOFFS.c.line_user_id)
            .where(
                # the returned row's chat (a column name: SQLAlchemy would add the table to
                # the subquery's FROM instead of correlating it)
                _HANDOFFS.c.line_user_id == literal_column(f"{_LOG.name}.chat_id"),
                _HANDOFFS.c.until > bindparam("handoff_now", type_=_HANDOFFS.c.until.type),
            )
            .exists()
            .label("handed_off"),
        )
        # (Rows come back in any order and are matched by id: asking SQLAlchemy to sort them
        # makes it send an upsert one row at a time.)
        # PostgreSQL, one event recorded alone (the usual case below full load): its row,
        # its user's visit and the hand-off check in one autocommitted statement (see
        # ``_record_alone``).
        alone: tuple[Any, Any] = (None, None)
        carrying: tuple[Any, Any] = (None, None)
        self._mark_riders: Any = None
        if self._postgres:
            alone = self._recording_alone()
            marked = self._marked_done()
            carrying = (alone[0].add_cte(*marked), alone[1].add_cte(*marked))
            # the marks alone, for a transaction recording several events
            self._mark_riders = select(literal(1)).add_cte(*marked)
        self._record_alone_stmt, self._record_visit_stmt = alone
        # The same, also marking done the answers finished meanwhile (see ``_record_alone``).
        self._record_carrying, self._record_visit_carrying = carrying
        users = self._insert(_USERS)
        self._visit = users.on_conflict_do_update(
            index_elements=[_USERS.c.line_user_id],
            set_={"last_seen_at": users.excluded.last_seen_at},
        ).returning(_USERS.c.line_user_id, _USERS.c.id)
        self._follow = users.on_conflict_do_update(
            index_elements=[_USERS.c.line_user_id],
            set_={
                "last_seen_at": users.excluded.last_seen_at,
                "following": users.excluded.following,
                "follow_changed_at": users.excluded.follow_changed_at,
            },
        ).returning(_USERS.c.line_user_id, _USERS.c.id)
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
        # Storing several answers at once: claim the rows still being worked on (those
        # another try has not decided), then give each its outbox.
        self._claim = (
            update(_LOG)
            .where(
                _LOG.c.webhook_event_id.in_(bindparam("ids", expanding=True)),
                _LOG.c.status == "processing",
            )
            .values(status="sending", updated_at=bindparam("now"))
            .returning(_LOG.c.webhook_event_id)
        )
        self._outbox = (
            update(_LOG)
            .where(_LOG.c.webhook_event_id == bindparam("event_id"))
            .values(
                outbox=bindparam("outbox"),
                delivery=bindparam("delivery"),
                retry_key=bindparam("retry_key"),
            )
        )
        self._recorded: GroupCommit[_Recording] = GroupCommit(
            self._record_together, self._record_one, drop_cancelled=True
        )
        self._decided: GroupCommit[Decided] = GroupCommit(
            self._store_together, self._store_one, drop_cancelled=True
        )
        self._delivery = (
            update(_LOG)
            .where(where)
            .values(delivery=bindparam("delivery"), updated_at=bindparam("now"))
        )
        self._hold = (
            update(_LOG)
            .where(where, _LOG.c.status == "sending")
            .values(
                status="held",
                delivery="held",
                updated_at=bindparam("now"),
                held_at=bindparam("now"),
            )
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
        self._done: GroupCommit[tuple[str, str]] = GroupCommit(
            self._mark_sent, linger=DONE_LINGER_SECONDS if self._postgres else 0.0
        )
        # PostgreSQL: the rows leave ``sending`` and the delivery counter counts those that
        # did, in one autocommitted statement (the UPDATE as a CTE feeding the counter's
        # upsert): one round trip instead of BEGIN, UPDATE, upsert, COMMIT. Each such round
        # trip costs the worker ~0.1 ms of CPU (``benchmarks/event_log_bench.py``). SQLite
        # has no data-modifying CTEs and keeps the transaction.
        self._finish_counted = self._sent_and_counted() if self._postgres else None
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

    def _recording_alone(self) -> tuple[Any, Any]:
        """``_record`` for one event with bound values, alone and with the visit's upsert
        as a CTE whose user id the statement returns (PostgreSQL only).

        Its parameters are named ``e_<column>``: SQLAlchemy sets every column named like a
        parameter in a DML statement, the CTE marking answers done (``_marked_done``) too."""
        alone = self._record.values({name: bindparam("e_" + name) for name in _EVENT_COLUMNS})
        users = postgresql.insert(_USERS).values(
            line_user_id=bindparam("visitor"),
            following=True,
            first_seen_at=bindparam("e_updated_at"),
            last_seen_at=bindparam("e_updated_at"),
        )
        visit = (
            users.on_conflict_do_update(
                index_elements=[_USERS.c.line_user_id],
                set_={"last_seen_at": users.excluded.last_seen_at},
            )
            .returning(_USERS.c.id)
            .cte("visit")
        )
        alone = alone.returning(_latest_assessment_json())
        with_visit = alone.add_cte(visit).returning(
            select(visit.c.id).scalar_subquery().label("user_pk")
        )
        return alone, with_visit

    def _marked_done(self) -> tuple[Any, Any]:
        """CTEs that mark answers done and count them per way (``:done``, a JSON list of
        ``{event_id, delivery}``), to ride in another autocommitted statement (PostgreSQL).
        The counters are locked in key order, like ``_mark_sent``'s."""
        rows = (
            func.json_to_recordset(cast(bindparam("done", type_=String), JSON))
            .table_valued(column("event_id", String), column("delivery", String))
            .render_derived(name="d", with_types=True)
        )
        marked = (
            update(_LOG)
            .where(_LOG.c.webhook_event_id == rows.c.event_id, _LOG.c.status == "sending")
            .values(
                status="done",
                outbox=None,
                delivery=rows.c.delivery,
                updated_at=bindparam("e_updated_at"),
            )
            .returning(_LOG.c.delivery)
            .cte("marked")
        )
        counted = (
            select(
                bindparam("day", type_=_DAILY.c.day.type),
                literal(DELIVERY, type_=String),
                marked.c.delivery,
                func.count(),
            )
            .select_from(marked)
            .group_by(marked.c.delivery)
            .order_by(marked.c.delivery)
        )
        ins = postgresql.insert(_DAILY).from_select(
            [_DAILY.c.day, _DAILY.c.kind, _DAILY.c.key, _DAILY.c.count], counted
        )
        upsert = ins.on_conflict_do_update(
            index_elements=[_DAILY.c.day, _DAILY.c.kind, _DAILY.c.key],
            set_={"count": _DAILY.c.count + ins.excluded.count},
        )
        return marked, upsert.cte("counted")

    async def _record_alone(self, item: _Recording) -> bool:
        """Record one event in one round trip when it is an ordinary one (no follow or
        unfollow): True when done, False to take the general way.

        Each round trip (BEGIN, a statement, COMMIT) costs a worker ~0.1–0.2 ms of CPU
        (``benchmarks/event_log_bench.py``); this is 1 where the general way takes 4. The
        statement also carries the "done" marks of answers that finished meanwhile
        (``DONE_LINGER_SECONDS``): below full load those then take no transaction of their
        own. If it fails they are handed back (they commit on their own) and the event is
        recorded again without them, so a bad mark never fails another event. An event's
        own mark never rides in its recording: PostgreSQL would make only one of two changes
        to one row in a statement."""
        event = item.event
        if self._record_alone_stmt is None or event.type in ("follow", "unfollow"):
            return False
        visitor = _visitor(event)
        now = utcnow()
        params = {
            ("e_" + k if k in _EVENT_COLUMNS else k): v for k, v in _event_row(item, now).items()
        }
        if visitor:
            params["visitor"] = visitor
        riders = self._done.take(may=lambda mark: mark[0] != event.id)
        row = await self._carrying(
            riders, lambda marks: self._record_row(params, bool(visitor), marks, now)
        )
        user_pk = row.user_pk if visitor else None
        handed = bool(row.handed_off) and event.type in ("message", "postback")
        known = (
            {event.chat_id: _assessment_of(event.chat_id, row.latest_assessment)}
            if event.one_to_one
            else {}
        )
        item.result = Recorded(row.status, row.delivery, row.outbox, user_pk, handed, known)
        return True

    async def _carrying(
        self,
        riders: list[tuple[tuple[str, str], asyncio.Future[None]]],
        record: Callable[[Sequence[Any]], Awaitable[R]],
    ) -> R:
        """``record`` with ``riders``' done marks: they are settled when it commits. If it
        fails they are handed back (they commit on their own) and it runs again without them,
        so a bad mark never fails an event."""
        try:
            result = await record(riders)
        except Exception:
            if not riders:
                raise
            self._done.give_back(riders)
            riders = []
            result = await record(riders)
        except BaseException:
            self._done.give_back(riders)
            raise
        self._done.settle(riders)
        return result

    async def _record_row(
        self, params: dict[str, Any], visit: bool, riders: Sequence[Any], now: dt.datetime
    ) -> Any:
        """``_record_alone``'s statement, carrying ``riders``' marks if any: the event's row."""
        if riders:
            params = {**params, **_riding(riders, now)}
            stmt = self._record_visit_carrying if visit else self._record_carrying
        else:
            stmt = self._record_visit_stmt if visit else self._record_alone_stmt
        async with self._autocommit.connect() as conn:
            return (await conn.execute(stmt, params)).one()

    def _sent_and_counted(self) -> Any:
        """``_finish_sent`` as a CTE whose rows the day's delivery counter adds up."""
        sent = self._finish_sent.returning(_LOG.c.webhook_event_id).cte("sent")
        counted = (
            select(
                bindparam("day", type_=_DAILY.c.day.type),
                literal(DELIVERY, type_=String),
                bindparam("delivery", type_=String),
                func.count(),
            )
            .select_from(sent)
            .having(func.count() > 0)
        )
        ins = postgresql.insert(_DAILY).from_select(
            [_DAILY.c.day, _DAILY.c.kind, _DAILY.c.key, _DAILY.c.count], counted
        )
        return ins.on_conflict_do_update(
            index_elements=[_DAILY.c.day, _DAILY.c.kind, _DAILY.c.key],
            set_={"count": _DAILY.c.count + ins.excluded.count},
        )

    async def record(self, event: InboundEvent, attempts: int) -> Recorded:
        """Record this attempt (and the user's visit): one transaction, shared with the
        events this worker took while the previous one committed."""
        recording = _Recording(event, attempts)
        await self._recorded.add(recording)
        assert recording.result is not None
        return recording.result

    async def _record_one(self, item: _Recording) -> None:
        if not await self._record_alone(item):
            await self._record_together([item])

    async def _record_together(self, batch: list[_Recording]) -> Outcomes:
        """Upsert the events' rows, then their users' rows, in one transaction: one
        statement each, however many events."""
        if len({item.event.id for item in batch}) < len(batch):
            raise ValueError("an event twice in one batch")  # each is recorded on its own
        now = utcnow()
        events = [_event_row(item, now) for item in batch]
        visits: dict[str, dict[str, Any]] = {}
        follows: dict[str, dict[str, Any]] = {}
        for item in batch:
            event = item.event
            visitor = _visitor(event)
            if visitor:
                follow = event.type in ("follow", "unfollow")
                (follows if follow else visits)[visitor] = {
                    "line_user_id": visitor,
                    "following": event.type != "unfollow",
                    "follow_changed_at": now if follow else None,
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
        if visits.keys() & follows.keys():
            raise ValueError("a user twice in one batch")  # each is recorded on its own
        # Under load the done marks ride here (PostgreSQL), in this transaction, instead of
        # waiting out ``DONE_LINGER_SECONDS`` for an event recorded alone (as there: never
        # an event's own mark; on a failure the marks go back and the events go again).
        ids = {item.event.id for item in batch}
        riders = (
            self._done.take(may=lambda mark: mark[0] not in ids)
            if self._mark_riders is not None
            else []
        )
        recording = (events, list(visits.values()), list(follows.values()), now)
        rows, user_pks = await self._carrying(
            riders, lambda marks: self._record_rows(*recording, marks)
        )
        for item in batch:
            event = item.event
            row = rows[event.id]
            handed = bool(row.handed_off) and event.type in ("message", "postback")
            user_pk = user_pks.get(event.user_id or "") if event.source_type == "user" else None
            item.result = Recorded(row.status, row.delivery, row.outbox, user_pk, handed)
        return None

    async def _record_rows(
        self,
        events: list[dict[str, Any]],
        visits: list[dict[str, Any]],
        follows: list[dict[str, Any]],
        now: dt.datetime,
        riders: Sequence[Any],
    ) -> tuple[dict[str, Any], dict[str, int]]:
        """``_record_together``'s transaction: the events' rows by id and their users' ids,
        carrying ``riders``' marks if any."""
        user_pks: dict[str, int] = {}
        async with self.db.engine.begin() as conn:
            found_rows = await conn.execute(self._record, events)
            rows = {row.webhook_event_id: row for row in found_rows}
            for stmt, users in ((self._visit, visits), (self._follow, follows)):
                if users:
                    found = await conn.execute(stmt, users)
                    user_pks.update({row[0]: row[1] for row in found})
            if riders:
                await conn.execute(self._mark_riders, _riding(riders, now))
        return rows, user_pks

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
            await run_together(s, [writes])
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
        handler's ``writes`` in the same transaction (shared with the answers decided while
        the previous one committed). Raises ``AlreadyDecided`` when another try stored its
        answer first."""
        await self._decided.add(Decided(event_id, outbox, delivery, key, writes))

    async def _store_one(self, answer: Decided) -> None:
        if self._postgres:
            fused = await self._store_fused([answer])
            if fused is not None:
                if fused[0] is not None:
                    raise fused[0]
                return
        changed = await self._run(
            self._sending,
            answer.writes,
            event_id=answer.event_id,
            outbox=answer.outbox,
            delivery=answer.delivery,
            retry_key=answer.retry_key,
        )
        if not changed:
            raise AlreadyDecided(answer.event_id)

    async def _store_fused(self, batch: list[Decided]) -> list[BaseException | None] | None:
        """Store answers whose writes only add rows in one autocommitted statement
        (``answer_statement``, PostgreSQL): each answer's outcome, or None to take the
        general way."""
        values = answer_statement.params(batch)
        if values is None:
            return None
        try:
            async with self._autocommit.connect() as conn:
                rows = await conn.execute(answer_statement.STATEMENT, {**values, "now": utcnow()})
                stored = {row.event_id for row in rows}
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                raise  # the database, not the writes (a lost connection, a deadlock, a time-out)
            # A write the database refused (nothing was stored: one statement): the general
            # way, where a write that may fail without costing the answer (an unanswered
            # text) has a savepoint of its own, and any other fails only its own answer.
            log.warning("answers stored the general way", extra={"error": type(exc).__name__})
            return None
        return [None if a.event_id in stored else AlreadyDecided(a.event_id) for a in batch]

    async def _store_together(self, batch: list[Decided]) -> Outcomes:
        """Several answers at once: on PostgreSQL, when their writes only add rows, one
        statement (``answer_statement``); otherwise one transaction of two event-log
        statements, then every answer's writes (``run_together``: one statement per merged
        kind)."""
        if len({a.event_id for a in batch}) < len(batch):
            # Two tries of one event (a lost lock): one by one, the row's status check
            # refuses the later one.
            raise ValueError("an event twice in one batch")
        if self._postgres:
            fused = await self._store_fused(batch)
            if fused is not None:
                return fused
        async with self.db.session() as s, s.begin():
            claimed = await s.execute(
                self._claim, {"ids": [a.event_id for a in batch], "now": utcnow()}
            )
            mine = {row[0] for row in claimed}
            stored = [a for a in batch if a.event_id in mine]
            if stored:
                await s.execute(
                    self._outbox,
                    [
                        {
                            "event_id": a.event_id,
                            "outbox": a.outbox,
                            "delivery": a.delivery,
                            "retry_key": a.retry_key,
                        }
                        for a in stored
                    ],
                )
                await run_together(s, [a.writes for a in stored])
        return [None if a.event_id in mine else AlreadyDecided(a.event_id) for a in batch]

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

    async def _mark_sent(self, batch: list[tuple[str, str]]) -> Outcomes:
        """One transaction for every answer that finished while the previous one committed:
        each row leaves ``sending`` once, and only rows that did are counted."""
        now, day = utcnow(), local_day()
        by_way: dict[str, list[str]] = {}
        for event_id, delivery in batch:
            by_way.setdefault(delivery, []).append(event_id)
        if self._finish_counted is not None:
            # One statement per way, each committed on its own: a failure fails only the
            # answers of its own statement (the others are done, and must not be retried
            # into a dead letter and an apology for an answer the user has).
            failed: dict[str, BaseException] = {}
            async with self._autocommit.connect() as conn:
                for delivery, ids in sorted(by_way.items()):
                    try:
                        await conn.execute(
                            self._finish_counted,
                            {"ids": ids, "delivery": delivery, "now": now, "day": day},
                        )
                    except Exception as exc:
                        failed[delivery] = exc
                        if len(by_way) == 1:
                            raise
                        await conn.rollback()  # the connection is usable for the next way
            return [failed.get(delivery) for _, delivery in batch] if failed else None
        async with self.db.session() as s, s.begin():
            for delivery, ids in sorted(by_way.items()):
                result = await s.execute(
                    self._finish_sent, {"ids": ids, "delivery": delivery, "now": now}
                )
                sent = int(getattr(result, "rowcount", 0) or 0)
                if sent:
                    await add(s, day, DELIVERY, delivery, sent)
        return None

    async def hold(self, event_id: str) -> None:
        """Keep the decided answer for its "see the result" tap (reply key
        ``help.button_result``; ``bot.pipeline.held``)."""
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
