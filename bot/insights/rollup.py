"""The rollup: distinct people and moments per week and month, from the raw moments.

Why periods are recomputed whole: distinct people cannot be added up day by day (one person
active on two days of a week is one person that week), so a period is recomputed from its
raw moments whenever one of its days changed: new moments (today, yesterday) or an erasure
(``bot.storage.privacy`` marks the days the person touched in ``insights_dirty``).

For each affected period, in one transaction: delete the period's rows, then one
``INSERT ... SELECT`` per grouping, done by the database (no Python loop over moments):

- every (kind, province, sector, stage, key): the cells;
- key ``*``: distinct people over every key (a person asking two topics is one);
- province ``*``: distinct people over every province;
- both ``*``;

each of them also with sector ``*`` and stage ``ALL_STAGES`` (over every sector and stage), so
the views without a sector or stage filter count people exactly and read few rows.

On PostgreSQL the eight are one statement (``GROUPING SETS``, one scan of the moments); on
SQLite eight statements (the same rows; a test compares both with a direct count).

Raw moments older than ``INSIGHTS_RAW_DAYS`` are pruned, the rollup keeps their counts. The
cut is moved back to the Monday on or before the first day of a quarter, so that a period is
either wholly backed by raw moments (and recomputable) or wholly before the cut (and frozen,
never recomputed, never half-emptied by the pruning).

One rollup at a time across processes: a lease row (``notice_lease``, name ``insights``,
the notice runner's pattern) renewed while the run lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import (
    Date,
    SmallInteger,
    String,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.insights.records import (
    ALL,
    ALL_STAGES,
    GRAINS,
    InsightDirty,
    InsightEvent,
    InsightRollup,
    InsightRun,
)
from bot.storage.daily import local_day
from bot.storage.db import Database, NoticeLease, utcnow

log = logging.getLogger(__name__)

#: The lease row's name in ``notice_lease`` (shared with the notice runner's ``notify``).
LEASE_NAME: Final = "insights"
#: The lease lapses this long after its holder stops renewing it (a crashed process).
LEASE_SECONDS: Final = 300.0
DEFAULT_RAW_DAYS: Final = 400
#: PostgreSQL's sort memory for one period's recount (only inside that transaction).
WORK_MEM: Final = "256MB"

_E: Table = InsightEvent.__table__  # type: ignore[assignment]
_R: Table = InsightRollup.__table__  # type: ignore[assignment]
_COLUMNS: Final = (
    "grain",
    "start",
    "kind",
    "province",
    "sector",
    "stage",
    "key",
    "people",
    "events",
)


# -- periods ----------------------------------------------------------------------------------


def period_start(grain: str, day: dt.date) -> dt.date:
    """The first day of the week (Monday), month or quarter holding ``day``."""
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    raise ValueError(f"unknown grain {grain!r}")


def shift(grain: str, start: dt.date, n: int) -> dt.date:
    """The start of the period ``n`` periods after (before, when negative) the one at ``start``."""
    if grain == "week":
        return start + dt.timedelta(weeks=n)
    months = {"month": 1, "quarter": 3}.get(grain)
    if months is None:
        raise ValueError(f"unknown grain {grain!r}")
    index = start.year * 12 + start.month - 1 + n * months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_end(grain: str, start: dt.date) -> dt.date:
    """The last day of the period starting ``start``."""
    return shift(grain, start, 1) - dt.timedelta(days=1)


def raw_cutoff(today: dt.date, raw_days: int) -> dt.date:
    """The first day whose raw moments are kept: ``raw_days`` back, moved to the Monday on or
    before its quarter's first day (so no period is ever partly pruned)."""
    return period_start("week", period_start("quarter", today - dt.timedelta(days=raw_days)))


def periods_of(days: Iterable[dt.date], since: dt.date) -> list[tuple[str, dt.date]]:
    """Every (grain, start) holding one of ``days``, except periods starting before ``since``."""
    found = {(g, period_start(g, d)) for d in days for g in GRAINS}
    return sorted(p for p in found if p[1] >= since)


# -- the statements ---------------------------------------------------------------------------


def _portable(grain: str, start: dt.date, end: dt.date) -> list[Any]:
    """Eight ``INSERT ... SELECT`` (cells, key totals, province totals, both; each also over
    every sector and stage) for any database."""
    statements = []
    for by_profile, by_province, by_key in itertools.product((True, False), repeat=3):
        province = _E.c.province if by_province else literal(ALL, String)
        key = _E.c.key if by_key else literal(ALL, String)
        sector = _E.c.sector if by_profile else literal(ALL, String)
        stage = _E.c.stage if by_profile else literal(ALL_STAGES, SmallInteger)
        group = [_E.c.kind]
        group += [_E.c.sector, _E.c.stage] if by_profile else []
        group += [_E.c.province] if by_province else []
        group += [_E.c.key] if by_key else []
        query = (
            select(
                literal(grain, String),
                literal(start, Date),
                _E.c.kind,
                province,
                sector,
                stage,
                key,
                func.count(_E.c.line_user_id.distinct()),
                func.count(),
            )
            .where(_E.c.day.between(start, end))
            .group_by(*group)
        )
        statements.append(insert(_R).from_select(_COLUMNS, query))
    return statements


def _grouping_sets(grain: str, start: dt.date, end: dt.date) -> list[Any]:
    """The same rows in one statement and one scan (PostgreSQL's ``GROUPING SETS``)."""
    c = _E.c
    query = (
        select(
            literal(grain, String),
            literal(start, Date),
            c.kind,
            case((func.grouping(c.province) == 1, literal(ALL, String)), else_=c.province),
            case((func.grouping(c.sector) == 1, literal(ALL, String)), else_=c.sector),
            case((func.grouping(c.stage) == 1, literal(ALL_STAGES, SmallInteger)), else_=c.stage),
            case((func.grouping(c.key) == 1, literal(ALL, String)), else_=c.key),
            func.count(c.line_user_id.distinct()),
            func.count(),
        )
        .where(c.day.between(start, end))
        .group_by(
            func.grouping_sets(
                tuple_(c.kind, c.province, c.sector, c.stage, c.key),
                tuple_(c.kind, c.province, c.sector, c.stage),
                tuple_(c.kind, c.sector, c.stage, c.key),
                tuple_(c.kind, c.sector, c.stage),
                tuple_(c.kind, c.province, c.key),
                tuple_(c.kind, c.province),
                tuple_(c.kind, c.key),
                tuple_(c.kind),
            )
        )
    )
    return [insert(_R).from_select(_COLUMNS, query)]


async def recompute(conn: AsyncConnection, grain: str, start: dt.date) -> int:
    """Replace one period's rows with a fresh count (in the caller's transaction); rows written."""
    end = period_end(grain, start)
    await conn.execute(delete(_R).where(_R.c.grain == grain, _R.c.start == start))
    build = _grouping_sets if conn.dialect.name == "postgresql" else _portable
    for statement in build(grain, start, end):
        await conn.execute(statement)
    # Counted afterwards: drivers disagree on an INSERT ... SELECT's rowcount.
    written = await conn.scalar(
        select(func.count()).select_from(_R).where(_R.c.grain == grain, _R.c.start == start)
    )
    return int(written or 0)


# -- the lease --------------------------------------------------------------------------------


class Lease:
    """The ``insights`` row of ``notice_lease``: taken, renewed while held, released."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def take(self) -> bool:
        now = time.time()
        dialect = postgresql if self.db.engine.dialect.name == "postgresql" else sqlite
        ins = dialect.insert(NoticeLease).values(
            name=LEASE_NAME, holder=self.holder, expires_at=now + LEASE_SECONDS
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[NoticeLease.name],
            set_={"holder": ins.excluded.holder, "expires_at": ins.excluded.expires_at},
            where=or_(NoticeLease.expires_at < now, NoticeLease.holder == self.holder),
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(stmt)
            holder = await conn.scalar(
                select(NoticeLease.holder).where(NoticeLease.name == LEASE_NAME)
            )
        return bool(holder == self.holder)

    async def keep(self) -> None:
        """Renew the lease while the run lasts (a third of its lifetime at a time; a failed
        renewal is tried again at the next turn, two more before the lease could lapse)."""
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                async with self.db.engine.begin() as conn:
                    await conn.execute(
                        update(NoticeLease)
                        .where(NoticeLease.name == LEASE_NAME, NoticeLease.holder == self.holder)
                        .values(expires_at=time.time() + LEASE_SECONDS)
                    )
            except Exception as exc:
                log.warning("insights lease not renewed", extra={"error": type(exc).__name__})

    async def release(self) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(
                delete(NoticeLease).where(
                    NoticeLease.name == LEASE_NAME, NoticeLease.holder == self.holder
                )
            )


# -- a run ------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What a rollup did (printed by ``bot insights rollup``, stored in ``insights_runs``)."""

    run_id: int | None = None
    skipped: str | None = None
    full: bool = False
    #: Days recomputed (dirty days, yesterday and today; every day with moments when full).
    days: int = 0
    periods: list[tuple[str, dt.date]] = field(default_factory=list)
    rows: int = 0
    #: Raw moments older than the cut, deleted (their counts stay in the rollup).
    pruned: int = 0
    seconds: float = 0.0


async def rollup(
    db: Database,
    today: dt.date | None = None,
    full: bool = False,
    raw_days: int = DEFAULT_RAW_DAYS,
) -> RunReport:
    """Recompute every period touched by a dirty day, yesterday or today (``full``: every
    period with raw moments), clear the dirty days handled and prune old raw moments."""
    report = RunReport(full=full)
    lease = Lease(db)
    if not await lease.take():
        report.skipped = "another insights rollup is in progress"
        return report
    keeper = asyncio.create_task(lease.keep())
    began = time.perf_counter()
    succeeded = False
    try:
        report.run_id = await _start_run(db)
        await _run(db, report, today or local_day(), full, raw_days)
        succeeded = True
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        report.seconds = round(time.perf_counter() - began, 3)
        # Only a run that finished counts as one: the next run starts from the last good
        # run's days (a failed one left its days to be done), and the page's "as of" too.
        if report.run_id is not None and succeeded:
            await _finish_run(db, report)
        await lease.release()
    log.info(
        "insights rollup finished",
        extra={
            "days": report.days,
            "periods": len(report.periods),
            "rows": report.rows,
            "pruned": report.pruned,
            "seconds": report.seconds,
        },
    )
    return report


async def _run(db: Database, report: RunReport, today: dt.date, full: bool, raw_days: int) -> None:
    cutoff = raw_cutoff(today, raw_days)
    async with db.engine.connect() as conn:
        # What was dirty when the run began; a day marked again later keeps its newer mark.
        dirty = {
            day: marked
            for day, marked in (
                await conn.execute(select(InsightDirty.day, InsightDirty.marked_at))
            ).all()
        }
        days = set(dirty) | {today, today - dt.timedelta(days=1)}
        # Every day since the last finished run began (the worker may have been down for
        # days; their moments must not wait for a full rollup). No run yet: all of them.
        since = await conn.scalar(
            select(func.max(InsightRun.started_at)).where(InsightRun.finished_at.is_not(None))
        )
        if since is None:
            full = report.full = True
        else:
            first = max(local_day(_aware(since)) - dt.timedelta(days=1), cutoff)
            days |= {first + dt.timedelta(days=i) for i in range((today - first).days + 1)}
        extra: set[tuple[str, dt.date]] = set()
        if full:
            days |= set((await conn.scalars(select(InsightEvent.day).distinct())).all())
            rolled = (
                await conn.execute(
                    select(InsightRollup.grain, InsightRollup.start)
                    .where(InsightRollup.start >= cutoff)
                    .distinct()
                )
            ).all()
            extra = {(str(g), s) for g, s in rolled}
    report.days = len(days)
    report.periods = sorted(set(periods_of(days, cutoff)) | extra)
    for grain, start in report.periods:
        async with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # The grouping sets sort a month of moments: in memory, not on disk
                # (with the default 4 MB they spilled hundreds of MB at national size).
                await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
            report.rows += await recompute(conn, grain, start)
    if dirty:
        async with db.engine.begin() as conn:
            await conn.execute(
                delete(InsightDirty).where(
                    InsightDirty.day == bindparam("d"), InsightDirty.marked_at <= bindparam("m")
                ),
                [{"d": day, "m": marked} for day, marked in dirty.items()],
            )
    async with db.engine.begin() as conn:
        result = await conn.execute(delete(InsightEvent).where(InsightEvent.day < cutoff))
        report.pruned = max(0, int(getattr(result, "rowcount", 0) or 0))


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive times; they are stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


async def _start_run(db: Database) -> int:
    async with db.engine.begin() as conn:
        result = await conn.execute(insert(InsightRun).values(started_at=utcnow()))
        key = result.inserted_primary_key
        return int(key[0]) if key else 0


async def _finish_run(db: Database, report: RunReport) -> None:
    with contextlib.suppress(Exception):  # the run's outcome matters more than its record
        async with db.engine.begin() as conn:
            await conn.execute(
                update(InsightRun)
                .where(InsightRun.id == report.run_id)
                .values(
                    finished_at=utcnow(),
                    days=report.days,
                    periods=len(report.periods),
                    rows=report.rows,
                    seconds=report.seconds,
                )
            )


async def last_run(db: Database) -> InsightRun | None:
    """The newest finished rollup (the page's "figures as of")."""
    async with db.session() as s:
        found: InsightRun | None = await s.scalar(
            select(InsightRun)
            .where(InsightRun.finished_at.is_not(None))
            .order_by(InsightRun.id.desc())
            .limit(1)
        )
        return found


__all__ = [
    "RunReport",
    "last_run",
    "period_end",
    "period_start",
    "periods_of",
    "raw_cutoff",
    "recompute",
    "rollup",
    "shift",
]
