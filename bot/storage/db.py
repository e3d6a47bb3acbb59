"""Database models and engine (SQLAlchemy 2, async; SQLite or PostgreSQL).

What outlives a conversation lives here: users (follow state, consent and
first/last seen, nothing more), the event log that makes "never answered
twice" hold even when Redis forgets, dead letters an operator can replay,
and, in the embedded mode without Redis, the durable local event queue.
Schema changes go through Alembic (``bot db upgrade``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    event,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    """Timezone-aware now; stored as UTC."""
    return dt.datetime.now(dt.UTC)


def aware(moment: dt.datetime) -> dt.datetime:
    """A stored time as aware UTC (SQLite hands times back without their zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base shared by all tables (and Alembic's autogenerate)."""


class User(Base):
    """A LINE user who has talked to or followed the bot."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line_user_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    following: Mapped[bool] = mapped_column(Boolean, default=True)
    follow_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    consent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventLog(Base):
    """One row per webhook event a worker has taken: the idempotency record.

    ``status`` moves ``processing`` → ``sending`` (a reply is about to leave,
    with its retry key stored first) → ``done``; or ends as ``standby``,
    ``failed`` (LINE refused the answer permanently) or ``dead``; or waits as ``held``
    (a late answer kept for its ``help.button_result`` tap, ``bot.pipeline.held``).
    """

    __tablename__ = "event_log"

    webhook_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    event_ts: Mapped[int] = mapped_column(BigInteger)
    #: Not indexed, nor is ``updated_at``: a row's three writes then touch no index
    #: (PostgreSQL's heap-only updates; migration 0010).
    status: Mapped[str] = mapped_column(String(16))
    delivery: Mapped[str | None] = mapped_column(String(8))
    retry_key: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    #: The decided answer (messages and dialogue-state change) while it is being sent, so a
    #: retry resends exactly it instead of running the handler twice; cleared when done.
    outbox: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Retention looks rows up by this (never later than ``updated_at``, never updated).
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    #: When the answer was held (``bot.pipeline.held``): its own partial index finds the held
    #: answers to forget after a day without indexing ``status``.
    held_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            "ix_event_log_held_at",
            "held_at",
            postgresql_where=text("held_at IS NOT NULL"),
            sqlite_where=text("held_at IS NOT NULL"),
        ),
    )


class DeadLetter(Base):
    """An event that failed too often; kept (with its payload) for an operator to replay."""

    __tablename__ = "dead_letters"

    webhook_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer)
    died_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LocalQueueItem(Base):
    """The embedded mode's durable queue (no Redis): survives a restart of ``bot serve``."""

    __tablename__ = "local_queue"

    webhook_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), index=True)
    event_ts: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[float] = mapped_column(Float, default=0.0)
    enqueued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SeenEvent(Base):
    """webhookEventIds accepted in the embedded mode, kept for the de-duplication window."""

    __tablename__ = "seen_events"

    webhook_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[float] = mapped_column(Float, index=True)


class Assessment(Base):
    """One finished skills assessment; every one is kept (history), the latest counts."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line_user_id: Mapped[str] = mapped_column(String(64), index=True)
    #: Question id -> chosen option id (or a place code), as defined in assessment.yaml.
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    stage: Mapped[int] = mapped_column(Integer)
    #: Topic ids to learn next, most needed first.
    topics: Mapped[list[str]] = mapped_column(JSON)
    province_code: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Subscription(Base):
    """A user's wish to hear about new courses: topics, provinces (empty = nationwide)."""

    __tablename__ = "subscriptions"

    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    topics: Mapped[list[str]] = mapped_column(JSON)
    provinces: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Stage from the latest assessment when subscribing (None: not assessed).
    stage: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Handoff(Base):
    """A user handed to staff: the bot stays quiet for them until ``until`` or staff end it."""

    __tablename__ = "handoffs"

    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agency: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    until: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class Unanswered(Base):
    """A message the bot could not answer, kept for operators (no user id: PDPA)."""

    __tablename__ = "unanswered"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(String(500))
    best_intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    #: The guide the engine thought closest (an operator may add the text to its examples).
    best_guide: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class GuideStat(Base):
    """How one guide did on one day: shown, offered in "did you mean", 👍 and 👎.

    Counts only, never who (PDPA): feedback is per guide, not per person.
    """

    __tablename__ = "guide_stats"

    guide_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    shown: Mapped[int] = mapped_column(Integer, default=0)
    offered: Mapped[int] = mapped_column(Integer, default=0)
    helpful: Mapped[int] = mapped_column(Integer, default=0)
    unhelpful: Mapped[int] = mapped_column(Integer, default=0)


class NoticeCourse(Base):
    """A course seen in the knowledge, for push notices: announced until ``done_at``."""

    __tablename__ = "notice_courses"

    course_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Every subscriber it matched has had it (or it may no longer be announced).
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class NoticeRun(Base):
    """One notice run (``bot notify`` or the worker's job) and what it did."""

    __tablename__ = "notice_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(16))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: sent, deferred_quiet, deferred_daily, held_quota, failed, calls, courses ...
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class NoticeBatch(Base):
    """One LINE call (multicast or push) of a notice, stored with its retry key *before*
    the call, so a crash and a re-run resend the same key and LINE answers 409."""

    __tablename__ = "notice_batches"

    retry_key: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    #: pending (stored, maybe sent) -> sent | failed
    status: Mapped[str] = mapped_column(String(8), index=True)
    course_ids: Mapped[list[str]] = mapped_column(JSON)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class NoticeDelivery(Base):
    """A course announced to a user (one row per user and course): never twice."""

    __tablename__ = "notice_deliveries"

    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    course_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: The batch's key (no index: nothing looks a delivery up by it; migration 0011).
    retry_key: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(8))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class NoticeLease(Base):
    """Only one notice run at a time across every process: a lease row with an expiry."""

    __tablename__ = "notice_lease"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[float] = mapped_column(Float)


class KnowledgeVersion(Base):
    """One validated knowledge set (knowledge plus intents), stored whole: every process
    serves the published one, whatever files its own disk holds (``bot kb publish``)."""

    __tablename__ = "kb_versions"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: The loader's content hash (``Knowledge.version``): equal files, equal digest.
    digest: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    #: Per-entry changes against the version that was live when this one was stored.
    changes: Mapped[list[str]] = mapped_column(JSON, default=list)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The files as a deterministic tar.gz (``bot.kb.snapshots.pack``).
    archive: Mapped[bytes] = mapped_column(LargeBinary)


class KnowledgePublication(Base):
    """Which version went live, when, by whom: the newest row is the live version."""

    __tablename__ = "kb_publications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    #: publish | rollback
    action: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer, index=True)
    note: Mapped[str | None] = mapped_column(String(300))


class Database:
    """An async engine plus session factory for one DATABASE_URL."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            # A worker runs WORKER_CONCURRENCY events at once: keep that many connections
            # open rather than opening and closing them under load. No pre-ping (a round
            # trip per checkout): a connection lost to a database restart fails its event,
            # which the queue retries, and SQLAlchemy then replaces the whole pool.
            self.engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800
            )
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)
        #: The engine with every statement committing on its own: no BEGIN and COMMIT (or
        #: ROLLBACK) round trips for a single-statement write or a read.
        self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        #: Sessions for reads only, on ``autocommit``. On PostgreSQL (READ COMMITTED) every
        #: statement takes its own snapshot anyway: the reads see what they saw inside a
        #: transaction.
        self.reading = async_sessionmaker(self.autocommit, expire_on_commit=False)

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Dispose the connection pool."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL lets the CLI read while ``bot serve`` writes; busy_timeout waits instead of failing."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


__all__ = [
    "Assessment",
    "Base",
    "Database",
    "DeadLetter",
    "EventLog",
    "Handoff",
    "KnowledgePublication",
    "KnowledgeVersion",
    "LocalQueueItem",
    "NoticeBatch",
    "NoticeCourse",
    "NoticeDelivery",
    "NoticeLease",
    "NoticeRun",
    "SeenEvent",
    "Subscription",
    "Unanswered",
    "User",
    "utcnow",
]
