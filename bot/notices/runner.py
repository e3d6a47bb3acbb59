"""One notice run: find new courses, match subscribers, send digests exactly once.

The order of a run, and why:

1. Take the lease (a row in ``notice_lease``): one run at a time across all
   processes, so the worker's job and ``bot notify`` never race.
2. Finish what an earlier run left *pending* (stored, maybe sent, maybe not):
   resend with the same ``X-Line-Retry-Key``; LINE answers 409 for a key it
   already accepted, which counts as sent. Until nothing is pending, nothing
   new is planned (the same users must never get a second key).
3. Record courses seen for the first time; the candidates are those not yet
   done that can still be joined.
4. In quiet hours, count what would go and stop: it waits for the morning.
5. Match (``select.plan``), minus (user, course) pairs already delivered and
   users who had their notices today (local day).
6. Read the quota and consumption from LINE; never plan past the remainder.
7. Store every batch (recipients, messages, retry key) *before* any call,
   then send them at the configured rate (``send``: each digest's JSON built once,
   ``NOTIFY_CONCURRENCY`` calls in flight, one limiter for all); each success
   records one delivery row per user and course (``bulk``: one statement) in the
   same transaction that marks the batch sent. A batch whose turn comes in quiet
   hours stays stored and pending, for the first run after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Table, cast, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.insights import capture, records
from bot.insights.records import InsightEvent
from bot.kb.queries import availability
from bot.kb.schemas import Course
from bot.line.calls import LineError, PermanentLineError, RetryPolicy
from bot.notices.bulk import Product, insert_products
from bot.notices.message import digest_messages
from bot.notices.quiet import QuietHours
from bot.notices.select import CourseMatch, Group, Offer, Subscriber, group, plan
from bot.notices.send import (
    MULTICAST_MAX,
    Kind,
    LineTransport,
    RateLimiter,
    Transport,
    body,
    messages_json,
)
from bot.storage.daily import local_day
from bot.storage.db import (
    NoticeBatch,
    NoticeCourse,
    NoticeDelivery,
    NoticeLease,
    NoticeRun,
    Subscription,
    User,
    aware,
    utcnow,
)

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

__all__ = ["MULTICAST_MAX", "NoticeRunner", "RateLimiter", "RunReport", "history"]

_DELIVERIES: Table = NoticeDelivery.__table__  # type: ignore[assignment]
_EVENTS: Table = InsightEvent.__table__  # type: ignore[assignment]

#: Batches recorded in one transaction at most (500 users each).
SETTLE_GROUP = 16
#: The lease lapses this long after its holder stops renewing it (a crashed process).
LEASE_SECONDS = 120.0
#: How far before a course was first seen its delivery rows are looked for. A course's
#: ``notice_courses`` row is written before any run selects it and is never deleted, so its
#: deliveries are all later, give or take the skew between the clocks of the machines that
#: wrote them; a week covers any clock that NTP keeps.
DELIVERIES_MARGIN = dt.timedelta(days=7)
#: Availability states a course can still be announced in.
ANNOUNCEABLE = ("open", "upcoming", "unknown")


class NoticeSender(Protocol):
    """The quota readings a run needs (``bot.line.client.LineClient`` has them); the
    calls themselves go through a :class:`bot.notices.send.Transport`."""

    async def quota(self) -> int | None: ...

    async def quota_consumption(self) -> int: ...


@dataclass
class RunReport:
    """What a run did (printed by ``bot notify``, stored in ``notice_runs.counts``)."""

    run_id: int | None = None
    dry_run: bool = False
    skipped: str | None = None
    courses: list[str] = field(default_factory=list)
    matched: int = 0
    sent: int = 0
    deferred_quiet: int = 0
    deferred_daily: int = 0
    held_quota: int = 0
    failed: int = 0
    pending: int = 0
    recovered: int = 0
    calls: int = 0
    minimum_calls: int = 0
    #: Delivery rows logged (one per user and course) and the statements that wrote them.
    delivery_rows: int = 0
    delivery_inserts: int = 0
    quota_left: int | None = None
    selection_seconds: float = 0.0
    send_seconds: float = 0.0
    matches: dict[str, CourseMatch] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        # Not ``asdict``: it would deep-copy every matched user id first, only to drop them.
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), list) else v
            for f in fields(self)
            if f.name not in ("matches", "run_id")
        }


@dataclass
class _Batch:
    key: str
    course_ids: list[str]
    recipients: list[str]
    messages: list[dict[str, Any]]
    #: The digest's messages as JSON, shared by all its batches.
    prepared: bytes = b""

    def call(self) -> tuple[Kind, bytes]:
        return body(self.recipients, self.prepared or messages_json(self.messages))


@dataclass
class _Done:
    """A batch LINE answered for, waiting to be recorded."""

    batch: _Batch
    status: str
    error: str | None


class _Settler:
    """Records finished batches in groups: whatever finished while the last group was
    being written goes into the next transaction (up to :data:`SETTLE_GROUP` batches)."""

    def __init__(self, runner: NoticeRunner, report: RunReport) -> None:
        self.runner = runner
        self.report = report
        self.queue: asyncio.Queue[_Done | None] = asyncio.Queue()

    def add(self, batch: _Batch, status: str, error: str | None) -> None:
        self.queue.put_nowait(_Done(batch, status, error))

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def run(self) -> None:
        closed = False
        while not closed:
            item = await self.queue.get()
            group: list[_Done] = []
            while item is not None:
                group.append(item)
                if len(group) >= SETTLE_GROUP or self.queue.empty():
                    break
                item = self.queue.get_nowait()
            closed = item is None
            if group:
                await self.runner._settle(group, self.report)


class NoticeRunner:
    """Runs notice jobs for one process's services."""

    def __init__(
        self, services: Services, sender: NoticeSender, transport: Transport | None = None
    ) -> None:
        self.s = services
        self.sender = sender
        #: None: a :class:`LineTransport` per run, at ``NOTIFY_RATE_PER_SECOND``.
        self.transport = transport
        st = services.settings
        self.quiet = QuietHours.parse(st.notify_quiet_hours, st.notify_timezone)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = utcnow

    # -- the lease -------------------------------------------------------------------------

    def _upsert(self) -> Any:
        name = self.s.db.engine.dialect.name
        return (postgresql if name == "postgresql" else sqlite).insert

    async def _take_lease(self) -> bool:
        now = time.time()
        ins = self._upsert()(NoticeLease).values(
            name="notify", holder=self.holder, expires_at=now + LEASE_SECONDS
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[NoticeLease.name],
            set_={"holder": ins.excluded.holder, "expires_at": ins.excluded.expires_at},
            where=or_(NoticeLease.expires_at < now, NoticeLease.holder == self.holder),
        )
        async with self.s.db.engine.begin() as conn:
            await conn.execute(stmt)
            holder = await conn.scalar(
                select(NoticeLease.holder).where(NoticeLease.name == "notify")
            )
            if holder != self.holder and holder is not None and _dead_here(holder):
                # Its holder crashed on this machine: no need to wait for the lease to lapse.
                await conn.execute(
                    update(NoticeLease)
                    .where(NoticeLease.name == "notify", NoticeLease.holder == holder)
                    .values(holder=self.holder, expires_at=now + LEASE_SECONDS)
                )
                holder = await conn.scalar(
                    select(NoticeLease.holder).where(NoticeLease.name == "notify")
                )
        return bool(holder == self.holder)

    async def _keep_lease(self) -> None:
        """Renew the lease while the run lasts (a third of its lifetime at a time)."""
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            async with self.s.db.engine.begin() as conn:
                await conn.execute(
                    update(NoticeLease)
                    .where(NoticeLease.name == "notify", NoticeLease.holder == self.holder)
                    .values(expires_at=time.time() + LEASE_SECONDS)
                )

    async def _release_lease(self) -> None:
        async with self.s.db.engine.begin() as conn:
            await conn.execute(
                delete(NoticeLease).where(
                    NoticeLease.name == "notify", NoticeLease.holder == self.holder
                )
            )

    # -- a run -----------------------------------------------------------------------------

    async def run(self, *, dry_run: bool = False, trigger: str = "cli") -> RunReport:
        """One whole run; returns its report (``skipped`` says why nothing was tried)."""
        report = RunReport(dry_run=dry_run)
        if not dry_run and not await self._take_lease():
            report.skipped = "another notice run is in progress"
            return report
        keeper = None if dry_run else asyncio.create_task(self._keep_lease())
        try:
            if not dry_run:
                report.run_id = await self._start_run(trigger)
                await self._recover(report)
            await self._run(report, dry_run)
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            if not dry_run:
                await self._finish_run(report)
                await self._release_lease()
        log.info("notice run finished", extra={"trigger": trigger, **report.counts()})
        return report

    async def _run(self, report: RunReport, dry_run: bool) -> None:
        now = self.clock()
        if report.pending:
            report.skipped = "earlier notices are still pending; they are retried first"
            return
        started = time.perf_counter()
        courses, since = await self._candidates(now, record=not dry_run)
        report.courses = [c.id for c in courses]
        if not courses:
            report.selection_seconds = time.perf_counter() - started
            return
        subscribers = await self._subscribers()
        ids = [c.id for c in courses]
        delivered = await self._delivered(ids, since)
        capped = await self._capped(now)
        outcome = plan(
            (Offer.of(c) for c in courses),
            subscribers,
            delivered,
            capped,
            self.s.settings.notify_stage_spread,
        )
        report.selection_seconds = time.perf_counter() - started
        report.matches = outcome.matches
        report.matched = outcome.recipients
        report.deferred_daily = len(outcome.capped)
        report.minimum_calls = sum(
            math.ceil(len(u) / MULTICAST_MAX) for u in outcome.digests.values()
        )
        if self.quiet.active(now):
            report.deferred_quiet = outcome.recipients
            return
        if dry_run or not outcome.recipients:
            return
        remaining = await self._quota_left()
        report.quota_left = remaining
        if remaining is not None and remaining <= 0:
            report.held_quota = outcome.recipients
            return
        by_id = {c.id: c for c in courses}
        batches: list[_Batch] = []
        kb, replies = self.s.knowledge, self.s.replies
        for course_ids, users in sorted(outcome.digests.items()):
            messages = [
                m.to_line() for m in digest_messages([by_id[i] for i in course_ids], kb, replies)
            ]
            prepared = messages_json(messages)
            for i in range(0, len(users), MULTICAST_MAX):
                chunk = users[i : i + MULTICAST_MAX]
                if remaining is not None:
                    if remaining < len(chunk):
                        report.held_quota += len(chunk) - max(remaining, 0)
                        chunk = chunk[: max(remaining, 0)]
                    remaining -= len(chunk)
                if chunk:
                    batches.append(
                        _Batch(str(uuid.uuid4()), list(course_ids), chunk, messages, prepared)
                    )
        await self._store(batches, report.run_id)
        await self._send_all(batches, report)
        await self._mark_done(outcome.matches, report, since)

    # -- reading ---------------------------------------------------------------------------

    async def _candidates(self, now: dt.datetime, record: bool) -> tuple[list[Course], dt.datetime]:
        """Courses to announce: new or not yet done, and still possible to join; and a time
        before which none of them has a delivery row (see :meth:`_delivered`)."""
        kb = self.s.knowledge
        today = now.astimezone(self.quiet.zone).date()
        async with self.s.db.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(NoticeCourse.course_id, NoticeCourse.done_at, NoticeCourse.first_seen_at)
                )
            ).all()
            known = {r.course_id: r.done_at for r in rows}
            # SQLite gives the stored UTC times back without their zone
            seen = {r.course_id: aware(r.first_seen_at) for r in rows}
            fresh = [c.id for c in kb.courses if c.id not in known]
            if record and fresh:
                await conn.execute(
                    insert(NoticeCourse), [{"course_id": i, "first_seen_at": now} for i in fresh]
                )
        out = []
        for course in kb.courses:
            if known.get(course.id) is not None:
                continue
            if availability(course.schedule, today) not in ANNOUNCEABLE:
                continue
            out.append(course)
        since = min((seen.get(c.id) or now for c in out), default=now) - DELIVERIES_MARGIN
        return out, since

    async def _subscribers(self) -> list[Group]:
        """Active subscriptions of users who still follow the account, grouped.

        On PostgreSQL the database groups them and hands over one JSON document
        (decoded in one call), not 100,000 rows decoded one by one.
        """
        listening = (
            Subscription.active.is_(True),
            or_(User.following.is_(None), User.following),
        )
        joined = (User, User.line_user_id == Subscription.line_user_id)
        async with self.s.db.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                topics = cast(Subscription.topics, postgresql.JSONB)
                provinces = cast(Subscription.provinces, postgresql.JSONB)
                grouped = (
                    select(
                        topics.label("t"),
                        provinces.label("p"),
                        Subscription.stage.label("s"),
                        func.json_agg(Subscription.line_user_id).label("u"),
                    )
                    .outerjoin(*joined)
                    .where(*listening)
                    .group_by(topics, provinces, Subscription.stage)
                    .subquery()
                )
                c = grouped.c
                data = await conn.scalar(
                    select(func.json_agg(func.json_build_array(c.t, c.p, c.s, c.u)))
                )
                return [
                    Group(frozenset(t or ()), frozenset(p or ()), s, u) for t, p, s, u in data or ()
                ]
            stmt = select(
                Subscription.line_user_id,
                Subscription.topics,
                Subscription.provinces,
                Subscription.stage,
            )
            rows = (await conn.execute(stmt.outerjoin(*joined).where(*listening))).all()
        return group(
            Subscriber(r[0], frozenset(r[1] or ()), frozenset(r[2] or ()), r[3]) for r in rows
        )

    async def _delivered(self, course_ids: list[str], since: dt.datetime) -> set[tuple[str, str]]:
        """Who already has a row for these courses. A course's rows are all newer than its
        ``notice_courses`` row (written before any run selects it), so the ``at`` index
        finds them among recent rows: the table keeps every notice ever sent, and the
        primary key (user first) cannot find a course's rows without reading all of it."""
        stmt = select(NoticeDelivery.line_user_id, NoticeDelivery.course_id).where(
            NoticeDelivery.course_id.in_(course_ids), NoticeDelivery.at >= since
        )
        async with self.s.db.engine.connect() as conn:
            return {(r[0], r[1]) for r in (await conn.execute(stmt)).all()}

    async def _capped(self, now: dt.datetime) -> set[str]:
        """Users who already had ``NOTIFY_MAX_PER_DAY`` notices today (local day)."""
        stmt = (
            select(NoticeDelivery.line_user_id)
            .where(
                NoticeDelivery.status == "sent",
                NoticeDelivery.at >= self.quiet.local_day_start(now),
            )
            .group_by(NoticeDelivery.line_user_id)
            .having(
                func.count(func.distinct(NoticeDelivery.retry_key))
                >= self.s.settings.notify_max_per_day
            )
        )
        async with self.s.db.engine.connect() as conn:
            return {r[0] for r in (await conn.execute(stmt)).all()}

    async def _quota_left(self) -> int | None:
        """Messages left this month (None: no limit). Unknown quota: send nothing."""
        limit = await self.sender.quota()
        if limit is None:
            return None
        used = await self.sender.quota_consumption()
        return max(0, limit - used)

    # -- writing ---------------------------------------------------------------------------

    async def _start_run(self, trigger: str) -> int:
        async with self.s.db.engine.begin() as conn:
            result = await conn.execute(
                insert(NoticeRun).values(
                    trigger=trigger[:16], dry_run=False, started_at=self.clock(), counts={}
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    async def _finish_run(self, report: RunReport) -> None:
        if report.run_id is None:
            return
        async with self.s.db.engine.begin() as conn:
            await conn.execute(
                update(NoticeRun)
                .where(NoticeRun.id == report.run_id)
                .values(finished_at=self.clock(), counts=report.counts())
            )

    async def _store(self, batches: list[_Batch], run_id: int | None) -> None:
        """Every batch and its retry key is on disk before the first call."""
        if not batches:
            return
        now = self.clock()
        async with self.s.db.engine.begin() as conn:
            await conn.execute(
                insert(NoticeBatch),
                [
                    {
                        "retry_key": b.key,
                        "run_id": run_id or 0,
                        "status": "pending",
                        "course_ids": b.course_ids,
                        "recipients": b.recipients,
                        "messages": b.messages,
                        "attempts": 0,
                        "created_at": now,
                    }
                    for b in batches
                ],
            )

    async def _recover(self, report: RunReport) -> None:
        """Resend batches an earlier run stored but did not finish (same retry keys)."""
        async with self.s.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        NoticeBatch.retry_key,
                        NoticeBatch.course_ids,
                        NoticeBatch.recipients,
                        NoticeBatch.messages,
                    ).where(NoticeBatch.status == "pending")
                )
            ).all()
        if not rows:
            return
        if self.quiet.active(self.clock()):
            report.pending = sum(len(r.recipients) for r in rows)
            report.deferred_quiet += report.pending
            return
        prepared: dict[str, bytes] = {}  # batches of one digest share their messages
        batches = []
        for r in rows:
            text = json.dumps(r.messages, sort_keys=True)
            if text not in prepared:
                prepared[text] = messages_json(r.messages)
            batches.append(
                _Batch(r.retry_key, r.course_ids, r.recipients, r.messages, prepared[text])
            )
        before = report.sent
        await self._send_all(batches, report)
        report.recovered = report.sent - before
        report.pending = await self._pending_count()

    async def _pending_count(self) -> int:
        async with self.s.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(NoticeBatch.recipients).where(NoticeBatch.status == "pending")
                )
            ).all()
        return sum(len(r[0]) for r in rows)

    def _transport(self) -> Transport:
        st = self.s.settings
        return LineTransport(
            st.line_api_base_url,
            st.access_token,
            RetryPolicy.from_settings(st),
            RateLimiter(st.notify_rate_per_second),
            st.notify_concurrency,
        )

    async def _send_all(self, batches: list[_Batch], report: RunReport) -> None:
        """Every batch, ``NOTIFY_CONCURRENCY`` calls in flight under one rate limit.

        A call's slot is free again as soon as LINE answers: recording it is the
        settler's work, many calls per transaction, so a slow database does not slow
        the calls down. Until it is recorded a batch is pending, and a crash meanwhile
        only means a resend under the same retry key (LINE answers 409).
        """
        started = time.perf_counter()
        gate = asyncio.Semaphore(self.s.settings.notify_concurrency)
        transport = self.transport or self._transport()
        settler = _Settler(self, report)
        writing = asyncio.create_task(settler.run())

        async def one(batch: _Batch) -> None:
            async with gate:
                if writing.done():  # the database failed: leave the rest pending
                    report.pending += len(batch.recipients)
                    return
                if self.quiet.active(self.clock()):
                    # Quiet hours began meanwhile: stored and pending, it goes in the morning.
                    report.pending += len(batch.recipients)
                    return
                outcome = await self._send(transport, batch, report)
            if outcome is not None:
                settler.add(batch, *outcome)

        try:
            # Every send ends before the settler and the connection pool close (a failure
            # is raised only then), so no call outlives the run and its lease.
            results = await asyncio.gather(*(one(b) for b in batches), return_exceptions=True)
            failed = next((r for r in results if isinstance(r, BaseException)), None)
            if failed is not None:
                raise failed
        finally:
            settler.close()
            try:
                await writing  # raises what the settler met
            finally:
                if transport is not self.transport:
                    await transport.close()
                report.send_seconds += time.perf_counter() - started

    async def _send(
        self, transport: Transport, batch: _Batch, report: RunReport
    ) -> tuple[str, str | None] | None:
        """One call; its outcome to record (status, error), or None: still pending."""
        kind, payload = batch.call()
        report.calls += 1
        try:
            await transport.send(kind, payload, batch.key)
        except PermanentLineError as exc:
            report.failed += len(batch.recipients)
            return "failed", str(exc)[:300]
        except LineError as exc:
            # Still pending: the next run resends it with the same key.
            report.pending += len(batch.recipients)
            async with self.s.db.engine.begin() as conn:
                await conn.execute(
                    update(NoticeBatch)
                    .where(NoticeBatch.retry_key == batch.key)
                    .values(attempts=NoticeBatch.attempts + 1, error=str(exc)[:300])
                )
            return None
        # Sent now, or accepted earlier under this key (409): either way delivered once.
        report.sent += len(batch.recipients)
        return "sent", None

    async def _settle(self, done: list[_Done], report: RunReport) -> None:
        """Mark finished batches and log one delivery per user and course, in one
        transaction; each table's rows in one statement, whatever the batch count."""
        now = self.clock()
        async with self.s.db.engine.begin() as conn:
            fresh: set[str] = set()
            sent = [d.batch.key for d in done if d.status == "sent"]
            if sent:
                marked = await conn.execute(
                    update(NoticeBatch)
                    .where(NoticeBatch.retry_key.in_(sent), NoticeBatch.status != "sent")
                    .values(
                        status="sent", error=None, sent_at=now, attempts=NoticeBatch.attempts + 1
                    )
                    .returning(NoticeBatch.retry_key)
                )
                fresh.update(marked.scalars())
            for d in done:
                if d.status != "sent":
                    marked = await conn.execute(
                        update(NoticeBatch)
                        .where(NoticeBatch.retry_key == d.batch.key, NoticeBatch.status != "sent")
                        .values(status=d.status, error=d.error, attempts=NoticeBatch.attempts + 1)
                        .returning(NoticeBatch.retry_key)
                    )
                    fresh.update(marked.scalars())
            # A batch recorded as sent before has its rows already.
            todo = [d for d in done if d.batch.key in fresh]
            rows = await insert_products(
                conn,
                _DELIVERIES,
                [
                    Product(
                        "line_user_id",
                        d.batch.recipients,
                        "course_id",
                        d.batch.course_ids,
                        {"retry_key": d.batch.key, "status": d.status, "at": now},
                    )
                    for d in todo
                ],
                skip_existing=True,
            )
            # The insight views' reach, once.
            await self._record_reach(conn, [d.batch for d in todo if d.status == "sent"], now)
        report.delivery_rows += rows
        report.delivery_inserts += 1 if todo else 0

    async def _record_reach(self, conn: Any, batches: list[_Batch], now: dt.datetime) -> None:
        """One ``notice_delivered`` moment per user and course, with the user's profile
        (the rows ``capture.record_deliveries`` writes, in one statement)."""
        if not batches:
            return
        profiles = await capture.profiles_of(conn, [u for b in batches for u in b.recipients])
        day, unknown = local_day(now), capture.Profile()
        moment = capture.Moment(records.NOTICE_DELIVERED)
        parts = []
        for batch in batches:
            # the batch's users by profile: most share one (or have none), so a part per
            # profile sends each user id once and each profile once
            alike: dict[tuple[str, str, int], list[str]] = {}
            for user in batch.recipients:
                row = capture.row(user, day, now, moment, profiles.get(user, unknown))
                alike.setdefault((row["province"], row["sector"], row["stage"]), []).append(user)
            keys = [course[: records.KEY_CHARS] for course in batch.course_ids]
            for (province, sector, stage), users in alike.items():
                same = {"province": province, "sector": sector, "stage": stage}
                same |= {"day": day, "kind": moment.kind, "at": now}
                parts.append(Product("line_user_id", users, "key", keys, same))
        await insert_products(conn, _EVENTS, parts)

    async def _mark_done(
        self, matches: dict[str, CourseMatch], report: RunReport, since: dt.datetime
    ) -> None:
        """A course is done when everyone it matched has a delivery row (sent or failed)."""
        if report.deferred_quiet or not matches:
            return
        ids = list(matches)
        async with self.s.db.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(NoticeDelivery.course_id, func.count())
                    .where(NoticeDelivery.course_id.in_(ids), NoticeDelivery.at >= since)
                    .group_by(NoticeDelivery.course_id)
                )
            ).all()
            logged = {r[0]: int(r[1]) for r in rows}
            done = [
                cid for cid, m in matches.items() if logged.get(cid, 0) >= len(m.users) + m.already
            ]
            if done:
                await conn.execute(
                    update(NoticeCourse)
                    .where(NoticeCourse.course_id.in_(done), NoticeCourse.done_at.is_(None))
                    .values(done_at=self.clock())
                )


def _dead_here(holder: str) -> bool:
    """Is ``holder`` (``host:pid:nonce``) a process of this machine that no longer runs?"""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def history(services: Services, limit: int = 20) -> list[dict[str, Any]]:
    """Past runs, newest first, with their counts (``bot notify --history``)."""
    async with services.db.engine.connect() as conn:
        rows = (
            await conn.execute(select(NoticeRun).order_by(NoticeRun.id.desc()).limit(limit))
        ).all()
    return [
        {
            "id": r.id,
            "trigger": r.trigger,
            "started_at": r.started_at.isoformat() if r.started_at else None,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            **(r.counts or {}),
        }
        for r in rows
    ]
