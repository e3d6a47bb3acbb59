"""The parts every recommendation card shares: its heading, the "why", the check note, buttons.

Courses and export programmes are both *offers* (one can apply for them, they have dates,
a cost and an agency to check with), so their cards end the same way.

The "details" button is a postback ``action=card&id=<entry id>``; the courses handler
answers it with :func:`bot.content.cards.details_for`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.content.cards.flex import (
    ACCENT,
    GREY,
    LINE_MAX,
    NAME_MAX,
    NOTE,
    NOTE_MAX,
    bubble,
    button,
    row,
    safe_uri,
    text,
)
from bot.content.cards.wording import cost_text, status_label
from bot.content.replies import Replies
from bot.insights.links import official
from bot.kb.loader import Knowledge
from bot.kb.queries import entry_contact_lines
from bot.kb.schemas import Contact, Course, ExportProgramme, Provenance
from bot.line.messages import PostbackAction, UriAction, fit, postback_data

__all__ = [
    "DETAILS_ACTION",
    "Offer",
    "check_note",
    "details_button",
    "heading",
    "note_key",
    "offer_bubble",
    "offer_rows",
    "official_or_details",
    "why_line",
]

#: Postback action of the "details" button: ``action=card&id=<entry id>``.
DETAILS_ACTION = "card"
#: What one can apply for: a course or support offer, or an export programme.
Offer = Course | ExportProgramme
#: Contact lines a card's note shows (the details message shows them all).
_CONTACTS_MAX = 2


def details_button(entry_id: str, replies: Replies) -> PostbackAction:
    """The "details" postback; the courses handler answers it with ``details_for``."""
    label = replies.text("cards.button_details")
    return PostbackAction(label, postback_data(DETAILS_ACTION, id=entry_id), display_text=label)


def heading(name: str, agency: str) -> list[dict[str, Any]]:
    """The top of every card: the name in bold, who runs it in grey, then a rule."""
    return [
        text(fit(name, NAME_MAX), weight="bold", size="md", maxLines=4),
        text(fit(agency, LINE_MAX), size="xs", color=GREY),
        {"type": "separator", "margin": "md"},
    ]


def note_key(provenance: Provenance) -> str:
    """The reply key of the "please check with the agency" note: stronger for samples."""
    return "cards.note_sample" if provenance.status == "sample" else "cards.note_check"


def check_note(
    kb: Knowledge, replies: Replies, key: str, agency: str, contact: Contact | None = None
) -> list[dict[str, Any]]:
    """The check-with-the-agency note (reply ``key``) and how to reach them."""
    note = replies.text(key)
    parts = [text(fit(note, NOTE_MAX), size="xxs", color=NOTE, margin="md")]
    lines = entry_contact_lines(kb, agency, contact)[:_CONTACTS_MAX]
    if lines:
        contacts = replies.text("cards.contact", contacts=" · ".join(lines))
        parts.append(text(fit(contacts, NOTE_MAX), size="xxs", color=GREY))
    return parts


def why_line(why: str | None, replies: Replies) -> list[dict[str, Any]]:
    """Why this card is recommended (from the assessment), if there is a reason to say."""
    if not why:
        return []
    line = replies.text("cards.why", text=why)
    return [text(fit(line, LINE_MAX), size="xs", color=ACCENT, margin="md")]


def official_or_details(url: str | None, entry_id: str, replies: Replies) -> list[dict[str, Any]]:
    """Details always (it carries the sample note and contacts); the official page first."""
    buttons: list[dict[str, Any]] = []
    link = safe_uri(url)
    if link:
        # Counted through the bot's redirect in a citizen's turn (bot.insights.links).
        link = official(link, entry_id)
        buttons.append(button(UriAction(replies.text("cards.button_official"), link), True))
    buttons.append(button(details_button(entry_id, replies), not buttons))
    return buttons


def offer_rows(
    offer: Offer, when: str, unconfirmed: bool, replies: Replies, on: dt.date
) -> list[dict[str, Any]]:
    """The rows every offer card ends its body with: when, what it costs, can one apply."""
    return [
        row(replies.text("cards.label_dates"), when),
        row(replies.text("cards.label_cost"), cost_text(offer.cost, replies)),
        row(
            replies.text("cards.label_status"),
            status_label(offer.schedule, unconfirmed, replies, on),
        ),
    ]


def offer_bubble(
    offer: Offer,
    kb: Knowledge,
    replies: Replies,
    body: list[dict[str, Any]],
    optional: list[dict[str, Any]],
    unconfirmed: bool,
) -> dict[str, Any]:
    """An offer's bubble: ``body``, then ``optional`` parts and (for an unconfirmed offer)
    the check note, which give way first if the bubble is too big; official and details
    buttons."""
    if unconfirmed:
        optional = optional + check_note(
            kb, replies, note_key(offer.provenance), offer.agency, offer.contact
        )
    buttons = official_or_details(offer.url, offer.id, replies)
    return bubble(body + optional, buttons, optional=len(optional))
