"""An export programme: its card (with the pre-screen's reasons), and its full details."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from bot.content.cards.detail_lines import closing_lines, opening_lines, schedule_lines
from bot.content.cards.flex import row
from bot.content.cards.parts import heading, offer_bubble, offer_rows, why_line
from bot.content.cards.reasons import reason_parts
from bot.content.cards.wording import agency_name, dates_text, programme_type_label, span
from bot.content.replies import Replies
from bot.kb.loader import Knowledge, today
from bot.kb.queries import Reason, needs_check
from bot.kb.schemas import ExportProgramme

__all__ = ["programme_bubble", "programme_details"]


def programme_bubble(
    programme: ExportProgramme,
    kb: Knowledge,
    replies: Replies,
    *,
    reasons: Sequence[Reason] = (),
    why: str | None = None,
    on: dt.date | None = None,
) -> dict[str, Any]:
    """An export programme as a Flex bubble; ``reasons`` (from the pre-screen) say why
    it does not fit yet (certain ones) or what to check first (uncertain ones)."""
    on = on or today()
    unconfirmed = needs_check(programme.provenance, programme.schedule, on)
    event = programme.event
    when = dates_text(
        programme.schedule,
        replies,
        start=event.start_date if event else None,
        end=event.end_date if event else None,
    )
    body: list[dict[str, Any]] = [
        *heading(programme.name.th, agency_name(kb, programme.agency)),
        row(
            replies.text("cards.label_type"),
            programme_type_label(programme.programme_type, replies),
        ),
        row(replies.text("cards.label_market"), _markets(programme, kb)),
        *offer_rows(programme, when, unconfirmed, replies, on),
    ]
    optional = why_line(why, replies) + reason_parts(reasons, kb, replies)
    return offer_bubble(programme, kb, replies, body, optional, unconfirmed)


def programme_details(
    programme: ExportProgramme, kb: Knowledge, replies: Replies, on: dt.date | None = None
) -> str:
    """Everything we know about an export programme, as one text message."""
    on = on or today()
    r = replies.text
    unconfirmed = needs_check(programme.provenance, programme.schedule, on)
    lines = opening_lines(programme, kb, replies)
    lines.append(
        r("cards.details_type", type=programme_type_label(programme.programme_type, replies))
    )
    lines.append(r("cards.details_markets", markets=_markets(programme, kb)))
    sectors = ", ".join(kb.sectors[s].label.th if s in kb.sectors else s for s in programme.sectors)
    lines.append(r("cards.details_sectors", sectors=sectors))
    lines.append(r("cards.details_readiness", stage=str(programme.readiness_required)))
    event = programme.event
    if event and event.venue:
        venue = ", ".join(x for x in (event.venue.th, event.city) if x)
        lines.append(r("cards.details_event", venue=venue))
    when = span(
        (event.start_date if event else None) or programme.schedule.start_date,
        (event.end_date if event else None) or programme.schedule.end_date,
        replies,
    )
    lines += schedule_lines(programme, when, unconfirmed, replies, on)
    if programme.benefits:
        lines.append(r("cards.details_benefits", text=programme.benefits.th))
    if programme.eligibility and programme.eligibility.text:
        lines.append(r("cards.details_eligibility", text=programme.eligibility.text.th))
    if programme.application_docs:
        lines.append(r("cards.details_docs"))
        lines += [r("cards.details_doc_item", text=d.th) for d in programme.application_docs]
    lines += closing_lines(programme, unconfirmed, kb, replies)
    return "\n".join(lines)


def _markets(programme: ExportProgramme, kb: Knowledge) -> str:
    """The programme's target markets in Thai (codes the knowledge no longer lists as codes)."""
    return ", ".join(kb.markets[m].name.th if m in kb.markets else m for m in programme.markets)
