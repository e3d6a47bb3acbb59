"""``contact_staff``: the right agency's contact, and a hand-off to staff.

Which agency: one the message names (its code or name in ``agencies.yaml``),
else the agency that runs most of what the message's market or topic is
about, else the one behind what the user's latest assessment says they need
next, else the ministry's general contact. Agencies without a phone number
of their own also show their parent agency's.

Then the user is handed to staff (``bot.storage.handoff``): the bot stays quiet for
them until staff end it (``bot handoff end``, ``POST /admin/handoffs/{id}/end``)
or ``HANDOFF_SECONDS`` pass, so it never talks over a person.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from bot.content.replies import Replies
from bot.dialogue.router import Router, Turn
from bot.insights import capture, records
from bot.kb.loader import Knowledge
from bot.kb.queries import agency_contact_lines
from bot.nlu import Parse
from bot.storage import handoff

router = Router("staff")

#: The ministry: its general contact when nothing points to a particular agency.
GENERAL_AGENCY = "MOC"
#: Agency names shorter than this (short forms like "พณ.") are too likely to occur by chance.
_MIN_NAME_CHARS = 4


def named_agency(kb: Knowledge, text: str) -> str | None:
    """An agency the text names by code ("DITP") or Thai name / short name."""
    lowered = text.lower()
    for code, agency in kb.agencies.items():
        if re.search(rf"(?<![a-z]){re.escape(code.lower())}(?![a-z])", lowered):
            return code
        names = (agency.name.th, agency.short_th or "")
        if any(len(n) >= _MIN_NAME_CHARS and n in text for n in names):
            return code
    return None


def _most_common(kb: Knowledge, codes: Iterable[str]) -> str | None:
    """The agency running most of these offers; ties go to one with a phone number."""
    counts = Counter(c for c in codes if c in kb.agencies)
    if not counts:
        return None

    def rank(code: str) -> tuple[int, int, str]:
        contact = kb.agencies[code].contact
        return (-counts[code], 0 if contact and contact.phone else 1, code)

    return min(counts, key=rank)


def agency_for_market(kb: Knowledge, market: str) -> str | None:
    """Who runs the export programmes for a market: those naming it (or its region)
    first, else those open to any market."""

    def names(code: str) -> bool:
        found = kb.markets.get(code)
        return code == market or (found is not None and market in found.members)

    def worldwide(code: str) -> bool:
        found = kb.markets.get(code)
        return found is not None and found.kind == "global"

    specific = [p.agency for p in kb.programmes if any(names(c) for c in p.markets)]
    if specific:
        return _most_common(kb, specific)
    return _most_common(kb, (p.agency for p in kb.programmes if any(map(worldwide, p.markets))))


def agency_for_topic(kb: Knowledge, topic: str) -> str | None:
    """Who runs most of the courses and programmes on a topic."""
    return _most_common(
        kb,
        [c.agency for c in kb.courses if topic in c.topics]
        + [p.agency for p in kb.programmes if topic in p.topics],
    )


def pick_agency(kb: Knowledge, parse: Parse | None, text: str, needs: Sequence[str]) -> str:
    """The agency to contact: named > market > topic > latest assessment's needs > ministry."""
    if text and (named := named_agency(kb, text)):
        return named
    if parse is not None:
        for entity in parse.entities_of("market"):
            if found := agency_for_market(kb, entity.value):
                return found
        for entity in parse.entities_of("topic"):
            if found := agency_for_topic(kb, entity.value):
                return found
    for topic in needs:
        if found := agency_for_topic(kb, topic):
            return found
    return GENERAL_AGENCY


def contact_codes(kb: Knowledge, code: str) -> list[str]:
    """The agency, and its parents up to one with a phone number (NEA -> DITP)."""
    chain = [code]
    agency = kb.agencies.get(code)
    while agency is not None and not (agency.contact and agency.contact.phone):
        parent = agency.parent
        if parent is None or parent in chain:
            break
        chain.append(parent)
        agency = kb.agencies.get(parent)
    return chain


async def _latest_needs(turn: Turn) -> list[str]:
    """Topics the user's latest assessment says they need next (empty: none taken)."""
    user = turn.user_id
    latest = await turn.latest_assessment(user)
    return [str(t) for t in (latest.topics if latest is not None else None) or ()]


def duration(replies: Replies, seconds: int) -> str:
    """How long the bot stays quiet, in words: whole hours, else minutes."""
    if seconds % 3600 == 0:
        return replies.text("staff.hours", n=seconds // 3600)
    return replies.text("staff.minutes", n=max(1, round(seconds / 60)))


@router.intent("contact_staff", global_=True)
async def contact_staff(turn: Turn) -> None:
    """The right agency's contact, then hand the user to staff (the bot goes quiet)."""
    kb = turn.services.knowledge
    code = pick_agency(kb, turn.nlu, turn.text, await _latest_needs(turn))
    agency = kb.agencies.get(code)
    lines = agency_contact_lines(kb, contact_codes(kb, code))
    if agency is not None and lines:
        turn.say("staff.contact", agency=agency.name.th, contacts="\n".join(lines))
    seconds = turn.services.settings.handoff_seconds
    user = turn.user_id
    turn.write(lambda s: handoff.start_in(s, user, code, seconds))
    capture.note(turn, records.HANDOFF, code)
    if turn.state.step:
        turn.end()  # a flow left open would take the user's first message after the hand-off
    turn.say("staff.handed_off", duration=duration(turn.services.replies, seconds))
