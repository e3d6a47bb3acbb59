"""The lines a details message (the answer to a card's "details" button) always has.

A course and an export programme open the same way (name, agency, partners, summary),
say when and at what cost the same way, and end the same way: the official link, the
"please check" note with contacts, how old the facts are and where they come from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.content.cards.flex import safe_uri
from bot.content.cards.parts import Offer, note_key
from bot.content.cards.wording import (
    agency_name,
    apply_text,
    as_of_text,
    cost_text,
    dates_text,
    partner_names,
    status_label,
)
from bot.content.replies import Replies
from bot.insights.links import official
from bot.kb.loader import Knowledge
from bot.kb.queries import entry_contact_lines

__all__ = ["closing_lines", "opening_lines", "schedule_lines"]


def opening_lines(offer: Offer, kb: Knowledge, replies: Replies) -> list[str]:
    """Title, agency, partners (when there are any) and the summary."""
    r = replies.text
    lines = [
        r("cards.details_title", name=offer.name.th),
        r("cards.details_agency", agency=agency_name(kb, offer.agency)),
    ]
    if offer.partners:
        names = ", ".join(partner_names(kb, offer.partners))
        lines.append(r("cards.details_partners", partners=names))
    lines.append(r("cards.details_summary", summary=offer.summary.th))
    return lines


def schedule_lines(
    offer: Offer, when: str | None, unconfirmed: bool, replies: Replies, on: dt.date
) -> list[str]:
    """The dates it runs (``when``) and the application window, whether one can apply, cost.

    Without dates or a window, the one "when" line a card shows (fiscal year, rolling, ...).
    """
    r = replies.text
    schedule = offer.schedule
    lines: list[str] = []
    if when:
        lines.append(r("cards.details_dates", dates=when))
    window = apply_text(schedule, replies)
    if window:
        lines.append(r("cards.details_apply", dates=window))
    if not when and not window:
        lines.append(r("cards.details_dates", dates=dates_text(schedule, replies)))
    lines.append(r("cards.details_status", status=status_label(schedule, unconfirmed, replies, on)))
    lines.append(r("cards.details_cost", cost=cost_text(offer.cost, replies)))
    return lines


def closing_lines(offer: Offer, unconfirmed: bool, kb: Knowledge, replies: Replies) -> list[str]:
    """The official link, the check note and contacts, the facts' date and their sources."""
    r = replies.text
    provenance = offer.provenance
    lines: list[str] = []
    link = safe_uri(offer.url)
    if link:
        # Counted through the bot's redirect in a citizen's turn (bot.insights.links).
        lines.append(r("cards.details_link", url=official(link, offer.id)))
    if unconfirmed:
        lines.append("")
        lines.append(r(note_key(provenance)))
    contacts = entry_contact_lines(kb, offer.agency, offer.contact)
    if contacts:
        lines.append(r("cards.contact", contacts=" · ".join(contacts)))
    if provenance.facts_as_of:
        lines.append(r("cards.details_facts_as_of", when=as_of_text(provenance.facts_as_of)))
    if provenance.source_urls:
        lines.append(r("cards.details_sources", urls=_source_lines(provenance.source_urls)))
    return lines


def _source_lines(urls: Sequence[str]) -> str:
    return " ".join(urls[:3])
