"""A course or support offer: its card, and everything we know about it as one message."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.content.cards.detail_lines import closing_lines, opening_lines, schedule_lines
from bot.content.cards.flex import row
from bot.content.cards.parts import heading, offer_bubble, offer_rows, why_line
from bot.content.cards.wording import agency_name, dates_text, format_label, span
from bot.content.replies import Replies
from bot.kb.loader import Knowledge, today
from bot.kb.queries import needs_check
from bot.kb.schemas import Course

__all__ = ["course_bubble", "course_details"]


def course_bubble(
    course: Course,
    kb: Knowledge,
    replies: Replies,
    *,
    why: str | None = None,
    on: dt.date | None = None,
) -> dict[str, Any]:
    """A course or support offer as a Flex bubble."""
    on = on or today()
    unconfirmed = needs_check(course.provenance, course.schedule, on)
    body: list[dict[str, Any]] = [
        *heading(course.name.th, agency_name(kb, course.agency)),
        row(replies.text("cards.label_format"), format_label(course.format, replies)),
        *offer_rows(course, dates_text(course.schedule, replies), unconfirmed, replies, on),
    ]
    return offer_bubble(course, kb, replies, body, why_line(why, replies), unconfirmed)


def course_details(
    course: Course, kb: Knowledge, replies: Replies, on: dt.date | None = None
) -> str:
    """Everything we know about a course, as one text message (sample note included)."""
    on = on or today()
    r = replies.text
    unconfirmed = needs_check(course.provenance, course.schedule, on)
    lines = opening_lines(course, kb, replies)
    lines.append(r("cards.details_format", format=format_label(course.format, replies)))
    if course.duration_text:
        lines.append(r("cards.details_duration", duration=course.duration_text.th))
    when = span(course.schedule.start_date, course.schedule.end_date, replies)
    lines += schedule_lines(course, when, unconfirmed, replies, on)
    if course.eligibility and course.eligibility.text:
        lines.append(r("cards.details_eligibility", text=course.eligibility.text.th))
    if course.places.nationwide or not course.places.province_codes:
        places = r("cards.details_nationwide")
    else:
        places = ", ".join(
            kb.places.provinces[c].name_th if c in kb.places.provinces else c
            for c in course.places.province_codes
        )
    lines.append(r("cards.details_places", places=places))
    lines += closing_lines(course, unconfirmed, kb, replies)
    return "\n".join(lines)
