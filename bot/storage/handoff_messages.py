"""What a user and staff say to each other during a hand-off, for the console's inbox.

While a hand-off is open (``bot.storage.handoff``) the bot stays quiet, so without this
table staff would never see what the user wrote. The pipeline keeps each message of a
handed-off user here (:func:`keep`: the text of a text message, only the kind of any
other), and the console keeps each staff reply with the operator's name.

Kept only as long as needed (PDPA): a message goes once its hand-off has ended and it is
older than ``HANDOFF_KEEP_SECONDS`` (:func:`prune`, run by the housekeeping and when staff
end a hand-off in the console), so at the latest that long after the end. A user's
erasure (``bot.storage.privacy``) deletes every row that names them.

A staff reply is a push, which LINE counts against the monthly message quota. It is sent
exactly once: its ``X-Line-Retry-Key`` is made when the reply form is shown and stored
with the row *before* the call (:func:`send_reply`), so a form submitted twice, or sent
again after a timeout, reuses the key and LINE drops the repeat (409).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from sqlalchemy import DateTime, Integer, String, and_, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.line.calls import LineError, PermanentLineError
from bot.line.events import InboundEvent
from bot.line.messages import Message, Text
from bot.logs import user_ref
from bot.storage.db import Base, Database, Handoff, aware, utcnow
from bot.storage.handoff import OpenHandoff

log = logging.getLogger(__name__)

#: Characters of a message that are kept (the column's size); longer texts are cut.
MAX_TEXT: Final = 2000
#: Default of the ``HANDOFF_KEEP_SECONDS`` setting: how long messages stay after their
#: hand-off ended (a week: staff who take the same user up again see what was said).
KEEP_SECONDS: Final = 7 * 86_400
USER: Final = "user"
STAFF: Final = "staff"
#: A staff reply's state: stored with its retry key, maybe sent -> sent | failed.
PENDING: Final = "pending"
SENT: Final = "sent"
FAILED: Final = "failed"


class HandoffMessage(Base):
    """One message of a hand-off: from the user (``direction`` user) or from staff."""

    __tablename__ = "handoff_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line_user_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    #: user | staff
    direction: Mapped[str] = mapped_column(String(8))
    #: text, sticker, image, video, audio, file, location, postback ...
    kind: Mapped[str] = mapped_column(String(16))
    #: The text of a text message or a staff reply; None for any other kind.
    text: Mapped[str | None] = mapped_column(String(MAX_TEXT))
    #: The operator who replied (staff rows only).
    staff: Mapped[str | None] = mapped_column(String(64))
    #: The webhook event a user's message came in: a retried event is kept once.
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: A staff reply's X-Line-Retry-Key, stored before the push.
    retry_key: Mapped[str | None] = mapped_column(String(36), unique=True)
    #: A staff reply's state (``PENDING``, ``SENT``, ``FAILED``); None for the user's.
    status: Mapped[str | None] = mapped_column(String(8))


def keep_seconds(settings: Any) -> int:
    """``HANDOFF_KEEP_SECONDS`` when the settings have it, else ``KEEP_SECONDS``."""
    return max(0, int(getattr(settings, "handoff_keep_seconds", KEEP_SECONDS)))


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 1] + "…"


def _kind(event: InboundEvent) -> str:
    return (event.message_type if event.type == "message" else event.type) or event.type


# -- the user's side ----------------------------------------------------------------------


async def keep(db: Database, event: InboundEvent) -> None:
    """Keep a handed-off user's message (the pipeline calls this instead of answering).

    Once per event (a retry finds its row). A failure is logged, never raised: the bot
    must stay quiet for the user whatever happens to the copy kept for staff.
    """
    row = HandoffMessage(
        line_user_id=event.chat_id,
        at=utcnow(),
        direction=USER,
        kind=_kind(event)[:16],
        text=_clip(event.text) if event.type == "message" else None,
        event_id=event.id[:64],
    )
    try:
        async with db.session() as s, s.begin():
            if await s.scalar(
                select(HandoffMessage.id).where(HandoffMessage.event_id == row.event_id)
            ):
                return
            s.add(row)
    except IntegrityError:
        return  # the same event kept at the same moment by another try
    except SQLAlchemyError as exc:
        log.error(
            "hand-off message not kept",
            extra={
                "event_id": event.id,
                "chat": user_ref(event.chat_id),
                "error": type(exc).__name__,
            },
        )


# -- reading for the console --------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A user with staff now: since when, and what was said since."""

    handoff: OpenHandoff
    user_messages: int
    staff_replies: int
    last_user_at: dt.datetime | None

    @property
    def user_id(self) -> str:
        return self.handoff.user_id

    def waited(self, now: dt.datetime | None = None) -> dt.timedelta:
        """How long since the hand-off started."""
        return (now or utcnow()) - self.handoff.started_at


async def waiting(db: Database) -> list[Waiting]:
    """Every open hand-off, the longest waiting first, with its message counts."""
    now = utcnow()
    async with db.session() as s:
        handoffs = (
            await s.scalars(select(Handoff).where(Handoff.until > now).order_by(Handoff.started_at))
        ).all()
        stmt = (
            select(
                HandoffMessage.line_user_id,
                HandoffMessage.direction,
                func.count(),
                func.max(HandoffMessage.at),
            )
            .join(
                Handoff,
                and_(
                    Handoff.line_user_id == HandoffMessage.line_user_id,
                    HandoffMessage.at >= Handoff.started_at,
                ),
            )
            .where(Handoff.until > now)
            .group_by(HandoffMessage.line_user_id, HandoffMessage.direction)
        )
        counts = {(r[0], r[1]): (int(r[2]), r[3]) for r in (await s.execute(stmt)).all()}
    out = []
    for h in handoffs:
        mine, last = counts.get((h.line_user_id, USER), (0, None))
        staff, _ = counts.get((h.line_user_id, STAFF), (0, None))
        opened = OpenHandoff(h.line_user_id, h.agency, aware(h.started_at), aware(h.until))
        out.append(Waiting(opened, mine, staff, aware(last) if last is not None else None))
    return out


@dataclass(frozen=True)
class Conversation:
    """One user's kept messages: those of the open hand-off, and earlier ones still kept."""

    user_id: str
    handoff: OpenHandoff | None
    messages: list[HandoffMessage]
    earlier: list[HandoffMessage]


async def conversation(db: Database, user_id: str) -> Conversation:
    """What ``user_id`` and staff said, oldest first, split at the open hand-off's start."""
    now = utcnow()
    async with db.session() as s:
        row = await s.get(Handoff, user_id)
        rows = (
            await s.scalars(
                select(HandoffMessage)
                .where(HandoffMessage.line_user_id == user_id)
                .order_by(HandoffMessage.at, HandoffMessage.id)
            )
        ).all()
    opened = None
    if row is not None and aware(row.until) > now:
        opened = OpenHandoff(row.line_user_id, row.agency, aware(row.started_at), aware(row.until))
    start = opened.started_at if opened is not None else now
    since = [m for m in rows if aware(m.at) >= start]
    before = [m for m in rows if aware(m.at) < start]
    return Conversation(user_id, opened, since, before)


async def staff_replies_since(db: Database, since: dt.datetime) -> int:
    """Staff replies pushed since ``since`` (each costs one message of LINE's quota)."""
    async with db.session() as s:
        found = await s.scalar(
            select(func.count()).where(
                HandoffMessage.direction == STAFF,
                HandoffMessage.status == SENT,
                HandoffMessage.at >= since,
            )
        )
    return int(found or 0)


# -- staff replies ------------------------------------------------------------------------


class Pusher(Protocol):
    """What a staff reply needs of LINE (``bot.line.client.LineClient.push``)."""

    async def push(self, to: str, messages: Sequence[Message], retry_key: str) -> bool: ...


def new_retry_key() -> str:
    """A reply's X-Line-Retry-Key (a UUID, as LINE requires), made when its form is shown."""
    return str(uuid.uuid4())


def valid_retry_key(key: str) -> bool:
    """Is ``key`` a UUID in LINE's form (what ``new_retry_key`` makes)?"""
    try:
        return str(uuid.UUID(key)) == key.lower() and len(key) == 36
    except ValueError:
        return False


class KeyTaken(ValueError):
    """The retry key belongs to a reply to another user (a form from another page)."""


Outcome = Literal["sent", "already", "failed", "unsure"]


@dataclass(frozen=True)
class ReplyResult:
    """What happened to a staff reply.

    ``sent``: LINE took it now (or had it under this key already); ``already``: this key
    was sent by an earlier or a simultaneous submit of the same form; ``failed``: LINE
    refused it for good (a 4xx); ``unsure``: LINE could not be reached or is throttling
    (quota, 5xx, timeouts): it may or may not have arrived, and trying again with the same
    key is safe.
    """

    outcome: Outcome
    #: The text that went (or was tried) under this key: a second submit with edited text
    #: sends the first text, the one LINE may have had already.
    text: str
    error: LineError | None = None


async def _claim(
    db: Database, user_id: str, text: str, staff: str, key: str
) -> tuple[HandoffMessage, bool]:
    """The reply row of ``key``: stored now (True), or found from an earlier submit."""
    async with db.session() as s, s.begin():
        found = await s.scalar(select(HandoffMessage).where(HandoffMessage.retry_key == key))
        if found is not None:
            return found, False
        row = HandoffMessage(
            line_user_id=user_id,
            at=utcnow(),
            direction=STAFF,
            kind="text",
            text=text,
            staff=staff[:64],
            retry_key=key,
            status=PENDING,
        )
        s.add(row)
    return row, True


async def _claim_or_find(
    db: Database, user_id: str, text: str, staff: str, key: str
) -> tuple[HandoffMessage, bool]:
    try:
        return await _claim(db, user_id, text, staff, key)
    except IntegrityError:  # the same form submitted twice at the same moment
        async with db.session() as s:
            found = await s.scalar(select(HandoffMessage).where(HandoffMessage.retry_key == key))
        if found is None:
            raise
        return found, False


async def _settle(db: Database, key: str, status: str) -> bool:
    """Move a pending reply to ``status``; False when another submit settled it first."""
    from bot.storage.daily import DELIVERY, STAFF_PUSH, add, local_day

    async with db.session() as s, s.begin():
        result = await s.execute(
            update(HandoffMessage)
            .where(HandoffMessage.retry_key == key, HandoffMessage.status == PENDING)
            .values(status=status)
        )
        settled = bool(getattr(result, "rowcount", 0))
        if settled and status == SENT:
            await add(s, local_day(), DELIVERY, STAFF_PUSH)  # a paid push (``bot quota``)
    return settled


async def send_reply(
    db: Database,
    line: Pusher,
    user_id: str,
    text: str,
    *,
    staff: str,
    retry_key: str,
    wrap: Callable[[str], str] | None = None,
) -> ReplyResult:
    """Push a staff reply to ``user_id`` exactly once under ``retry_key``.

    The row (text, operator, key, ``pending``) is committed before LINE is called. A key
    seen before is not stored again: a sent one is not sent again, an unsure one is sent
    again with the same key (LINE answers 409 if the first try arrived). ``wrap`` turns
    the stored text into what the user reads (the bot's sentence around staff's words).
    KeyTaken when the key is another user's reply's.
    """
    row, fresh = await _claim_or_find(db, user_id, _clip(text) or "", staff, retry_key)
    if row.line_user_id != user_id or row.direction != STAFF:
        raise KeyTaken("this reply key belongs to another conversation")
    stored = row.text or ""
    if not fresh and row.status == SENT:
        return ReplyResult("already", stored)
    if not fresh and row.status == FAILED:
        return ReplyResult("failed", stored)
    words = wrap(stored) if wrap is not None else stored
    try:
        await line.push(user_id, [Text(words)], retry_key)
    except PermanentLineError as exc:
        await _settle(db, retry_key, FAILED)
        log.warning(
            "staff reply refused by LINE",
            extra={"chat": user_ref(user_id), "status": exc.status},
        )
        return ReplyResult("failed", stored, exc)
    except LineError as exc:
        log.warning(
            "staff reply not confirmed by LINE",
            extra={"chat": user_ref(user_id), "status": exc.status},
        )
        return ReplyResult("unsure", stored, exc)
    # Sent now, or LINE had this key already (409): delivered once either way. A submit
    # running at the same moment may have settled it: then this one only saw it go.
    return ReplyResult("sent" if await _settle(db, retry_key, SENT) else "already", stored)


# -- retention ----------------------------------------------------------------------------


def _expired(now: dt.datetime, keep: int) -> Any:
    """Rows older than the retention that belong to no open hand-off."""
    cutoff = now - dt.timedelta(seconds=keep)
    still_open = exists().where(
        Handoff.line_user_id == HandoffMessage.line_user_id,
        Handoff.until > now,
        Handoff.started_at <= HandoffMessage.at,
    )
    return and_(HandoffMessage.at < cutoff, ~still_open)


async def prune_in(s: AsyncSession, settings: Any) -> int:
    """Delete the messages of ended hand-offs older than ``HANDOFF_KEEP_SECONDS`` (in the
    caller's transaction: the housekeeping's); how many went."""
    result = await s.execute(
        delete(HandoffMessage).where(_expired(utcnow(), keep_seconds(settings)))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def prune(db: Database, settings: Any) -> int:
    """``prune_in`` in a transaction of its own (after staff end a hand-off)."""
    async with db.session() as s, s.begin():
        return await prune_in(s, settings)


__all__ = [
    "FAILED",
    "KEEP_SECONDS",
    "MAX_TEXT",
    "PENDING",
    "SENT",
    "STAFF",
    "USER",
    "Conversation",
    "HandoffMessage",
    "KeyTaken",
    "ReplyResult",
    "Waiting",
    "conversation",
    "keep",
    "keep_seconds",
    "new_retry_key",
    "prune",
    "prune_in",
    "send_reply",
    "staff_replies_since",
    "valid_retry_key",
    "waiting",
]
