"""The insight tables: raw moments per person, and the rollup the views read.

``insight_events`` is the only place that knows who did what; it never leaves the
database (the views read ``insights_rollup``), it is erased with the person (the privacy
module finds its ``line_user_id`` column) and the days an erasure touches are marked in
``insights_dirty`` so the next rollup no longer counts them.

Unknown dimensions are stored as ``""`` (and stage as 0), never NULL, so they group and
form primary keys the same way on SQLite and PostgreSQL. In ``insights_rollup``,
:data:`ALL` (``"*"``) in ``province`` or ``key`` marks a total row: distinct people over every
value of that column, which is not the sum of its cells (one person can ask about two
topics). Sector ``*`` with stage :data:`ALL_STAGES` totals over every sector and stage, so a
view with neither filter counts exactly (a person whose assessment changed within the period
is one person there, two when the view adds up sectors or stages).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import BigInteger, Date, DateTime, Float, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import Base, utcnow

#: The value of ``province``, ``key`` or ``sector`` in a rollup row that totals over that
#: column (``sector`` is ``*`` only together with ``stage`` :data:`ALL_STAGES`).
ALL: Final = "*"
#: The ``stage`` of a rollup row that totals over every sector and stage (distinct people).
ALL_STAGES: Final = -1
KEY_CHARS: Final = 100

# Kinds of moment (``insight_events.kind``) and what their ``key`` holds.
FOLLOWED: Final = "followed"  # key: ""
UNFOLLOWED: Final = "unfollowed"  # key: ""
ASKED: Final = "asked"  # key: topic code ("" when the request named none)
INTENT: Final = "intent"  # key: the intent or "guide:<id>" answered
ASSESSMENT_STARTED: Final = "assessment_started"  # key: ""
ASSESSMENT_FINISHED: Final = "assessment_finished"  # key: ""; stage/sector set
DIGITAL_LOW: Final = "digital_low"  # key: ""; finished with a low digital-skills rating
RECOMMENDATION_OPENED: Final = "recommendation_opened"  # key: course or programme id
OFFICIAL_CLICKED: Final = "official_clicked"  # key: course or programme id
GUIDE_SHOWN: Final = "guide_shown"  # key: guide id
GUIDE_HELPFUL: Final = "guide_helpful"  # key: guide id
GUIDE_UNHELPFUL: Final = "guide_unhelpful"  # key: guide id
HANDOFF: Final = "handoff"  # key: agency code or ""
UNANSWERED: Final = "unanswered"  # key: theme (the best guide or intent guessed) or ""
EXPORT_INTEREST: Final = "export_interest"  # key: market code ("" when none named)
NO_COURSE: Final = "no_course"  # key: topic code asked where no course serves the province
NOTICE_DELIVERED: Final = "notice_delivered"  # key: course id of the notice
NOTICE_UNSUBSCRIBED: Final = "notice_unsubscribed"  # key: course id of the last notice or ""

KINDS: Final = (
    FOLLOWED,
    UNFOLLOWED,
    ASKED,
    INTENT,
    ASSESSMENT_STARTED,
    ASSESSMENT_FINISHED,
    DIGITAL_LOW,
    RECOMMENDATION_OPENED,
    OFFICIAL_CLICKED,
    GUIDE_SHOWN,
    GUIDE_HELPFUL,
    GUIDE_UNHELPFUL,
    HANDOFF,
    UNANSWERED,
    EXPORT_INTEREST,
    NO_COURSE,
    NOTICE_DELIVERED,
    NOTICE_UNSUBSCRIBED,
)

#: Rollup grains: the periods counted exactly (distinct people). A quarter is shown as its
#: three months added up (``FILTER_GRAINS``; see ``bot.insights.views.window``).
GRAINS: Final = ("week", "month")
#: The periods a view's filter can ask for.
FILTER_GRAINS: Final = ("week", "month", "quarter")


class InsightEvent(Base):
    """One moment of one person, with the profile they had then (raw; erased with them)."""

    __tablename__ = "insight_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    #: The Thai day (Asia/Bangkok) the moment happened.
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    line_user_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    #: Province code (2 digits) the moment is about: a place named, else the person's own.
    province: Mapped[str] = mapped_column(String(2), default="")
    #: The person's sector (assessment) at the time, "" when unknown.
    sector: Mapped[str] = mapped_column(String(32), default="")
    #: The person's stage 1-5 at the time, 0 when unknown.
    stage: Mapped[int] = mapped_column(SmallInteger, default=0)
    key: Mapped[str] = mapped_column(String(KEY_CHARS), default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InsightRollup(Base):
    """Distinct people and moments per period and cell (the only table the views read)."""

    __tablename__ = "insights_rollup"

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: First day of the week (Monday), month or quarter.
    start: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    province: Mapped[str] = mapped_column(String(2), primary_key=True)
    sector: Mapped[str] = mapped_column(String(32), primary_key=True)
    stage: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_CHARS), primary_key=True)
    people: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(Integer)


class InsightDirty(Base):
    """A day whose periods the next rollup recomputes (new moments, or an erasure)."""

    __tablename__ = "insights_dirty"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InsightRun(Base):
    """One rollup run: when, what it recomputed and how long it took (the page's "as of")."""

    __tablename__ = "insights_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    days: Mapped[int] = mapped_column(Integer, default=0)
    periods: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float | None] = mapped_column(Float)
