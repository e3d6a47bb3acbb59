"""The database reads and writes that several handlers (and the pipeline) share.

One definition of each, so they cannot drift apart: the latest assessment, the user's
subscription (saved with a merge rule), whether a chat is with staff, and a message kept
as unanswered. Every function takes an ``AsyncSession`` and never commits: a handler
reads through ``Turn.read`` and registers writes with ``Turn.write``, which the pipeline
runs in the transaction that stores the turn's answer (so a retried event never writes
twice). Not to be confused with ``bot.kb.queries``, which searches the knowledge files.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.storage.db import Assessment, GuideStat, Handoff, Subscription, Unanswered, utcnow
from bot.storage.merged import MergedWrite

log = logging.getLogger(__name__)

#: Characters of an unanswered text that are kept (the column's size).
UNANSWERED_CHARS = 500
#: Characters of an intent or guide name an unanswered text keeps (the columns' size).
NAME_CHARS = 64


# -- assessments ------------------------------------------------------------------------------


async def latest_assessment(s: AsyncSession, user_id: str) -> Assessment | None:
    """The user's most recent finished assessment (every one is kept; the latest counts)."""
    found: Assessment | None = await s.scalar(
        select(Assessment)
        .where(Assessment.line_user_id == user_id)
        .order_by(Assessment.created_at.desc(), Assessment.id.desc())
        .limit(1)
    )
    return found


# -- subscriptions ----------------------------------------------------------------------------


class Merge(Enum):
    """How new topics meet the ones a subscription already has."""

    #: The user chose the whole list (the subscribe conversation): it replaces the old one.
    REPLACE = "replace"
    #: An assessment's result adds its topics first and keeps the earlier ones of an active
    #: subscription after them: a result adds, never takes away.
    ADD = "add"


async def load_subscription(s: AsyncSession, user_id: str) -> Subscription | None:
    """The user's one subscription row, active or not."""
    return await s.get(Subscription, user_id)


async def save_subscription(
    s: AsyncSession,
    user_id: str,
    topics: Sequence[str],
    provinces: Sequence[str],
    *,
    stage: int | None,
    merge: Merge,
) -> Subscription:
    """Write the user's one subscription row, active, with ``stage`` (None: not assessed)."""
    row = await s.get(Subscription, user_id)
    if row is None:
        row = Subscription(
            line_user_id=user_id,
            topics=list(topics),
            provinces=list(provinces),
            stage=stage,
            active=True,
        )
        s.add(row)
        return row
    wanted = list(topics)
    if merge is Merge.ADD:
        kept = list(row.topics or []) if row.active else []
        wanted += [t for t in kept if t not in wanted]
    row.topics = wanted
    row.provinces = list(provinces)
    row.stage = stage
    row.active = True
    row.updated_at = utcnow()
    return row


async def set_topics(s: AsyncSession, user_id: str, topics: Sequence[str]) -> None:
    """Keep following only ``topics`` (some were stopped)."""
    await s.execute(
        update(Subscription)
        .where(Subscription.line_user_id == user_id)
        .values(topics=list(topics), updated_at=utcnow())
    )


async def deactivate(s: AsyncSession, user_id: str) -> bool:
    """Stop every notice to the user (unsubscribe, unfollow); True if one was active."""
    result = await s.execute(
        update(Subscription)
        .where(Subscription.line_user_id == user_id, Subscription.active.is_(True))
        .values(active=False, updated_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


# -- staff hand-offs --------------------------------------------------------------------------


async def handed_off(s: AsyncSession | AsyncConnection, user_id: str) -> bool:
    """Is this chat with staff right now (the bot stays quiet for it)? Takes a plain
    connection too: the pipeline asks before every message and needs no ORM session."""
    found = await s.scalar(
        select(Handoff.line_user_id).where(
            Handoff.line_user_id == user_id, Handoff.until > utcnow()
        )
    )
    return found is not None


# -- unanswered messages ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnansweredText(MergedWrite):
    """The ``Turn.write`` change keeping a text the bot could not answer for operators, with
    no user id (PDPA; ``of`` cuts each field to its column). The texts of answers stored
    together go in one insert, and on PostgreSQL in the answer's own statement
    (``bot.pipeline.answer_statement``). A failure to keep them never costs the users their
    answers: the general way runs the insert in a savepoint and logs what went wrong."""

    text: str
    best_intent: str | None
    confidence: float | None
    best_guide: str | None = None

    @classmethod
    def of(
        cls,
        text: str,
        best_intent: str | None,
        confidence: float | None,
        best_guide: str | None = None,
    ) -> UnansweredText:
        finite = confidence is not None and math.isfinite(confidence)
        return cls(
            text[:UNANSWERED_CHARS],
            best_intent[:NAME_CHARS] if best_intent else None,
            float(confidence) if finite and confidence is not None else None,
            best_guide[:NAME_CHARS] if best_guide else None,
        )

    def row(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "best_intent": self.best_intent,
            "confidence": self.confidence,
            "best_guide": self.best_guide,
        }

    @classmethod
    async def run_all(cls, s: AsyncSession, changes: Sequence[UnansweredText]) -> None:
        """One insert; if the database refuses it, each text on its own, so one bad text
        loses only itself."""
        now = utcnow()
        rows = [{**change.row(), "created_at": now} for change in changes]
        if await _keep_texts(s, rows) or len(rows) == 1:
            return
        for row in rows:
            await _keep_texts(s, [row])


async def _keep_texts(s: AsyncSession, rows: list[dict[str, Any]]) -> bool:
    """Insert unanswered texts in a savepoint (the answers' transaction survives a refusal,
    which is logged): True when kept."""
    try:
        async with s.begin_nested():
            await s.execute(insert(Unanswered), rows)
    except Exception as exc:  # the users' answers matter more than the operators' log
        log.warning(
            "unanswered message not kept", extra={"error": type(exc).__name__, "count": len(rows)}
        )
        return False
    return True


# -- guides -----------------------------------------------------------------------------------

#: The counters of ``GuideStat`` that ``GuideCount`` may add to.
GUIDE_COUNTERS = ("shown", "offered", "helpful", "unhelpful")


@dataclass(frozen=True)
class GuideCount(MergedWrite):
    """The ``Turn.write`` change adding one to a guide's counter for the day; the counts of
    answers stored together are summed into one call."""

    guide_id: str
    counter: str
    day: dt.date

    def __post_init__(self) -> None:
        if self.counter not in GUIDE_COUNTERS:
            raise ValueError(f"unknown guide counter {self.counter!r}")

    @classmethod
    async def run_all(cls, s: AsyncSession, changes: Sequence[GuideCount]) -> None:
        await s.execute(_guide_upsert(s.get_bind().dialect.name), cls.rows(changes))

    @staticmethod
    def rows(changes: Sequence[GuideCount]) -> list[dict[str, Any]]:
        """The guides' day rows these changes add to, summed, in lock order."""
        sums: dict[tuple[str, dt.date], dict[str, int]] = {}
        for change in changes:
            counts = sums.setdefault(
                (change.guide_id, change.day), dict.fromkeys(GUIDE_COUNTERS, 0)
            )
            counts[change.counter] += 1
        return [  # in key order: two transactions never wait for each other crosswise
            {"guide_id": guide, "day": day, **counts}
            for (guide, day), counts in sorted(sums.items())
        ]


_GUIDE_UPSERTS: dict[str, Any] = {}


def _guide_upsert(dialect: str) -> Any:
    """Built once per dialect: every counter adds what the row brings."""
    found = _GUIDE_UPSERTS.get(dialect)
    if found is None:
        table: Table = GuideStat.__table__  # type: ignore[assignment]
        ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
        found = ins.on_conflict_do_update(
            index_elements=["guide_id", "day"],
            set_={c: getattr(table.c, c) + getattr(ins.excluded, c) for c in GUIDE_COUNTERS},
        )
        _GUIDE_UPSERTS[dialect] = found
    return found


async def guide_totals(s: AsyncSession, since: dt.date | None = None) -> dict[str, dict[str, int]]:
    """Each guide's counters summed over the days from ``since`` (all days when None)."""
    columns = [func.sum(getattr(GuideStat, c)) for c in GUIDE_COUNTERS]
    query = select(GuideStat.guide_id, *columns).group_by(GuideStat.guide_id)
    if since is not None:
        query = query.where(GuideStat.day >= since)
    rows = (await s.execute(query)).all()
    return {
        row[0]: {c: int(v or 0) for c, v in zip(GUIDE_COUNTERS, row[1:], strict=True)}
        for row in rows
    }
