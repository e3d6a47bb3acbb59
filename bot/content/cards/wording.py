"""The facts of an offer in Thai: who runs it, its format or type, when, what it costs.

Cards and the details message word these the same way. Every sentence comes from
``knowledge/replies/cards.yaml``; dates are Thai with Buddhist-era years.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pythainlp.util import thai_strftime

from bot.content.replies import Replies
from bot.kb.loader import Knowledge
from bot.kb.queries import availability, thai_date
from bot.kb.schemas import Cost, Name, Schedule

__all__ = [
    "agency_name",
    "apply_text",
    "as_of_text",
    "cost_text",
    "dates_text",
    "format_label",
    "partner_names",
    "programme_type_label",
    "span",
    "status_label",
]


def agency_name(kb: Knowledge, code: str) -> str:
    """The agency's Thai name, or its code when the agency is not listed."""
    agency = kb.agencies.get(code)
    return agency.name.th if agency else code


def partner_names(kb: Knowledge, partners: Sequence[str | Name]) -> list[str]:
    """Partners as Thai names: agency codes looked up, written names as they are."""
    return [agency_name(kb, p) if isinstance(p, str) else p.th for p in partners]


def format_label(fmt: str, replies: Replies) -> str:
    """Thai label of a course format (online / onsite / hybrid)."""
    labels = {
        "online": replies.text("cards.format.online"),
        "onsite": replies.text("cards.format.onsite"),
        "hybrid": replies.text("cards.format.hybrid"),
    }
    return labels.get(fmt, fmt)


def programme_type_label(kind: str, replies: Replies) -> str:
    """Thai label of an export programme's type."""
    labels = {
        "fund_support": replies.text("cards.type.fund_support"),
        "trade_fair": replies.text("cards.type.trade_fair"),
        "overseas_fair": replies.text("cards.type.overseas_fair"),
        "business_matching": replies.text("cards.type.business_matching"),
        "certification_mark": replies.text("cards.type.certification_mark"),
        "platform": replies.text("cards.type.platform"),
        "membership": replies.text("cards.type.membership"),
        "training": replies.text("cards.type.training"),
    }
    return labels.get(kind, kind)


def status_label(schedule: Schedule, unconfirmed: bool, replies: Replies, on: dt.date) -> str:
    """Whether one can apply: never "open" as a fact for sample or stale entries."""
    state = availability(schedule, on)
    if unconfirmed and state in ("open", "unknown"):
        return replies.text("cards.status.unconfirmed")
    labels = {
        "open": replies.text("cards.status.open"),
        "upcoming": replies.text("cards.status.upcoming"),
        "unknown": replies.text("cards.status.unknown"),
        "closed": replies.text("cards.status.closed"),
    }
    return labels[state]


def span(start: dt.date | None, end: dt.date | None, replies: Replies) -> str | None:
    """The days something runs ("1-3 มี.ค. 2568", or one day), if any is known."""
    if start and end and start != end:
        return replies.text("cards.date_range", start=thai_date(start), end=thai_date(end))
    day = start or end
    return replies.text("cards.date_one", day=thai_date(day)) if day else None


def apply_text(schedule: Schedule, replies: Replies) -> str | None:
    """The application window in Thai, if any date of it is known."""
    first, last = schedule.apply_from, schedule.apply_to
    if first and last:
        return replies.text("cards.apply_range", start=thai_date(first), end=thai_date(last))
    if last:
        return replies.text("cards.apply_until", end=thai_date(last))
    if first:
        return replies.text("cards.apply_from", start=thai_date(first))
    return None


def dates_text(
    schedule: Schedule,
    replies: Replies,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> str:
    """The one line a card shows for "when": the dates it runs, else the application
    window, else the fiscal year, else rolling or not announced."""
    when = span(start or schedule.start_date, end or schedule.end_date, replies)
    if when:
        return when
    window = apply_text(schedule, replies)
    if window:
        return window
    if schedule.fiscal_year_be:
        return replies.text("cards.fiscal_year", year=str(schedule.fiscal_year_be))
    if schedule.kind == "rolling":
        return replies.text("cards.dates_rolling")
    return replies.text("cards.dates_unknown")


def cost_text(cost: Cost, replies: Replies) -> str:
    """What taking part costs, or the support it gives, in Thai."""
    if cost.type == "free":
        return replies.text("cards.cost_free")
    if cost.type == "fee":
        if cost.fee_thb is not None:
            return replies.text("cards.cost_fee", amount=f"{cost.fee_thb:,}")
        return replies.text("cards.cost_fee_unknown")
    if cost.type == "co_payment":
        if cost.co_payment_pct and cost.max_support_thb is not None:
            low, high = cost.co_payment_pct
            return replies.text(
                "cards.cost_co_payment",
                low=str(low),
                high=str(high),
                amount=f"{cost.max_support_thb:,}",
            )
        if cost.co_payment_pct:
            low, high = cost.co_payment_pct
            return replies.text("cards.cost_co_payment_pct", low=str(low), high=str(high))
        return replies.text("cards.cost_co_payment_plain")
    if cost.type == "grant":
        if cost.max_support_thb is not None:
            return replies.text("cards.cost_grant", amount=f"{cost.max_support_thb:,}")
        return replies.text("cards.cost_grant_plain")
    return replies.text("cards.cost_unknown")


def as_of_text(value: str) -> str:
    """A provenance date ("2021", "2025-08" or "2025-08-21") in Thai with the Buddhist era."""
    parts = [int(p) for p in value.split("-")]
    if len(parts) == 3:
        return thai_date(dt.date(parts[0], parts[1], parts[2]))
    if len(parts) == 2:
        return str(thai_strftime(dt.datetime(parts[0], parts[1], 1), "%B %Y"))
    return str(parts[0] + 543)
