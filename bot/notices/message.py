"""The digest a subscriber reads: one short text and the new courses as cards.

The same courses give exactly the same messages (no names, no per-user
wording), so every user with the same digest is reached by one multicast.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.content.cards import card_titles, carousel, course_bubble
from bot.content.menu import go_button
from bot.content.replies import Replies
from bot.kb.loader import Knowledge
from bot.kb.schemas import Course
from bot.line.messages import Message, Text


def digest_messages(courses: Sequence[Course], kb: Knowledge, replies: Replies) -> list[Message]:
    """An introduction naming the new courses, then a carousel of their cards."""
    if len(courses) == 1:
        intro = replies.text("notices.intro_one", name=courses[0].name.th)
    else:
        intro = replies.text("notices.intro_many", count=len(courses))
    stop = go_button(replies.text("notices.stop_button"), "unsubscribe")
    bubbles = [course_bubble(c, kb, replies) for c in courses]
    alt = replies.text("notices.alt_text", count=len(courses), names=card_titles(bubbles))
    cards = carousel(bubbles, alt_text=alt, quick=(stop,))
    return [Text(intro + "\n" + replies.text("notices.stop_hint")), cards]
