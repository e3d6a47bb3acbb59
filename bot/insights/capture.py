"""Capturing the moments the insight views count, as the bot answers.

Handlers say what happened (:func:`note`): a follow, an assessment finished, a guide's 👎.
Nothing is written then: every moment of one turn is gathered into one :class:`Moments`
change, which the pipeline runs with ``Turn.write`` in the transaction that stores the
answer, so a retried or redelivered event never writes twice. That change reads the
person's profile once (their latest assessment: sector, stage, province) and inserts
every row in one statement: one small indexed read and one insert per turn that records
anything, and nothing at all for a turn that records nothing.

Each row carries the person's profile at the time. Its province is the place the message
names, else the person's own province (latest assessment); "" and stage 0 when unknown.
Keys are codes (topic, guide, agency, market, course), never the person's words.

Not recorded: console simulator conversations (their events carry :data:`SIMULATOR_MARK`),
group chats, and a turn that erases the person (PDPA).

Notice deliveries are not turns: :func:`record_deliveries` adds them in bulk, in the
transaction that records the deliveries. Before an erasure deletes a person's rows,
:func:`mark_erased_days` lists the days they touched in ``insights_dirty`` so the next
rollup no longer counts them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Table, bindparam, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.insights import records
from bot.insights.records import KEY_CHARS, InsightDirty, InsightEvent
from bot.storage.daily import local_day
from bot.storage.db import Assessment, NoticeDelivery, utcnow
from bot.storage.json_values import among
from bot.storage.merged import MergedWrite

if TYPE_CHECKING:
    from bot.dialogue.router import Turn
    from bot.line.events import InboundEvent
    from bot.nlu import Parse

#: A field the console simulator sets on the events it makes (never in LINE's own JSON):
#: an operator's test conversation is not a citizen's and is never counted.
SIMULATOR_MARK: Final = "consoleSimulator"
#: Entity types that name a place (their codes start with the province's two digits).
PLACE_KINDS: Final = ("province", "district", "subdistrict")
SECTOR_CHARS: Final = 32

_EVENTS: Table = InsightEvent.__table__  # type: ignore[assignment]
_DIRTY: Table = InsightDirty.__table__  # type: ignore[assignment]
_INSERT_EVENTS = insert(_EVENTS)  # built once: the pipeline runs it for most answers
_ASSESSMENTS: Table = Assessment.__table__  # type: ignore[assignment]
# Built once on the table, not the mapped class: the pipeline reads a profile for most
# answers, and an ORM select built per call cost ~0.17 ms of CPU more than this one.
_LATEST_PROFILE = (
    select(_ASSESSMENTS.c.province_code, _ASSESSMENTS.c.answers, _ASSESSMENTS.c.stage)
    .where(_ASSESSMENTS.c.line_user_id == bindparam("user_id"))
    .order_by(_ASSESSMENTS.c.created_at.desc(), _ASSESSMENTS.c.id.desc())
    .limit(1)
)

Executor = AsyncSession | AsyncConnection


@dataclass(frozen=True)
class Profile:
    """The dimensions every moment carries: who the person was then (never who they are)."""

    province: str = ""
    sector: str = ""
    stage: int = 0


@dataclass(frozen=True)
class Moment:
    """One thing that happened; a dimension left None is taken from the profile."""

    kind: str
    key: str = ""
    province: str | None = None
    sector: str | None = None
    stage: int | None = None
    #: The key is the course of the person's last notice (read when the turn is stored).
    last_notice: bool = False


@dataclass
class Moments(MergedWrite):
    """The ``Turn.write`` change holding every moment of one turn (see the module); the
    moments of answers stored together go in one profile read and one insert."""

    user_id: str
    day: dt.date
    #: The province the message names ("" when none): it wins over the person's own.
    named_province: str = ""
    items: list[Moment] = field(default_factory=list)
    #: Dropped (an erasure in the same turn): writes nothing.
    cancelled: bool = False

    @classmethod
    async def run_all(cls, s: AsyncSession, changes: Sequence[Moments]) -> None:
        live = [c for c in changes if not c.cancelled and c.items]
        if len(live) == 1:
            only = live[0]
            await store(s, only.user_id, only.day, only.items, only.named_province)
        elif live:
            await store_many(s, live)


# -- what a turn records ----------------------------------------------------------------------


def recorded(event: InboundEvent) -> bool:
    """Is this event a citizen's, in a one-to-one chat (not the console simulator's)?"""
    return bool(event.user_id) and event.one_to_one and event.raw.get(SIMULATOR_MARK) is not True


def named_province(parse: Parse | None) -> str | None:
    """The province a message names: a province, or the province of a named district or
    subdistrict when every place the name could mean lies in that one province."""
    if parse is None:
        return None
    for kind in PLACE_KINDS:
        for entity in parse.entities_of(kind):
            codes = entity.candidates or (entity.value,)
            provinces = {code[:2] for code in codes}
            if len(provinces) == 1:
                return provinces.pop()
    return None


def moments_of(turn: Turn) -> Moments | None:
    """The turn's moments change, added to its writes at the first moment (None: this
    turn is not recorded)."""
    event = turn.event
    if not recorded(event) or event.user_id is None:
        return None
    for change in turn.writes:
        if isinstance(change, Moments):
            return change
    found = Moments(event.user_id, local_day(), named_province(turn.nlu) or "")
    turn.write(found)
    return found


def note(
    turn: Turn,
    kind: str,
    key: str = "",
    *,
    province: str | None = None,
    sector: str | None = None,
    stage: int | None = None,
    last_notice: bool = False,
) -> None:
    """Record a moment of ``kind`` with this turn's answer (nothing for the simulator)."""
    if kind not in records.KINDS:
        raise ValueError(f"unknown insight kind {kind!r}")
    found = moments_of(turn)
    if found is not None:
        found.items.append(Moment(kind, key, province, sector, stage, last_notice))


def finish(turn: Turn) -> None:
    """The pipeline's part, after the handler: what the message asked about and which
    intent answered it; and nothing at all for a turn that erases the person."""
    if turn.forget:
        for change in turn.writes:
            if isinstance(change, Moments):
                change.cancelled = True
        return
    answering = turn.answering
    if not answering or turn.event.type not in ("message", "postback"):
        return
    if turn.event.type == "message" and turn.event.text:
        topics = [e.value for e in turn.nlu.entities_of("topic")] if turn.nlu else []
        for topic in dict.fromkeys(topics) or ("",):
            note(turn, records.ASKED, topic)
    note(turn, records.INTENT, answering)


# -- writing ----------------------------------------------------------------------------------


async def profile_of(s: Executor, user_id: str) -> Profile:
    """The person's latest assessment as dimensions (one small indexed read)."""
    row = (await s.execute(_LATEST_PROFILE, {"user_id": user_id})).first()
    if row is None:
        return Profile()
    return _profile(row.province_code, row.answers, row.stage)


def _profile(province: str | None, answers: Any, stage: int | None) -> Profile:
    sector = answers.get("sector") if isinstance(answers, dict) else None
    return Profile(
        province=province or "",
        sector=sector if isinstance(sector, str) else "",
        stage=int(stage or 0),
    )


async def last_notice(s: Executor, user_id: str) -> str:
    """The course of the last notice the person was sent ("" when none)."""
    found = await s.scalar(
        select(NoticeDelivery.course_id)
        .where(NoticeDelivery.line_user_id == user_id, NoticeDelivery.status == "sent")
        .order_by(NoticeDelivery.at.desc(), NoticeDelivery.course_id)
        .limit(1)
    )
    return str(found or "")


def row(
    user_id: str, day: dt.date, at: dt.datetime, moment: Moment, profile: Profile, named: str = ""
) -> dict[str, Any]:
    """One ``insight_events`` row: the moment's own dimensions, else the profile's."""
    province = moment.province if moment.province is not None else (named or profile.province)
    return {
        "day": day,
        "line_user_id": user_id,
        "kind": moment.kind,
        "province": province[:2],
        "sector": (moment.sector if moment.sector is not None else profile.sector)[:SECTOR_CHARS],
        "stage": moment.stage if moment.stage is not None else profile.stage,
        "key": moment.key[:KEY_CHARS],
        "at": at,
    }


async def insert_events(s: Executor, rows: Sequence[dict[str, Any]]) -> None:
    """Every row in one statement (a multi-row insert on both databases)."""
    if rows:
        await s.execute(_INSERT_EVENTS, list(rows))


async def store(
    s: Executor, user_id: str, day: dt.date, moments: Sequence[Moment], named: str = ""
) -> None:
    """One turn's moments: the profile read once (only if a moment needs it), one insert."""
    profile = await profile_of(s, user_id) if _needs_profile(moments, named) else Profile()
    notice = await last_notice(s, user_id) if any(m.last_notice for m in moments) else ""
    at = utcnow()
    rows = [
        row(user_id, day, at, replace(m, key=notice) if m.last_notice else m, profile, named)
        for m in moments
    ]
    await insert_events(s, rows)


async def store_many(s: Executor, changes: Sequence[Moments]) -> None:
    """Several turns' moments: one profile read for every person who needs one, one insert."""
    needs = [c.user_id for c in changes if _needs_profile(c.items, c.named_province)]
    profiles = await profiles_of(s, list(dict.fromkeys(needs))) if needs else {}
    at = utcnow()
    rows: list[dict[str, Any]] = []
    for change in changes:
        notice = ""
        if any(m.last_notice for m in change.items):  # rare (a notice's buttons): one read
            notice = await last_notice(s, change.user_id)
        profile = profiles.get(change.user_id, Profile())
        rows.extend(
            row(
                change.user_id,
                change.day,
                at,
                replace(m, key=notice) if m.last_notice else m,
                profile,
                change.named_province,
            )
            for m in change.items
        )
    await insert_events(s, rows)


def _needs_profile(moments: Sequence[Moment], named: str) -> bool:
    return any(
        m.sector is None or m.stage is None or (m.province is None and not named) for m in moments
    )


def moments(
    user_id: str, items: Iterable[Moment], day: dt.date | None = None, named: str = ""
) -> Moments:
    """A ``Turn.write`` change recording ``items`` for a user (outside a handler's turn)."""
    return Moments(user_id, day or local_day(), named, list(items))


# -- notices ----------------------------------------------------------------------------------


async def profiles_of(s: Executor, user_ids: Sequence[str]) -> dict[str, Profile]:
    """The latest assessment of each of these users, as dimensions (one query)."""
    if not user_ids:
        return {}
    rows = (
        await s.execute(
            select(
                Assessment.line_user_id,
                Assessment.province_code,
                Assessment.answers,
                Assessment.stage,
            )
            .where(among(Assessment.line_user_id, user_ids, _dialect(s)))
            .order_by(Assessment.created_at, Assessment.id)
        )
    ).all()
    return {r.line_user_id: _profile(r.province_code, r.answers, r.stage) for r in rows}


async def record_deliveries(
    s: Executor, user_ids: Sequence[str], course_ids: Sequence[str], at: dt.datetime
) -> None:
    """One ``notice_delivered`` per user and course of a sent batch, in the caller's
    transaction (the one recording the deliveries): a profile read and one insert."""
    if not user_ids or not course_ids:
        return
    profiles = await profiles_of(s, user_ids)
    day = local_day(at)
    rows = [
        row(user, day, at, Moment(records.NOTICE_DELIVERED, course), profiles.get(user, Profile()))
        for user in user_ids
        for course in course_ids
    ]
    await insert_events(s, rows)


# -- erasure ----------------------------------------------------------------------------------


async def mark_erased_days(s: Executor, user_id: str) -> None:
    """List every day the person has moments on in ``insights_dirty``, before their rows go:
    the next rollup recomputes those periods without them. A day already listed gets the new
    time: a rollup running now read the person's rows and must not clear the day after."""
    source = (
        select(InsightEvent.day, literal(utcnow(), _DIRTY.c.marked_at.type))
        .where(InsightEvent.line_user_id == user_id)
        .group_by(InsightEvent.day)
    )
    dialect = postgresql if _dialect(s) == "postgresql" else sqlite
    ins = dialect.insert(_DIRTY).from_select([_DIRTY.c.day, _DIRTY.c.marked_at], source)
    stmt = ins.on_conflict_do_update(
        index_elements=[_DIRTY.c.day], set_={"marked_at": ins.excluded.marked_at}
    )
    await s.execute(stmt)


def _dialect(s: Executor) -> str:
    bind = s.get_bind() if isinstance(s, AsyncSession) else s
    return str(bind.dialect.name)


__all__ = [
    "SIMULATOR_MARK",
    "Moment",
    "Moments",
    "Profile",
    "finish",
    "insert_events",
    "mark_erased_days",
    "moments",
    "named_province",
    "note",
    "record_deliveries",
    "recorded",
    "store",
]
