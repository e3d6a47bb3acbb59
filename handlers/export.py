"""Finding an export-promotion programme (``export_programme``) and whether one may apply.

Programmes are chosen by market and sector ("อยากส่งออกอาหารไปจีน"); the bot asks
for whichever is missing (market buttons, then sector buttons). The latest
assessment supplies the sector and the readiness stage, and its
``business_stage`` answer is repeated back so the person knows what was used.
The eligibility pre-screen then says, in plain Thai and per reason code, why a
programme does not fit yet (certain reasons) or what to make sure of first
(facts the bot never asked); the cards of programmes that don't fit carry
their reasons.

```mermaid
stateDiagram-v2
    [*] --> export.market: no market
    [*] --> export.sector: market, no sector
    [*] --> carousel: market and sector (or sector from the assessment)
    export.market --> export.sector: market button / typed market
    export.sector --> carousel: sector button / typed sector
    export.sector --> export.market: back
    export.market --> [*]: back / third miss / another intent
```

Buttons are postbacks ``action=exp&m=<market>&s=<sector>`` (``-`` = any; empty =
not chosen yet), so they work even after the step expired.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.content.cards import card_titles, carousel, programme_bubble, reason_text
from bot.content.menu import back_to_menu, intent_buttons, is_back
from bot.dialogue.detours import offer_detour
from bot.dialogue.retries import miss
from bot.dialogue.router import Router, Turn
from bot.dialogue.steps import Step, StepGroup
from bot.insights import capture, records
from bot.kb.queries import BusinessProfile, ProgrammeHit, find_programmes
from bot.line.messages import Action, PostbackAction, Text, postback_data
from bot.nlu.text import normalise
from bot.storage.db import Assessment
from handlers.courses import assessment_of, give_up, search_button, short_label

if TYPE_CHECKING:
    from bot.kb.loader import Knowledge


class ExportSteps(StepGroup, prefix="export"):
    """Asking the target market, or the sector, whichever the message did not name."""

    market = Step()
    sector = Step()


router = Router("export", steps=ExportSteps)

#: Postback action of market and sector buttons.
CHOOSE = "exp"
#: "Any market" / "any sector" in postbacks and dialogue answers.
ANY = "-"
#: Markets offered as buttons, in this order (codes from knowledge/markets.yaml).
MARKET_BUTTONS = ("CN", "ASEAN", "VN", "JP", "KR", "IN", "US", "EU", "MIDDLE_EAST", "GLOBAL")
MAX_RETRIES = 2
#: Dialogue-answer key of the count of answers not understood.
TRIES = "tries"


# -- pieces -------------------------------------------------------------------------------------


def market_name(kb: Knowledge, turn: Turn, market: str) -> str:
    if market == ANY:
        return turn.reply_text("export.any_market")
    found = kb.markets.get(market)
    return found.name.th if found else market


def sector_label(turn: Turn, sector: str) -> str:
    """A short button label (``export.sector_label.<id>``, else the sector's name)."""
    found = turn.services.knowledge.sectors.get(sector)
    return short_label(turn, f"export.sector_label.{sector}", found.label.th if found else sector)


def choose_button(label: str, market: str = "", sector: str = "") -> PostbackAction:
    data = postback_data(CHOOSE, m=market, s=sector)
    return PostbackAction(label=label, data=data, display_text=label)


def market_buttons(turn: Turn, sector: str) -> tuple[PostbackAction, ...]:
    kb = turn.services.knowledge
    buttons = [
        choose_button(kb.markets[m].name.th, m, sector) for m in MARKET_BUTTONS if m in kb.markets
    ]
    buttons.append(choose_button(turn.reply_text("export.button_any_market"), ANY, sector))
    return tuple(buttons[:12])


def sector_buttons(turn: Turn, market: str) -> tuple[PostbackAction, ...]:
    kb = turn.services.knowledge
    buttons = [choose_button(sector_label(turn, s), market, s) for s in kb.sectors if s != "all"]
    buttons = buttons[:11]
    buttons.append(choose_button(turn.reply_text("export.button_any_sector"), market, ANY))
    return tuple(buttons)


def _typed(turn: Turn, kind: str) -> str | None:
    """A market or sector named in the message (entity, else a button label typed out)."""
    parse = turn.nlu
    entity = parse.entity(kind) if parse else None
    if entity is not None:
        return ANY if kind == "sector" and entity.value == "all" else entity.value
    said = normalise(turn.text).replace(" ", "")
    if not said:
        return None
    any_label = "export.button_any_market" if kind == "market" else "export.button_any_sector"
    if said == normalise(turn.reply_text(any_label)).replace(" ", ""):
        return ANY
    if kind == "sector":
        for sector in turn.services.knowledge.sectors:
            if said == normalise(sector_label(turn, sector)).replace(" ", ""):
                return ANY if sector == "all" else sector
    return None


def _assessment_sector(kb: Knowledge, latest: Assessment | None) -> str | None:
    value = (latest.answers or {}).get("sector") if latest else None
    return value if isinstance(value, str) and value in kb.sectors and value != "all" else None


def business_stage_text(turn: Turn, value: object) -> str | None:
    """The assessment's ``business_stage`` answer as words ("ส่งออกอยู่แล้ว")."""
    labels = {
        "idea": turn.reply_text("export.business_stage.idea"),
        "new": turn.reply_text("export.business_stage.new"),
        "running": turn.reply_text("export.business_stage.running"),
        "exporting": turn.reply_text("export.business_stage.exporting"),
    }
    return labels.get(value) if isinstance(value, str) else None


def eligibility_text(turn: Turn, hits: list[ProgrammeHit], latest: Assessment | None) -> str | None:
    """Plain-Thai eligibility: what stands in the way, what to make sure of, or that
    nothing known does; plus a nudge to take the assessment when we know nothing."""
    kb = turn.services.knowledge
    replies = turn.services.replies
    blocked = [h for h in hits if any(r.certain for r in h.reasons)]
    certain: list[str] = []
    unsure: list[str] = []
    for hit in hits:
        for reason in hit.reasons:
            words = reason_text(reason, kb, replies)
            bucket = certain if reason.certain else unsure
            if words not in bucket:
                bucket.append(words)
    lines: list[str] = []
    if certain:
        lines.append(turn.reply_text("export.not_yet", count=len(blocked)))
        lines += [turn.reply_text("export.reason_item", text=t) for t in certain[:5]]
    if unsure:
        lines.append(turn.reply_text("export.check_first"))
        lines += [turn.reply_text("export.reason_item", text=t) for t in unsure[:5]]
    if not certain and not unsure and latest is not None:
        lines.append(turn.reply_text("export.fits_all"))
    if any(r.code == "readiness_low" for h in hits for r in h.reasons):
        lines.append(turn.reply_text("export.readiness_tip"))
    if latest is None:
        lines.append(turn.reply_text("export.no_assessment"))
    return "\n".join(lines) if lines else None


async def answer(turn: Turn, market: str, sector: str, latest: Assessment | None) -> None:
    """Ask what is missing, or show the programmes with the pre-screen's verdicts."""
    if not market:
        turn.goto(ExportSteps.market, sector=sector, **{TRIES: 0})
        turn.say("export.ask_market", *market_buttons(turn, sector))
        return
    if not sector:
        turn.goto(ExportSteps.sector, market=market, **{TRIES: 0})
        turn.say("export.ask_sector", *sector_buttons(turn, market))
        return
    turn.end()
    kb = turn.services.knowledge
    replies = turn.services.replies
    capture.note(
        turn,
        records.EXPORT_INTEREST,
        "" if market == ANY else market,
        sector=None if sector == ANY else sector,
    )
    profile = BusinessProfile(stage=latest.stage if latest else None)
    wanted_market = None if market == ANY else market
    wanted_sector = None if sector == ANY else sector
    hits = find_programmes(kb, wanted_market, wanted_sector, profile)
    if latest is not None:
        said = business_stage_text(turn, (latest.answers or {}).get("business_stage"))
        if said:
            turn.say("export.from_assessment", business_stage=said, stage=latest.stage)
        else:
            turn.say("export.from_assessment_stage", stage=latest.stage)
    where = market_name(kb, turn, market)
    if not hits:
        _nothing_fits(turn, market, sector, where)
        return
    if wanted_sector:
        turn.say("export.found", market=where, sector=kb.sectors[sector].label.th, count=len(hits))
    else:
        turn.say("export.found_any_sector", market=where, count=len(hits))
    explained = eligibility_text(turn, hits, latest)
    if explained:
        turn.send(Text(explained))
    bubbles = [programme_bubble(h.programme, kb, replies, reasons=h.reasons) for h in hits]
    quick: list[Action] = [
        choose_button(turn.reply_text("export.button_change_market"), "", sector),
        choose_button(turn.reply_text("export.button_change_sector"), market, ""),
        search_button(turn.reply_text("export.button_export_courses"), ["export_trade"]),
    ]
    if latest is None:
        quick += intent_buttons(turn, ["start_assessment"])
    quick += intent_buttons(turn, ["help"])
    alt = turn.reply_text("export.alt_text", count=len(bubbles), names=card_titles(bubbles))
    turn.send(carousel(bubbles, alt, tuple(quick)))


def _nothing_fits(turn: Turn, market: str, sector: str, where: str) -> None:
    kb = turn.services.knowledge
    if sector != ANY and sector in kb.sectors:
        turn.say("export.none", market=where, sector=kb.sectors[sector].label.th)
    else:
        turn.say("export.none_any_sector", market=where)
    buttons: list[Action] = []
    if market != ANY:
        buttons.append(choose_button(turn.reply_text("export.button_any_market"), ANY, sector))
    if sector != ANY:
        buttons.append(choose_button(turn.reply_text("export.button_any_sector"), market, ANY))
    buttons.append(search_button(turn.reply_text("export.button_export_courses"), ["export_trade"]))
    turn.say("export.alternatives", *buttons, *intent_buttons(turn, ["help"]))


# -- handlers -----------------------------------------------------------------------------------


@router.intent("export_programme")
async def export_programme(turn: Turn) -> None:
    """Programmes by market and sector; asks for what is missing."""
    kb = turn.services.knowledge
    latest = await assessment_of(turn)
    market = _typed(turn, "market") or ""
    sector = _typed(turn, "sector") or _assessment_sector(kb, latest) or ""
    await answer(turn, market, sector, latest)


@router.step(ExportSteps.market)
async def market_answer(turn: Turn) -> None:
    """A typed market; also takes a sector said in the same breath."""
    await _step(turn, "market")


@router.step(ExportSteps.sector)
async def sector_answer(turn: Turn) -> None:
    """A typed sector; "back" returns to the market question."""
    await _step(turn, "sector")


async def _step(turn: Turn, asking: str) -> None:
    answers = turn.state.answers
    market = str(answers.get("market") or "")
    sector = str(answers.get("sector") or "")
    if asking == "sector" and is_back(turn):
        turn.goto(ExportSteps.market, sector="", market="", **{TRIES: 0})
        turn.say("export.ask_market", *market_buttons(turn, ""))
        return
    if back_to_menu(turn, "export.back"):
        return
    said_market = _typed(turn, "market")
    said_sector = _typed(turn, "sector")
    market = said_market or market
    sector = said_sector or sector
    got = said_market if asking == "market" else said_sector
    if got:
        await answer(turn, market, sector, await assessment_of(turn))
        return
    if offer_detour(turn):
        return
    tries = miss(turn, TRIES, limit=MAX_RETRIES)
    buttons = market_buttons(turn, sector) if asking == "market" else sector_buttons(turn, market)
    if tries.again:
        turn.goto(ExportSteps.get(asking), market=market, sector=sector, **tries.saved())
        if asking == "market":
            turn.say("export.ask_market_again", *buttons)
        else:
            turn.say("export.ask_sector_again", *buttons)
        return
    give_up(turn, "export.give_up", buttons)


@router.postback(CHOOSE)
async def choose_pressed(turn: Turn) -> None:
    """A market or sector button: carry on from what the button already knows."""
    kb = turn.services.knowledge
    data = turn.postback
    market = data.get("m", "")
    sector = data.get("s", "")
    if market not in kb.markets and market != ANY:
        market = ""
    if sector not in kb.sectors and sector != ANY:
        sector = ""
    await answer(turn, market, sector, await assessment_of(turn))
