"""Recommendation cards: LINE Flex bubbles for courses, export programmes and centres.

Every capability that recommends something (the assessment result, ``find_course``,
``export_programme``, ``find_centre``) shows the same cards, so a person learns to
read them once. A card always says who runs the offer, how it is given, when (Thai
dates, Buddhist-era years), what it costs, and, for sample or unconfirmed entries,
"please check with the agency" with the agency's contact: the knowledge shipped now
is built from news, and nobody should travel or apply on the strength of it alone.

Builders return plain Flex JSON that always fits LINE's limits whatever the
knowledge holds: texts are capped, buttons go through ``bot.line.messages`` actions
(labels cut to 20 characters, postback data checked), links are made valid
http(s) URIs or dropped, and ``carousel`` keeps at most 10 bubbles and drops
trailing ones if the carousel would pass LINE's 50 KB. All wording comes from
``knowledge/replies/cards.yaml`` (reasons from ``replies/export.yaml``).

The "details" button is a postback ``action=card&id=<entry id>``; the courses
handler answers it with ``details_for``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from pythainlp.util import thai_strftime

from bot.content.replies import Replies
from bot.kb.loader import Knowledge, today
from bot.kb.queries import (
    Reason,
    availability,
    entry_contact_lines,
    needs_check,
    thai_date,
)
from bot.kb.schemas import (
    Centre,
    Contact,
    Cost,
    Course,
    ExportProgramme,
    Name,
    Provenance,
    Schedule,
)
from bot.line.messages import Action, Flex, PostbackAction, UriAction, fit, postback_data

#: Bubbles we show in one carousel (LINE allows 12; ten is plenty to read on a phone).
MAX_BUBBLES = 10
#: LINE's limits on Flex JSON, measured as compact UTF-8 (1 KB taken as 1000 bytes).
BUBBLE_MAX_BYTES = 30_000
CAROUSEL_MAX_BYTES = 50_000
#: Characters of a URI action (LINE's limit).
URI_MAX = 1000
#: Postback action of the "details" button: ``action=card&id=<entry id>``.
DETAILS_ACTION = "card"

# Caps on what one card shows, so no knowledge entry can make a bubble too big.
_NAME_MAX = 120
_LINE_MAX = 240
_NOTE_MAX = 400
_REASONS_MAX = 6
_CONTACTS_MAX = 2

_GREY = "#8C8C8C"
_ACCENT = "#06C755"
_WARN = "#D97706"
_NOTE = "#B45309"


# -- small pieces ------------------------------------------------------------------------------


def safe_uri(url: str | None) -> str | None:
    """``url`` as an absolute http(s) URI LINE accepts (non-ASCII escaped), or None."""
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    escaped = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    return escaped if len(escaped) <= URI_MAX else None


def tel_uri(phone: str | None) -> str | None:
    """A ``tel:`` URI for a Thai phone number as people write it ("02-123 4567"), or None."""
    if not phone:
        return None
    # The first number only: "02-123 4567 ext 12" or "1569, 1570" dial the first.
    first = re.match(r"\s*\+?[\d\s\-()]+", phone)
    digits = re.sub(r"[^\d+]", "", first.group()) if first else ""
    return f"tel:{digits}" if len(digits.lstrip("+")) >= 3 else None


def map_uri(centre: Centre, kb: Knowledge) -> str:
    """Google Maps for the centre: its point, or (for an area-mean point) a search by name.

    A district or province mean is not where the centre is; pinning it would send
    people to the wrong place, so the map searches the centre's name in its area.
    """
    if centre.location_precision in ("exact", "subdistrict_ref", "manual"):
        query = f"{centre.location_lat:.6f},{centre.location_lng:.6f}"
    else:
        query = " ".join([centre.name_th, *_area_words(centre, kb)])
    return "https://www.google.com/maps/search/?" + urlencode({"api": "1", "query": query})


def _area_words(centre: Centre, kb: Knowledge) -> list[str]:
    try:
        names = kb.places.area_names(centre.subdistrict_code or centre.district_code)
    except KeyError:
        return []
    return [names[k] for k in ("subdistrict", "district", "province") if k in names]


def _text(text: str, **style: Any) -> dict[str, Any]:
    """A Flex text component; LINE refuses empty text, so callers pass something."""
    return {"type": "text", "text": text or " ", "wrap": True, **style}


def _row(label: str, value: str) -> dict[str, Any]:
    return {
        "type": "box",
        "layout": "baseline",
        "spacing": "sm",
        "contents": [
            _text(fit(label, 40), size="sm", color=_GREY, flex=2),
            _text(fit(value, _LINE_MAX), size="sm", flex=5),
        ],
    }


def _button(action: Action, primary: bool) -> dict[str, Any]:
    return {
        "type": "button",
        "style": "primary" if primary else "link",
        "height": "sm",
        "color": _ACCENT if primary else None,
        "action": action.to_line(),
    }


def _clean(node: Any) -> Any:
    """Drop None values (optional Flex properties left unset)."""
    if isinstance(node, dict):
        return {k: _clean(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _bubble(
    body: list[dict[str, Any]], buttons: list[dict[str, Any]], *, optional: int = 0
) -> dict[str, Any]:
    """A bubble; if it passed LINE's 30 KB, drop body parts from the end (never the first
    ``len(body) - optional`` essentials), then shorten the rest."""
    while True:
        bubble = _clean(
            {
                "type": "bubble",
                "size": "kilo",
                "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": body},
                "footer": (
                    {"type": "box", "layout": "vertical", "spacing": "xs", "contents": buttons}
                    if buttons
                    else None
                ),
            }
        )
        if size_of(bubble) <= BUBBLE_MAX_BYTES:
            return dict(bubble)
        if optional > 0:
            body = body[:-1]
            optional -= 1
            continue
        body = [_shrink(part) for part in body]


def _shrink(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "text" and isinstance(node.get("text"), str):
            return {**node, "text": fit(node["text"], max(20, len(node["text"]) // 2))}
        return {k: _shrink(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_shrink(v) for v in node]
    return node


def size_of(container: dict[str, Any]) -> int:
    """Bytes of compact UTF-8 JSON, as LINE measures a Flex container."""
    return len(json.dumps(container, ensure_ascii=False, separators=(",", ":")).encode())


def details_button(entry_id: str, replies: Replies) -> PostbackAction:
    """The "details" postback; the courses handler answers it with ``details_for``."""
    label = replies.text("cards.button_details")
    return PostbackAction(label, postback_data(DETAILS_ACTION, id=entry_id), display_text=label)


def _agency_name(kb: Knowledge, code: str) -> str:
    agency = kb.agencies.get(code)
    return agency.name.th if agency else code


def _partner_names(kb: Knowledge, partners: Sequence[str | Name]) -> list[str]:
    return [_agency_name(kb, p) if isinstance(p, str) else p.th for p in partners]


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


def _span(start: dt.date | None, end: dt.date | None, replies: Replies) -> str | None:
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
    when = _span(start or schedule.start_date, end or schedule.end_date, replies)
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


def _agency_label(kb: Knowledge, code: str) -> str:
    """Who runs it, for a reason such as "member of ส.อ.ท. / หอการค้าไทย"."""
    agency = kb.agencies.get(code)
    if agency is None:
        return code
    return agency.short_th or agency.name.th


def reason_text(reason: Reason, kb: Knowledge, replies: Replies) -> str:
    """A pre-screen reason in plain Thai (wording in ``replies/export.yaml`` by code).

    An uncertain reason (the fact was never asked) reads as "please make sure you ...",
    a certain one as "this programme needs ...".
    """
    p = reason.params
    code = reason.code
    if code == "readiness_low":
        return replies.text(
            "export.reason.readiness_low", required=p.get("required", ""), stage=p.get("stage", "")
        )
    if code == "not_juristic_person":
        if reason.certain:
            return replies.text("export.reason.not_juristic_person")
        return replies.text("export.confirm.not_juristic_person")
    if code == "no_dbd_registration":
        if reason.certain:
            return replies.text("export.reason.no_dbd_registration")
        return replies.text("export.confirm.no_dbd_registration")
    if code == "export_above_max":
        return replies.text("export.reason.export_above_max", max_thb=p.get("max_thb", ""))
    if code == "export_below_min":
        if reason.certain:
            return replies.text("export.reason.export_below_min", min_thb=p.get("min_thb", ""))
        return replies.text("export.confirm.export_below_min", min_thb=p.get("min_thb", ""))
    if code == "membership_required":
        codes = [c.strip() for c in p.get("codes", "").split("/") if c.strip()]
        names = [_agency_label(kb, c) for c in codes]
        if len(names) > 1:
            return replies.text("export.confirm.membership_any", names=" / ".join(names))
        single = kb.agencies.get(codes[0]) if codes else None
        return replies.text(
            "export.confirm.membership_required", names=single.name.th if single else "".join(codes)
        )
    return replies.text("export.reason.other")


def _notes(
    kb: Knowledge,
    replies: Replies,
    agency: str,
    contact: Contact | None,
    sample: bool,
) -> list[dict[str, Any]]:
    """The check-with-the-agency note and how to reach them."""
    note = replies.text("cards.note_sample" if sample else "cards.note_check")
    parts = [_text(fit(note, _NOTE_MAX), size="xxs", color=_NOTE, margin="md")]
    lines = entry_contact_lines(kb, agency, contact)[:_CONTACTS_MAX]
    if lines:
        contacts = replies.text("cards.contact", contacts=" · ".join(lines))
        parts.append(_text(fit(contacts, _NOTE_MAX), size="xxs", color=_GREY))
    return parts


def _why(why: str | None, replies: Replies) -> list[dict[str, Any]]:
    if not why:
        return []
    line = replies.text("cards.why", text=why)
    return [_text(fit(line, _LINE_MAX), size="xs", color=_ACCENT, margin="md")]


def _official_or_details(url: str | None, entry_id: str, replies: Replies) -> list[dict[str, Any]]:
    """Details always (it carries the sample note and contacts); the official page first."""
    buttons: list[dict[str, Any]] = []
    link = safe_uri(url)
    if link:
        buttons.append(_button(UriAction(replies.text("cards.button_official"), link), True))
    buttons.append(_button(details_button(entry_id, replies), not buttons))
    return buttons


# -- cards ---------------------------------------------------------------------------------------


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
        _text(fit(course.name.th, _NAME_MAX), weight="bold", size="md", maxLines=4),
        _text(fit(_agency_name(kb, course.agency), _LINE_MAX), size="xs", color=_GREY),
        {"type": "separator", "margin": "md"},
        _row(replies.text("cards.label_format"), format_label(course.format, replies)),
        _row(replies.text("cards.label_dates"), dates_text(course.schedule, replies)),
        _row(replies.text("cards.label_cost"), cost_text(course.cost, replies)),
        _row(
            replies.text("cards.label_status"),
            status_label(course.schedule, unconfirmed, replies, on),
        ),
    ]
    optional = _why(why, replies)
    if unconfirmed:
        optional += _notes(
            kb, replies, course.agency, course.contact, course.provenance.status == "sample"
        )
    buttons = _official_or_details(course.url, course.id, replies)
    return _bubble(body + optional, buttons, optional=len(optional))


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
    markets = ", ".join(kb.markets[m].name.th if m in kb.markets else m for m in programme.markets)
    body: list[dict[str, Any]] = [
        _text(fit(programme.name.th, _NAME_MAX), weight="bold", size="md", maxLines=4),
        _text(fit(_agency_name(kb, programme.agency), _LINE_MAX), size="xs", color=_GREY),
        {"type": "separator", "margin": "md"},
        _row(
            replies.text("cards.label_type"),
            programme_type_label(programme.programme_type, replies),
        ),
        _row(replies.text("cards.label_market"), markets),
        _row(replies.text("cards.label_dates"), when),
        _row(replies.text("cards.label_cost"), cost_text(programme.cost, replies)),
        _row(
            replies.text("cards.label_status"),
            status_label(programme.schedule, unconfirmed, replies, on),
        ),
    ]
    optional = _why(why, replies)
    shown = list(reasons)[:_REASONS_MAX]
    for certain in (True, False):
        group = [r for r in shown if r.certain is certain]
        if not group:
            continue
        title = replies.text("cards.reasons_title" if certain else "cards.reasons_check_title")
        optional.append(_text(title, size="xs", weight="bold", color=_WARN, margin="md"))
        for reason in group:
            item = replies.text("cards.reason_item", text=reason_text(reason, kb, replies))
            optional.append(_text(fit(item, _LINE_MAX), size="xs", color=_WARN))
    if unconfirmed:
        optional += _notes(
            kb,
            replies,
            programme.agency,
            programme.contact,
            programme.provenance.status == "sample",
        )
    buttons = _official_or_details(programme.url, programme.id, replies)
    return _bubble(body + optional, buttons, optional=len(optional))


def centre_address(centre: Centre, kb: Knowledge, replies: Replies) -> str:
    """The centre's address, or its area ("ต.… อ.… จ.…"; "in อ.…" for an area-mean point)."""
    if centre.address_th:
        return centre.address_th
    code = centre.subdistrict_code or centre.district_code
    try:
        names = kb.places.area_names(code)
    except KeyError:
        names = {}
    if "subdistrict" in names:
        return replies.text(
            "cards.centre_area_subdistrict",
            subdistrict_prefix=names["subdistrict_prefix"],
            subdistrict=names["subdistrict"],
            district_prefix=names["district_prefix"],
            district=names["district"],
            province_prefix=names["province_prefix"],
            province=names["province"],
        )
    if "district" in names:
        return replies.text(
            "cards.centre_area_district",
            district_prefix=names["district_prefix"],
            district=names["district"],
            province_prefix=names["province_prefix"],
            province=names["province"],
        )
    if "province" in names:
        return replies.text(
            "cards.centre_area_province",
            province_prefix=names["province_prefix"],
            province=names["province"],
        )
    return centre.name_th


def centre_bubble(
    centre: Centre,
    kb: Knowledge,
    replies: Replies,
    *,
    distance_km: float | None = None,
) -> dict[str, Any]:
    """A community digital centre: name, address, distance, hours, map and phone buttons."""
    body: list[dict[str, Any]] = [
        _text(fit(centre.name_th, _NAME_MAX), weight="bold", size="md", maxLines=4),
        _text(fit(_agency_name(kb, centre.operator), _LINE_MAX), size="xs", color=_GREY),
        {"type": "separator", "margin": "md"},
        _text(fit(centre_address(centre, kb, replies), _LINE_MAX), size="sm"),
    ]
    if distance_km is not None:
        km = f"{distance_km:.1f}"
        body.append(_text(replies.text("cards.centre_distance", km=km), size="sm", color=_ACCENT))
    if centre.opening_hours_th:
        hours = replies.text("cards.centre_hours", hours=centre.opening_hours_th)
        body.append(_text(fit(hours, _LINE_MAX), size="sm"))
    optional: list[dict[str, Any]] = []
    if needs_check(centre.provenance, None) or centre.status != "active":
        note = replies.text("cards.note_centre")
        optional.append(_text(fit(note, _NOTE_MAX), size="xxs", color=_NOTE, margin="md"))
        lines = entry_contact_lines(kb, centre.operator)[:_CONTACTS_MAX]
        if lines:
            contacts = replies.text("cards.contact", contacts=" · ".join(lines))
            optional.append(_text(fit(contacts, _NOTE_MAX), size="xxs", color=_GREY))
    buttons = [_button(UriAction(replies.text("cards.button_map"), map_uri(centre, kb)), True)]
    phone = tel_uri(centre.contact_phone)
    if phone:
        buttons.append(_button(UriAction(replies.text("cards.button_call"), phone), False))
    return _bubble(body + optional, buttons, optional=len(optional))


def carousel(
    bubbles: Sequence[dict[str, Any]], alt_text: str, quick: tuple[Action, ...] = ()
) -> Flex:
    """Bubbles as one Flex message: at most 10, and fewer if they would pass 50 KB.

    One bubble is sent as a carousel too, so every answer reads the same way.
    """
    kept = list(bubbles)[:MAX_BUBBLES]
    while len(kept) > 1 and size_of({"type": "carousel", "contents": kept}) > CAROUSEL_MAX_BYTES:
        kept.pop()
    return Flex(
        alt_text=alt_text, contents={"type": "carousel", "contents": kept}, quick_replies=quick
    )


# -- full details (the answer to the "details" button) -----------------------------------------


def as_of_text(value: str) -> str:
    """A provenance date ("2021", "2025-08" or "2025-08-21") in Thai with the Buddhist era."""
    parts = [int(p) for p in value.split("-")]
    if len(parts) == 3:
        return thai_date(dt.date(parts[0], parts[1], parts[2]))
    if len(parts) == 2:
        return str(thai_strftime(dt.datetime(parts[0], parts[1], 1), "%B %Y"))
    return str(parts[0] + 543)


def _source_lines(urls: Sequence[str]) -> str:
    return " ".join(urls[:3])


def course_details(
    course: Course, kb: Knowledge, replies: Replies, on: dt.date | None = None
) -> str:
    """Everything we know about a course, as one text message (sample note included)."""
    on = on or today()
    r = replies.text
    unconfirmed = needs_check(course.provenance, course.schedule, on)
    lines = [
        r("cards.details_title", name=course.name.th),
        r("cards.details_agency", agency=_agency_name(kb, course.agency)),
    ]
    if course.partners:
        lines.append(
            r("cards.details_partners", partners=", ".join(_partner_names(kb, course.partners)))
        )
    lines.append(r("cards.details_summary", summary=course.summary.th))
    lines.append(r("cards.details_format", format=format_label(course.format, replies)))
    if course.duration_text:
        lines.append(r("cards.details_duration", duration=course.duration_text.th))
    when = _span(course.schedule.start_date, course.schedule.end_date, replies)
    if when:
        lines.append(r("cards.details_dates", dates=when))
    window = apply_text(course.schedule, replies)
    if window:
        lines.append(r("cards.details_apply", dates=window))
    if not when and not window:
        lines.append(r("cards.details_dates", dates=dates_text(course.schedule, replies)))
    lines.append(
        r("cards.details_status", status=status_label(course.schedule, unconfirmed, replies, on))
    )
    lines.append(r("cards.details_cost", cost=cost_text(course.cost, replies)))
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
    return _finish(
        lines,
        kb,
        replies,
        course.url,
        course.agency,
        course.contact,
        course.provenance,
        unconfirmed,
    )


def programme_details(
    programme: ExportProgramme, kb: Knowledge, replies: Replies, on: dt.date | None = None
) -> str:
    """Everything we know about an export programme, as one text message."""
    on = on or today()
    r = replies.text
    unconfirmed = needs_check(programme.provenance, programme.schedule, on)
    lines = [
        r("cards.details_title", name=programme.name.th),
        r("cards.details_agency", agency=_agency_name(kb, programme.agency)),
    ]
    if programme.partners:
        names = ", ".join(_partner_names(kb, programme.partners))
        lines.append(r("cards.details_partners", partners=names))
    lines.append(r("cards.details_summary", summary=programme.summary.th))
    lines.append(
        r("cards.details_type", type=programme_type_label(programme.programme_type, replies))
    )
    markets = ", ".join(kb.markets[m].name.th if m in kb.markets else m for m in programme.markets)
    lines.append(r("cards.details_markets", markets=markets))
    sectors = ", ".join(kb.sectors[s].label.th if s in kb.sectors else s for s in programme.sectors)
    lines.append(r("cards.details_sectors", sectors=sectors))
    lines.append(r("cards.details_readiness", stage=str(programme.readiness_required)))
    event = programme.event
    if event and event.venue:
        venue = ", ".join(x for x in (event.venue.th, event.city) if x)
        lines.append(r("cards.details_event", venue=venue))
    when = _span(
        (event.start_date if event else None) or programme.schedule.start_date,
        (event.end_date if event else None) or programme.schedule.end_date,
        replies,
    )
    if when:
        lines.append(r("cards.details_dates", dates=when))
    window = apply_text(programme.schedule, replies)
    if window:
        lines.append(r("cards.details_apply", dates=window))
    if not when and not window:
        lines.append(r("cards.details_dates", dates=dates_text(programme.schedule, replies)))
    lines.append(
        r(
            "cards.details_status",
            status=status_label(programme.schedule, unconfirmed, replies, on),
        )
    )
    lines.append(r("cards.details_cost", cost=cost_text(programme.cost, replies)))
    if programme.benefits:
        lines.append(r("cards.details_benefits", text=programme.benefits.th))
    if programme.eligibility and programme.eligibility.text:
        lines.append(r("cards.details_eligibility", text=programme.eligibility.text.th))
    if programme.application_docs:
        lines.append(r("cards.details_docs"))
        lines += [r("cards.details_doc_item", text=d.th) for d in programme.application_docs]
    return _finish(
        lines,
        kb,
        replies,
        programme.url,
        programme.agency,
        programme.contact,
        programme.provenance,
        unconfirmed,
    )


def _finish(
    lines: list[str],
    kb: Knowledge,
    replies: Replies,
    url: str | None,
    agency: str,
    contact: Contact | None,
    provenance: Provenance,
    unconfirmed: bool,
) -> str:
    r = replies.text
    link = safe_uri(url)
    if link:
        lines.append(r("cards.details_link", url=link))
    if unconfirmed:
        lines.append("")
        lines.append(
            r("cards.note_sample" if provenance.status == "sample" else "cards.note_check")
        )
    contacts = entry_contact_lines(kb, agency, contact)
    if contacts:
        lines.append(r("cards.contact", contacts=" · ".join(contacts)))
    if provenance.facts_as_of:
        lines.append(r("cards.details_facts_as_of", when=as_of_text(provenance.facts_as_of)))
    if provenance.source_urls:
        lines.append(r("cards.details_sources", urls=_source_lines(provenance.source_urls)))
    return "\n".join(lines)


def details_for(entry_id: str, kb: Knowledge, replies: Replies) -> str | None:
    """The full details of the course or programme with this id (None: no longer known)."""
    for course in kb.courses:
        if course.id == entry_id:
            return course_details(course, kb, replies)
    for programme in kb.programmes:
        if programme.id == entry_id:
            return programme_details(programme, kb, replies)
    return None
