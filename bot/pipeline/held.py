"""Answers held for a tap: ``help.button_result`` instead of a paid push when an answer is late.

A reply token lives about a minute. When a handler is still working as the token gets old
(``REPLY_LATER_AFTER_SECONDS``), the pipeline answers at once with a short "ready soon" text
and a ``help.button_result`` quick reply (``later_offer``), and when the answer is ready it is
stored in the event's row, status ``held``, instead of pushed. The tap is a postback
``action=later&e=<event id>`` with a fresh reply token: its handler (``handlers.help``) sends
the held messages as its own reply and marks the row done in that answer's transaction, so a
held answer goes out once. Held answers nobody asked for are pruned with the event log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.replies import Replies
from bot.line.messages import PostbackAction, Text, postback_data
from bot.storage.db import EventLog

#: Postback action of the ``help.button_result`` button; ``e`` is the event whose answer waits.
LATER = "later"
#: Event-log status of an answer waiting for its tap, and the delivery it gets when taken.
HELD = "held"
TAKEN = "later"


def later_button(replies: Replies, event_id: str) -> PostbackAction:
    """The quick reply that fetches a held answer."""
    label = replies.text("help.button_result")
    return PostbackAction(label=label, data=postback_data(LATER, e=event_id), display_text=label)


def later_offer(replies: Replies, event_id: str) -> Text:
    """The "ready soon, tap to see it" reply sent with the ageing token."""
    return Text(replies.text("help.result_later"), (later_button(replies, event_id),))


async def find(s: AsyncSession, event_id: str, chat_id: str) -> tuple[str | None, list[Any]]:
    """The status of the chat's event ``event_id`` and, while held, its messages."""
    row = (
        await s.execute(
            select(EventLog.status, EventLog.outbox).where(
                EventLog.webhook_event_id == event_id, EventLog.chat_id == chat_id
            )
        )
    ).first()
    if row is None:
        return None, []
    outbox = row.outbox if isinstance(row.outbox, dict) else {}
    messages = outbox.get("messages") if row.status == HELD else None
    return str(row.status), list(messages or [])


def taken(event_id: str) -> Callable[[AsyncSession], Awaitable[object]]:
    """The ``Turn.write`` that closes a held answer as delivered with this turn's reply."""

    async def write(s: AsyncSession) -> None:
        await s.execute(
            update(EventLog)
            .where(EventLog.webhook_event_id == event_id, EventLog.status == HELD)
            .values(status="done", delivery=TAKEN, outbox=None, held_at=None)
        )

    return write
