"""Daily counters for the console's dashboard: what the bot did, per Thai day.

The dashboard must not scan the event log (it is pruned, and large): every answered
message or postback adds one to its route and one to its outcome here, in the
transaction that stores the answer (``Turn.write``), so a retried event counts once.
A few other moments (an assessment started) are counted the same way as ``event`` rows.
Counts only, never who (PDPA).

Kinds and keys:

- ``route``: the intent answered (``greeting``, ``guide:<id>``), or the route when the
  turn answered none (``step:assessment.sector``, ``postback:asm``, ``fallback``);
- ``outcome``: one of ``OUTCOMES``, the figures Thai operators know from vendors'
  dashboards (answered, "did you mean", unanswered, handed to staff);
- ``event``: other moments (``assessment_started``);
- ``delivery``: how answers reached people, counted when LINE accepted them: ``reply``
  (free) or ``push`` (charged against the monthly quota), and ``staff_push`` (a staff
  reply from the console); ``bot quota`` reads them with the notices' own records.

Days are Thai days (Asia/Bangkok), like the knowledge's dates.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, String, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import Assessment, Base, NoticeDelivery, NoticeRun, User
from bot.storage.merged import MergedWrite

BANGKOK: Final = ZoneInfo("Asia/Bangkok")

ROUTE: Final = "route"
OUTCOME: Final = "outcome"
EVENT: Final = "event"
DELIVERY: Final = "delivery"
#: ``delivery`` keys: an answer by reply token, by push, and a staff reply (a push).
REPLY: Final = "reply"
PUSH: Final = "push"
STAFF_PUSH: Final = "staff_push"

ANSWERED: Final = "answered"
DID_YOU_MEAN: Final = "did_you_mean"
UNANSWERED: Final = "unanswered"
STAFF: Final = "staff"
#: Every outcome, in the order the dashboard stacks them.
OUTCOMES: Final = (ANSWERED, DID_YOU_MEAN, UNANSWERED, STAFF)
#: The intent that hands a user to staff (``handlers.staff``).
STAFF_INTENT: Final = "contact_staff"
#: ``event`` key: the first question of an assessment was asked.
ASSESSMENT_STARTED: Final = "assessment_started"
#: Routes (and intents) that are guides: ``guide:<id>``.
GUIDE_PREFIX: Final = "guide:"
#: Route keys that are not an intent: a dialogue step, a button, the fallback, media.
NOT_INTENTS: Final = ("step:", "postback:", "message:", "fallback", GUIDE_PREFIX)
KEY_CHARS: Final = 100


class DailyCount(Base):
    """How often something happened on one Thai day (``kind``/``key``, see the module)."""

    __tablename__ = "daily_counts"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_CHARS), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


_TABLE: Table = DailyCount.__table__  # type: ignore[assignment]


def local_day(moment: dt.datetime | None = None) -> dt.date:
    """The Thai day of ``moment`` (now when None): the day a count belongs to."""
    return (moment or dt.datetime.now(dt.UTC)).astimezone(BANGKOK).date()


def day_start(day: dt.date) -> dt.datetime:
    """Midnight in Bangkok starting ``day``, in UTC: SQLite compares stored times as text,
    and they are stored as UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=BANGKOK).astimezone(dt.UTC)


def outcome_of(route: str, answering: str | None, outcome: str | None) -> str:
    """A turn's outcome: what its handler said (``Turn.outcome``), else staff for the
    hand-off intent, unanswered for the fallback (an old button), else answered."""
    if outcome in OUTCOMES:
        return outcome
    if answering == STAFF_INTENT or route == f"intent:{STAFF_INTENT}":
        return STAFF
    if route == "fallback":
        return UNANSWERED
    return ANSWERED


def route_key(route: str, answering: str | None) -> str:
    """What a turn is counted under: the intent it answered, else its route."""
    key = answering or route
    return key.removeprefix("intent:")[:KEY_CHARS]


# -- writing ----------------------------------------------------------------------------------

# Built once per dialect with bound parameters (the pipeline runs them for every event).
_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    found = _UPSERTS.get(dialect)
    if found is None:
        ins = (postgresql if dialect == "postgresql" else sqlite).insert(_TABLE)
        found = ins.on_conflict_do_update(
            index_elements=[_TABLE.c.day, _TABLE.c.kind, _TABLE.c.key],
            set_={"count": _TABLE.c.count + ins.excluded.count},
        )
        _UPSERTS[dialect] = found
    return found


async def add(s: AsyncSession, day: dt.date, kind: str, key: str, n: int = 1) -> None:
    """Add ``n`` to one counter (one statement: concurrent workers add up, none is lost)."""
    statement = _upsert(s.get_bind().dialect.name)
    await s.execute(statement, {"day": day, "kind": kind, "key": key[:KEY_CHARS], "count": n})


async def count_turn(s: AsyncSession, day: dt.date, route: str, outcome: str) -> None:
    """Count one answered message or postback: its route, then its outcome (``TurnCount``,
    the same order every transaction uses)."""
    await TurnCount(day, route, outcome)(s)


async def count_event(s: AsyncSession, key: str, day: dt.date | None = None) -> None:
    """Count one ``event`` (``ASSESSMENT_STARTED``) on ``day`` (today when None)."""
    await add(s, day or local_day(), EVENT, key)


@dataclass(frozen=True)
class TurnCount(MergedWrite):
    """The ``Turn.write`` change that counts a turn (its route, then its outcome); the
    counts of answers stored together are summed into one call."""

    day: dt.date
    route: str
    outcome: str

    @classmethod
    async def run_all(cls, s: AsyncSession, changes: Sequence[TurnCount]) -> None:
        await s.execute(_upsert(s.get_bind().dialect.name), cls.rows(changes))

    @staticmethod
    def rows(changes: Sequence[TurnCount]) -> list[dict[str, Any]]:
        """The counter rows these changes add to, summed, in lock order."""
        sums: collections.Counter[tuple[int, dt.date, str]] = collections.Counter()
        for change in changes:
            if change.outcome not in OUTCOMES:
                raise ValueError(f"unknown outcome {change.outcome!r}")
            sums[(0, change.day, change.route[:KEY_CHARS])] += 1
            sums[(1, change.day, change.outcome)] += 1
        # Every route row before every outcome row, each in key order: two transactions
        # never wait for each other's rows crosswise; the outcome rows (four a day, every
        # turn touches one) come last, to hold their locks briefly.
        return [
            {"day": day, "kind": (ROUTE, OUTCOME)[order], "key": key, "count": n}
            for (order, day, key), n in sorted(sums.items())
        ]


def turn_counter(
    route: str, answering: str | None, outcome: str | None, day: dt.date | None = None
) -> TurnCount:
    """The change that counts a turn (the pipeline adds it to every message and postback
    it answers); the day is fixed now, when the answer was decided."""
    return TurnCount(
        day or local_day(), route_key(route, answering), outcome_of(route, answering, outcome)
    )


# -- reading (the dashboard) ------------------------------------------------------------------


def window(days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The first and last day of the ``days`` days ending today (``days=1``: today only)."""
    last = today or local_day()
    return last - dt.timedelta(days=max(1, days) - 1), last


async def outcomes_by_day(
    s: AsyncSession, first: dt.date, last: dt.date
) -> dict[dt.date, dict[str, int]]:
    """Each day from ``first`` to ``last`` (every one, zeros included) with its outcomes."""
    rows = (
        await s.execute(
            select(DailyCount.day, DailyCount.key, DailyCount.count).where(
                DailyCount.kind == OUTCOME, DailyCount.day.between(first, last)
            )
        )
    ).all()
    days: dict[dt.date, dict[str, int]] = {}
    day = first
    while day <= last:
        days[day] = dict.fromkeys(OUTCOMES, 0)
        day += dt.timedelta(days=1)
    for day, key, count in rows:
        if key in OUTCOMES and day in days:
            days[day][key] += int(count)
    return days


async def totals(s: AsyncSession, first: dt.date, last: dt.date, kind: str) -> dict[str, int]:
    """Every key of ``kind`` with its sum over the days, largest first."""
    total = func.sum(DailyCount.count)
    rows = (
        await s.execute(
            select(DailyCount.key, total)
            .where(DailyCount.kind == kind, DailyCount.day.between(first, last))
            .group_by(DailyCount.key)
            .order_by(total.desc(), DailyCount.key)
        )
    ).all()
    return {str(key): int(count or 0) for key, count in rows}


def is_intent(key: str) -> bool:
    """Is this route key an intent (not a guide, a dialogue step, a button or the fallback)?"""
    return not key.startswith(NOT_INTENTS)


@dataclass
class Figures:
    """Everything the dashboard shows for a window of days (counts only)."""

    first: dt.date
    last: dt.date
    by_day: dict[dt.date, dict[str, int]]
    outcomes: dict[str, int]
    messages: int
    active_users: int
    top_intents: list[tuple[str, int]]
    top_guides: list[tuple[str, int]]
    assessments_started: int
    assessments_finished: int
    notices_sent: int
    notice_recipients: int
    notice_runs: int
    #: The newest notice run's ``quota_left`` (what LINE said then) and when it ran.
    last_run_quota: tuple[int, dt.datetime] | None = None


async def figures(s: AsyncSession, first: dt.date, last: dt.date, top: int = 10) -> Figures:
    """The dashboard's figures for the Thai days ``first`` to ``last``."""
    start, end = day_start(first), day_start(last + dt.timedelta(days=1))
    by_day = await outcomes_by_day(s, first, last)
    outcomes = {o: sum(d[o] for d in by_day.values()) for o in OUTCOMES}
    routes = await totals(s, first, last, ROUTE)
    events = await totals(s, first, last, EVENT)
    active = await s.scalar(
        select(func.count())
        .select_from(User)
        .where(User.last_seen_at >= start, User.last_seen_at < end)
    )
    finished = await s.scalar(
        select(func.count())
        .select_from(Assessment)
        .where(Assessment.created_at >= start, Assessment.created_at < end)
    )
    recipients = await s.scalar(
        select(func.count(func.distinct(NoticeDelivery.line_user_id))).where(
            NoticeDelivery.status == "sent", NoticeDelivery.at >= start, NoticeDelivery.at < end
        )
    )
    runs = (
        await s.execute(
            select(NoticeRun.started_at, NoticeRun.counts)
            .where(NoticeRun.dry_run.is_(False))
            .where(NoticeRun.started_at >= start, NoticeRun.started_at < end)
            .order_by(NoticeRun.started_at)
        )
    ).all()
    newest = (
        await s.execute(
            select(NoticeRun.started_at, NoticeRun.counts)
            .where(NoticeRun.dry_run.is_(False))
            .order_by(NoticeRun.started_at.desc(), NoticeRun.id.desc())
            .limit(1)
        )
    ).first()
    last_quota = None
    left = (newest.counts or {}).get("quota_left") if newest is not None else None
    if newest is not None and isinstance(left, int):  # None: unlimited, or never asked
        last_quota = (left, newest.started_at)
    return Figures(
        first=first,
        last=last,
        by_day=by_day,
        outcomes=outcomes,
        messages=sum(outcomes.values()),
        active_users=int(active or 0),
        top_intents=[(k, n) for k, n in routes.items() if is_intent(k)][:top],
        top_guides=[
            (k.removeprefix(GUIDE_PREFIX), n)
            for k, n in routes.items()
            if k.startswith(GUIDE_PREFIX)
        ][:top],
        assessments_started=events.get(ASSESSMENT_STARTED, 0),
        assessments_finished=int(finished or 0),
        notices_sent=sum(int((c or {}).get("sent", 0) or 0) for _, c in runs),
        notice_recipients=int(recipients or 0),
        notice_runs=len(runs),
        last_run_quota=last_quota,
    )


__all__ = [
    "ANSWERED",
    "ASSESSMENT_STARTED",
    "DID_YOU_MEAN",
    "OUTCOMES",
    "STAFF",
    "UNANSWERED",
    "DailyCount",
    "Figures",
    "TurnCount",
    "add",
    "count_event",
    "count_turn",
    "figures",
    "local_day",
    "outcome_of",
    "turn_counter",
    "window",
]
