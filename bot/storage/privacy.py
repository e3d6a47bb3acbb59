"""What the bot keeps about one LINE user: read it back, and erase it (PDPA).

Both the chat (``my_profile``, ``delete_my_data``) and, later, an operator's command
line use these functions, so there is one definition of "everything we keep about
a user". It is found from the schema rather than from a hand-kept list: every table
in ``bot.storage.db.Base.metadata`` with a user column (``line_user_id``, ``chat_id``,
``user_id``), plus any other text or JSON value that mentions the id (a dead
letter's payload, a push batch's recipient list). A table added later is covered
without anyone remembering to come back here.

Erasure keeps exactly one thing working: the event being handled when the user
asks. Its ``event_log`` row is what makes that event "answered exactly once", so
the row stays with its ``chat_id`` replaced by :data:`ANONYMOUS` (so do the user's
older rows, which guard against LINE redelivering them); its queue entry and the
queue's per-chat lock are left for the queue to remove when the turn ends.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import redis.asyncio as aioredis
from sqlalchemy import JSON, String, Table, Text, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.insights.capture import mark_erased_days
from bot.insights.records import InsightEvent, InsightRollup
from bot.storage import handoff_messages  # noqa: F401  (its table joins Base.metadata)
from bot.storage.db import Assessment, Base, Database, Subscription
from bot.storage.queries import latest_assessment

#: Columns that name the user a row belongs to.
USER_COLUMNS = ("line_user_id", "chat_id", "user_id")
#: What replaces the user id where a row must stay (the event log's exactly-once record).
ANONYMOUS = "deleted"
#: Tables whose rows are kept, anonymised, instead of deleted.
ANONYMISE_TABLES = frozenset({"event_log"})
#: Tables whose text columns hold only codes (kinds, provinces, topics), never a user id nor
#: anyone's words: erasing skips searching their text for the id, which would scan the
#: largest tables in full (rows are still deleted by their user column).
CODES_ONLY = frozenset({InsightEvent.__tablename__, InsightRollup.__tablename__})
#: The queue table, whose row for the event being handled must stay until the turn ends.
QUEUE_TABLE = "local_queue"
#: Redis keys of the queue (see ``bot.queue.redis_queue``): the chat's pending event ids
#: (``{prefix}:q:{chat}``), each event (``{prefix}:ev:{id}``) and the chat's lock.
_QUEUE_SET = "q"
_QUEUE_EVENT = "ev"
_QUEUE_LOCK = "lock"


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """The parts of a user's data the chat shows back to them."""

    latest_assessment: Assessment | None
    assessments: int
    subscription: Subscription | None

    @property
    def empty(self) -> bool:
        return self.latest_assessment is None and self.subscription is None


async def load_profile(db: Database, user_id: str) -> Profile:
    """The latest assessment, how many there are, and the subscription."""
    async with db.session() as s:
        latest = await latest_assessment(s, user_id)
        count = await s.scalar(
            select(func.count()).select_from(Assessment).where(Assessment.line_user_id == user_id)
        )
        subscription = await s.get(Subscription, user_id)
    return Profile(latest, int(count or 0), subscription)


def _user_columns(table: Table) -> list[Any]:
    return [c for c in table.columns if c.name in USER_COLUMNS]


def _text_columns(table: Table) -> list[Any]:
    """Columns that may mention a user id in free text or JSON (not the user columns)."""
    return [
        c
        for c in table.columns
        if c.name not in USER_COLUMNS and isinstance(c.type, String | Text | JSON)
    ]


def _mentions(table: Table, user_id: str) -> Any:
    """SQL condition: the row names the user in a user column or inside text/JSON."""
    conditions = [c == user_id for c in _user_columns(table)]
    conditions += [cast(c, String).contains(user_id, autoescape=True) for c in _text_columns(table)]
    return or_(*conditions) if conditions else None


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


async def export_user_data(db: Database, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row that names the user, per table, as JSON-ready dicts (a PDPA access request)."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with db.session() as s:
        for table in Base.metadata.sorted_tables:
            where = _mentions(table, user_id)
            if where is None:
                continue
            rows = (await s.execute(select(table).where(where))).mappings().all()
            if rows:
                out[table.name] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return out


# -- erasing ------------------------------------------------------------------------------


@dataclass
class Erasure:
    """What an erasure removed: rows per table, and Redis keys."""

    #: Table name -> rows deleted (for the event log: rows anonymised).
    rows: dict[str, int] = field(default_factory=dict)
    #: Rows elsewhere that mentioned the user and had the id scrubbed out.
    scrubbed: int = 0
    #: Redis keys deleted (dialogue state and anything else keyed by the user).
    redis_keys: int = 0
    #: Queued events of the user that had not been handled yet and were dropped.
    queued: int = 0

    def count(self, *tables: str) -> int:
        return sum(self.rows.get(t, 0) for t in tables)

    def add(self, other: Erasure) -> None:
        """Count what another part of the same erasure removed."""
        for table, n in other.rows.items():
            self.rows[table] = self.rows.get(table, 0) + n
        self.scrubbed += other.scrubbed
        self.redis_keys += other.redis_keys
        self.queued += other.queued

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + self.scrubbed + self.redis_keys + self.queued


def scrub(value: Any, user_id: str) -> Any:
    """``value`` without the user id: list items equal to it dropped, strings masked."""
    if isinstance(value, str):
        return value.replace(user_id, ANONYMOUS)
    if isinstance(value, list):
        return [scrub(v, user_id) for v in value if v != user_id]
    if isinstance(value, dict):
        return {
            scrub(k, user_id) if isinstance(k, str) else k: scrub(v, user_id)
            for k, v in value.items()
        }
    return value


class Where(TypedDict, total=False):
    """Where else than the database a user's data is kept: the Redis of a shared deployment
    (none in embedded mode) under its key prefix, and the event being handled (if any)."""

    redis: aioredis.Redis | None
    prefix: str
    handling_event: str | None


async def erase_user(db: Database, user_id: str, **where: Unpack[Where]) -> Erasure:
    """Delete everything kept about ``user_id``; ``handling_event`` is the event being handled.

    One database transaction (all or nothing), then Redis. The dialogue store in memory
    (embedded mode) is the caller's to clear. The chat erases in two parts instead: the rows
    with its answer (``erase_rows`` as the turn's write), the keys when the answer is sent.
    """
    return await _erase(db, user_id, dry_run=False, **where)


async def count_erasure(db: Database, user_id: str, **where: Unpack[Where]) -> Erasure:
    """What ``erase_user`` would remove now, removing nothing: the erasure is run in a
    transaction that is rolled back (the same code, so the counts cannot disagree), and
    the Redis keys are only counted. The chat tells the user these before it erases."""
    return await _erase(db, user_id, dry_run=True, **where)


async def _erase(
    db: Database,
    user_id: str,
    *,
    dry_run: bool,
    redis: aioredis.Redis | None = None,
    prefix: str = "bot",
    handling_event: str | None = None,
) -> Erasure:
    _check(user_id)
    async with db.session() as s:
        if dry_run:
            try:
                erasure = await erase_rows(s, user_id, handling_event)
            finally:
                await s.rollback()
        else:
            async with s.begin():
                erasure = await erase_rows(s, user_id, handling_event)
    if redis is not None:
        erasure.add(await erase_keys(redis, prefix, user_id, handling_event, dry_run=dry_run))
    return erasure


def _check(user_id: str) -> None:
    if not user_id or user_id == ANONYMOUS:
        raise ValueError("erasing needs a real user id")


async def erase_rows(s: AsyncSession, user_id: str, handling_event: str | None) -> Erasure:
    """Every row naming the user, deleted (or anonymised, or scrubbed) in the caller's
    transaction; the event ``handling_event``'s queue row stays for the queue to remove.
    Running it twice is harmless: the second time finds nothing."""
    _check(user_id)
    erasure = Erasure()
    # First, while their moments are still there: the days the next rollup recomputes.
    await mark_erased_days(s, user_id)
    for table in Base.metadata.sorted_tables:
        await _erase_table(s, table, user_id, handling_event, erasure)
    return erasure


async def erase_keys(
    redis: aioredis.Redis,
    prefix: str,
    user_id: str,
    handling_event: str | None,
    *,
    dry_run: bool = False,
) -> Erasure:
    """Every Redis key naming the user, deleted (``dry_run``: counted), except what the queue
    needs for the event being handled. Safe to run again (a retried delivery does)."""
    _check(user_id)
    erasure = Erasure()
    await _erase_redis(redis, prefix, user_id, handling_event, erasure, dry_run)
    return erasure


async def _erase_table(
    s: AsyncSession, table: Table, user_id: str, handling_event: str | None, erasure: Erasure
) -> None:
    owned = _user_columns(table)
    if owned:
        mine = or_(*(c == user_id for c in owned))
        if table.name in ANONYMISE_TABLES:
            if "outbox" in table.c:  # a late answer held for its tap keeps texts: drop them
                await s.execute(
                    update(table)
                    .where(mine, table.c.status == "held")
                    .values(outbox=None, status="done", held_at=None)
                )
            stmt: Any = update(table).where(mine).values({c.name: ANONYMOUS for c in owned})
        elif table.name == QUEUE_TABLE:
            keep = table.c.webhook_event_id != handling_event if handling_event else None
            stmt = delete(table).where(mine, *(() if keep is None else (keep,)))
        else:
            stmt = delete(table).where(mine)
        result = await s.execute(stmt)
        gone = int(getattr(result, "rowcount", 0) or 0)
        if gone:
            if table.name == QUEUE_TABLE:
                erasure.queued += gone
            else:
                erasure.rows[table.name] = erasure.rows.get(table.name, 0) + gone
    # The id inside other values: payloads of group events, recipient lists, error texts.
    text_columns = _text_columns(table)
    if not text_columns or table.name in CODES_ONLY:
        return
    keys = list(table.primary_key.columns)
    mentions = or_(*(cast(c, String).contains(user_id, autoescape=True) for c in text_columns))
    rows = (await s.execute(select(*keys, *text_columns).where(mentions))).mappings().all()
    for row in rows:
        if (
            table.name == QUEUE_TABLE
            and handling_event
            and row.get("webhook_event_id") == (handling_event)
        ):
            continue
        changes = {}
        for column in text_columns:
            value = row[column.name]
            if value is None:
                continue
            cleaned = scrub(value, user_id)
            if cleaned != value:
                changes[column.name] = cleaned
        if changes:
            where = [k == row[k.name] for k in keys]
            await s.execute(update(table).where(*where).values(changes))
            erasure.scrubbed += 1


def _glob_escape(text: str) -> str:
    """``text`` as a literal inside a Redis SCAN pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


async def _erase_redis(
    redis: aioredis.Redis,
    prefix: str,
    user_id: str,
    handling_event: str | None,
    erasure: Erasure,
    dry_run: bool = False,
) -> None:
    """Delete every key naming the user, except what the queue needs for this turn."""
    queue_set = f"{prefix}:{_QUEUE_SET}:{user_id}"
    lock = f"{prefix}:{_QUEUE_LOCK}:{user_id}"
    pattern = f"{_glob_escape(prefix)}:*{_glob_escape(user_id)}*"
    doomed: list[str] = []
    async for key in redis.scan_iter(match=pattern, count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name == lock:
            continue  # held by the worker handling this turn; it deletes it when done
        if name == queue_set:
            erasure.queued += await _drop_queued(redis, prefix, name, handling_event, dry_run)
            continue
        doomed.append(name)
    if doomed:
        erasure.redis_keys += len(doomed) if dry_run else int(await redis.delete(*doomed))


async def _drop_queued(
    redis: aioredis.Redis,
    prefix: str,
    queue_set: str,
    handling_event: str | None,
    dry_run: bool = False,
) -> int:
    """Drop the chat's queued events other than the one being handled.

    The set itself disappears when the worker removes the handled event from it.
    """
    ids: Iterable[Any] = await redis.zrange(queue_set, 0, -1)
    others = [
        i.decode() if isinstance(i, bytes) else str(i)
        for i in ids
        if (i.decode() if isinstance(i, bytes) else str(i)) != handling_event
    ]
    if not others or dry_run:
        return len(others)
    pipe = redis.pipeline(transaction=True)
    pipe.zrem(queue_set, *others)
    pipe.delete(*(f"{prefix}:{_QUEUE_EVENT}:{i}" for i in others))
    if not handling_event:
        pipe.delete(queue_set)
    await pipe.execute()
    return len(others)


def summary(erasure: Erasure) -> Mapping[str, int]:
    """Counts per kind a person understands (keys match the privacy reply lines)."""
    known = {"users", "assessments", "subscriptions", "handoffs"}
    other_tables = sum(n for t, n in erasure.rows.items() if t not in known)
    return {
        "profile": erasure.count("users"),
        "assessments": erasure.count("assessments"),
        "subscriptions": erasure.count("subscriptions"),
        "handoffs": erasure.count("handoffs"),
        "records": other_tables + erasure.scrubbed + erasure.queued + erasure.redis_keys,
    }


def to_json(data: Mapping[str, Any]) -> str:
    """An export as readable JSON (Thai kept as is)."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)
