"""The answer to a card's "details" button (postback ``action=card&id=<entry id>``)."""

from __future__ import annotations

from bot.content.cards.course import course_details
from bot.content.cards.programme import programme_details
from bot.content.replies import Replies
from bot.kb.loader import Knowledge

__all__ = ["details_for"]


def details_for(entry_id: str, kb: Knowledge, replies: Replies) -> str | None:
    """The full details of the course or programme with this id (None: no longer known)."""
    for course in kb.courses:
        if course.id == entry_id:
            return course_details(course, kb, replies)
    for programme in kb.programmes:
        if programme.id == entry_id:
            return programme_details(programme, kb, replies)
    return None
