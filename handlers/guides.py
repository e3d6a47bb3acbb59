"""Guides: a short, sourced answer to a common question, then next steps and 👍/👎.

A message the engine reads as ``guide:<id>`` (or a "did you mean" button for one) gets the
guide's answer in one text bubble: the answer, a "please check with the agency" note when
the guide is not verified, the provincial office when the message names a province and the
knowledge has one there (else the agency's national contact), and the source's agency and
check date. Quick replies offer the details, matching courses or export programmes, the
agency's contact, a related guide, another question, and 👍 / 👎. Counts (shown, 👍, 👎) are
kept per guide and day, never per person (``bot guides stats``).
"""

from __future__ import annotations

from bot.content.menu import go_button, main_menu
from bot.dialogue.router import GUIDES, Router, Turn
from bot.insights import capture, records
from bot.kb.guides import Guide
from bot.kb.loader import today
from bot.kb.queries import entry_contact_lines, find_courses, thai_date
from bot.line.messages import Action, PostbackAction, Text, postback_data
from bot.storage.queries import GuideCount
from handlers.courses import province_in, province_name, search_button
from handlers.export import choose_button

router = Router("guides")

MORE = "guide_more"
CONTACT = "guide_contact"
FEEDBACK = "guide_fb"
ASK = "guide_ask"
UP, DOWN = "up", "down"


def count(turn: Turn, guide_id: str, counter: str) -> None:
    """Add to a guide's daily counter with the turn's answer."""
    turn.write(GuideCount(guide_id, counter, today()))


def _guide(turn: Turn, guide_id: str | None = None) -> Guide | None:
    guides = turn.services.knowledge.guides
    if guide_id is not None:
        return guides.get(guide_id)
    label = turn.answering or (turn.nlu.intent if turn.nlu else None)
    return guides.by_label(label)


def _posted(turn: Turn) -> Guide | None:
    """The guide a button names; a button of a removed guide says so (None)."""
    guide = _guide(turn, turn.postback.get("id", ""))
    if guide is None:
        turn.say("guides.gone", *main_menu(turn))
    return guide


def office_lines(turn: Turn, guide: Guide, province: str | None) -> list[str]:
    """The provincial office for the named province, or why the national contact is given."""
    if not province or not guide.local_offices:
        return []
    kb = turn.services.knowledge
    place = province_name(kb, province)
    for code in guide.local_offices:
        office = kb.offices.get((code, province))
        if office is None:
            continue
        reach = office.contact
        bits = [
            b
            for b in (
                (reach.phone if reach else None),
                (reach.url if reach else None),
                (reach.address.th if reach and reach.address else None),
            )
            if b
        ]
        return [
            turn.reply_text(
                "guides.local_office", province=place, office=office.name.th, contact=" ".join(bits)
            )
        ]
    return [turn.reply_text("guides.no_local_office", province=place)]


def answer_text(turn: Turn, guide: Guide, province: str | None) -> str:
    """The guide's answer with its hedges, place and source, as one text."""
    kb = turn.services.knowledge
    agency = kb.agencies.get(guide.agency)
    agency_name = agency.name.th if agency else guide.agency
    parts = [turn.reply_text("guides.answer", title=guide.title, answer=guide.answer.strip())]
    if not guide.verified:
        parts.append(turn.reply_text("guides.unverified", agency=agency_name))
    parts += office_lines(turn, guide, province)
    parts.append(
        turn.reply_text(
            "guides.source",
            agency=agency_name,
            checked_on=thai_date(guide.provenance.checked_on),
        )
    )
    if guide.stale(today()):
        parts.append(turn.reply_text("guides.stale", agency=agency_name))
    parts.append(turn.reply_text("guides.ask_feedback"))
    return "\n\n".join(parts)


def _button(turn: Turn, key: str, action: str, **data: str) -> PostbackAction:
    label = turn.reply_text(key)
    return PostbackAction(label=label, data=postback_data(action, **data), display_text=label)


def guide_button(guide: Guide) -> PostbackAction:
    """A button that answers a guide (the "did you mean" and "see also" buttons)."""
    return go_button(guide.short, guide.label)


def next_steps(turn: Turn, guide: Guide, province: str | None) -> tuple[Action, ...]:
    """Details, courses or programmes, the agency, a related guide, another question, 👍 👎."""
    kb = turn.services.knowledge
    related = guide.related
    steps: list[Action] = []
    if guide.details:
        steps.append(_button(turn, "guides.button_details", MORE, id=guide.id))
    topics = [t for t in related.topics if t in kb.topics]
    if topics and find_courses(kb, topics, province=province):
        steps.append(search_button(turn.reply_text("guides.button_courses"), topics, province))
    if related.markets or related.sectors:
        market = related.markets[0] if related.markets else ""
        sector = related.sectors[0] if related.sectors else ""
        steps.append(choose_button(turn.reply_text("guides.button_programmes"), market, sector))
    steps.append(_button(turn, "guides.button_contact", CONTACT, id=guide.id, p=province or ""))
    for other in related.guides[:2]:
        found = kb.guides.get(other)
        if found is not None:
            steps.append(guide_button(found))
    steps.append(_button(turn, "guides.button_other_question", ASK))
    steps.append(_button(turn, "guides.button_helpful", FEEDBACK, id=guide.id, v=UP))
    steps.append(_button(turn, "guides.button_unhelpful", FEEDBACK, id=guide.id, v=DOWN))
    return tuple(steps)


@router.intent(GUIDES)
async def answer(turn: Turn) -> None:
    """Answer the guide the message (or button) asked for."""
    guide = _guide(turn)
    if guide is None:  # a button of a guide that was removed since
        turn.say("guides.gone", *main_menu(turn))
        return
    province = province_in(turn)
    turn.send(Text(answer_text(turn, guide, province), next_steps(turn, guide, province)))
    count(turn, guide.id, "shown")
    capture.note(turn, records.GUIDE_SHOWN, guide.id)


@router.postback(MORE)
async def details(turn: Turn) -> None:
    """The longer explanation and every source of a guide."""
    guide = _posted(turn)
    if guide is None:
        return
    text = turn.reply_text(
        "guides.details",
        title=guide.title,
        details=(guide.details or guide.answer).strip(),
        sources="\n".join(guide.provenance.source_urls),
        review_by=thai_date(guide.provenance.review_by),
    )
    steps = [s for s in next_steps(turn, guide, None) if not _is(s, MORE)]
    turn.send(Text(text, tuple(steps)))


@router.postback(CONTACT)
async def contact(turn: Turn) -> None:
    """Who owns the answer and how to reach them (the provincial office when known)."""
    guide = _posted(turn)
    if guide is None:
        return
    kb = turn.services.knowledge
    province = turn.postback.get("p") or None
    if province not in kb.places.provinces:
        province = None
    lines = office_lines(turn, guide, province) + entry_contact_lines(kb, guide.agency)
    if not lines:
        turn.say("guides.no_contact", *main_menu(turn))
        return
    turn.say("guides.contact", *main_menu(turn), contacts="\n".join(lines))


@router.postback(FEEDBACK)
async def feedback(turn: Turn) -> None:
    """👍 or 👎 for a guide, counted without who gave it."""
    guide = _posted(turn)
    if guide is None:
        return
    helpful = turn.postback.get("v") == UP
    count(turn, guide.id, "helpful" if helpful else "unhelpful")
    capture.note(turn, records.GUIDE_HELPFUL if helpful else records.GUIDE_UNHELPFUL, guide.id)
    if helpful:
        turn.say("guides.thanks_helpful", *main_menu(turn))
        return
    buttons: list[Action] = [
        _button(turn, "guides.button_contact", CONTACT, id=guide.id, p=""),
        go_button(turn.reply_text("menu.contact_staff"), "contact_staff"),
        _button(turn, "guides.button_other_question", ASK),
    ]
    turn.say("guides.thanks_unhelpful", *buttons)


@router.postback(ASK)
async def ask_another(turn: Turn) -> None:
    """Invite the next question (typed; the menu is there too)."""
    turn.say("guides.ask_another", *main_menu(turn))


def _is(action: Action, name: str) -> bool:
    return isinstance(action, PostbackAction) and action.data.startswith(f"action={name}&")
