"""find_centre: the community digital centres nearest to a shared location or a typed place.

A shared LINE location (asked for, or sent unprompted) gives the nearest centres
with their distance and "you are near ต.… อ.… จ.…". A typed place gives the
centres in that area, or the nearest to it when it has none. A name that several
places carry ("จอมทอง") is asked about with one button per place; no place at all
asks for the location with LINE's location button, and a typed place is accepted
at that step too.

```mermaid
stateDiagram-v2
    [*] --> answer: location / place in the message
    [*] --> where: no place
    [*] --> which_place: ambiguous name
    where --> answer: location / place
    where --> which_place: ambiguous name
    which_place --> answer: button / location / place
    answer --> [*]
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.content.cards import area_text, carousel, centre_bubble
from bot.content.menu import back_to_menu, intent_buttons, main_menu
from bot.dialogue.detours import offer_detour
from bot.dialogue.retries import miss
from bot.dialogue.router import Router, Turn
from bot.dialogue.steps import Step, StepGroup
from bot.kb.loader import Knowledge
from bot.kb.queries import centres_in, nearest_centres, where_am_i
from bot.kb.schemas import Centre
from bot.line.messages import Action, LocationAction, PostbackAction, postback_data
from bot.nlu.entities import Entity


class CentreSteps(StepGroup, prefix="centres"):
    """Asking where the user is, then which of several places of that name."""

    where = Step()
    which_place = Step()


router = Router("centres", steps=CentreSteps)

WHERE = CentreSteps.where
WHICH = CentreSteps.which_place
#: Postback of a place button: ``action=ctrp&c=<DOPA code>``.
PICK = "ctrp"
PLACE_TYPES = ("province", "district", "subdistrict")
#: Centres shown for a point: LINE's carousel scrolls sideways, five is plenty.
NEAREST_K = 5
#: Cards in one carousel (``bot.cards.carousel`` keeps at most this many).
MAX_CARDS = 10
#: Say "you are near ต.…" only when a subdistrict's reference point is this close.
NEAR_KM = 15.0
#: Most place buttons under one question (LINE allows 13 quick replies; one is the location).
MAX_OPTIONS = 12
#: Misunderstood answers before the step gives up (no endless loops).
MAX_TRIES = 2
#: Dialogue-answer key of that count.
TRIES = "ctr_tries"


@dataclass(frozen=True)
class PlaceChoice:
    """What a message says about a place: one code, several to choose from, or nothing."""

    code: str | None = None
    options: tuple[str, ...] = ()
    #: Only the largest of several same-named places was taken ("หัวหิน": the district).
    guessed: bool = False
    name: str = ""


# -- reading a place ----------------------------------------------------------------------


def narrow(codes: Sequence[str], name: str = "") -> PlaceChoice:
    """One place from a shared name: the largest level wins when only one place has it.

    People naming a district rarely mean a same-named subdistrict elsewhere ("หัวหิน"), so
    a single match at the highest level is taken (and the user told); several at that level
    are asked about.
    """
    unique = list(dict.fromkeys(codes))
    if not unique:
        return PlaceChoice(name=name)
    shortest = min(len(c) for c in unique)
    top = [c for c in unique if len(c) == shortest]
    if len(top) == 1:
        return PlaceChoice(code=top[0], guessed=len(unique) > 1, name=name)
    return PlaceChoice(options=tuple(top), name=name)


def from_entities(entities: Sequence[Entity]) -> PlaceChoice:
    """The place the intent engine found: the most precise clear one, else the shared name.

    Clear places in one province narrow each other ("หัวหิน ประจวบ"); clear places in
    several ("โคราช อุบล", or "อำเภอเมือง", which every province has) are asked about.
    """
    places = [e for e in entities if e.type in PLACE_TYPES]
    clear = [e for e in places if not e.ambiguous]
    if clear:
        per_province: dict[str, Entity] = {}
        for e in clear:
            known = per_province.get(e.value[:2])
            if known is None or len(e.value) > len(known.value):
                per_province[e.value[:2]] = e
        picks = list(per_province.values())
        if len(picks) == 1:
            return PlaceChoice(code=picks[0].value, name=picks[0].text)
        return narrow([e.value for e in picks])
    if places:
        codes = [c for e in places for c in (e.candidates or (e.value,))]
        return narrow(codes, places[0].text)
    return PlaceChoice()


def read_place(kb: Knowledge, text: str, entities: Sequence[Entity], whole: bool) -> PlaceChoice:
    """A place in the message: entities first, then the gazetteer (``whole``: it is a place)."""
    choice = from_entities(entities)
    if choice.code or choice.options or not text.strip():
        return choice
    result = kb.places.find_in_text(text)
    if not result and whole:
        result = kb.places.resolve(text)
    if result.best is not None:
        return PlaceChoice(code=result.best.code, name=result.best.name_th)
    if result.ambiguous:
        return narrow([m.code for m in result.top], result.top[0].name_th)
    return PlaceChoice()


def _place(turn: Turn, whole: bool) -> PlaceChoice:
    entities = turn.nlu.entities if turn.nlu else ()
    return read_place(turn.services.knowledge, turn.text, entities, whole)


# -- wording ------------------------------------------------------------------------------


def area_label(turn: Turn, code: str) -> str:
    """The area in words ("ต.… อ.… จ.…") for a subdistrict, district or province code."""
    names = turn.services.knowledge.places.area_names(code)
    text = area_text(
        names,
        turn.services.replies,
        "centres.area_subdistrict",
        "centres.area_district",
        "centres.area_province",
    )
    return text or ""


def _option_label(turn: Turn, code: str) -> str:
    """A short button label: the place and its province ("อ.จอมทอง เชียงใหม่")."""
    n = turn.services.knowledge.places.area_names(code)
    if "subdistrict" in n:
        area = n["subdistrict_prefix"] + n["subdistrict"]
    elif "district" in n:
        area = n["district_prefix"] + n["district"]
    else:
        return turn.reply_text("centres.place_option_province", province=n["province"])
    return turn.reply_text("centres.place_option", area=area, province=n["province"])


def _km(distance: float) -> str:
    """As the cards show it (one decimal), so the alt text and the cards agree."""
    return f"{distance:.1f}"


def _location_button(turn: Turn) -> LocationAction:
    return LocationAction(turn.reply_text("centres.button_share_location"))


def _after_answer(turn: Turn) -> tuple[Action, ...]:
    """Quick replies under the centres: another location, then the next useful things."""
    return (_location_button(turn), *intent_buttons(turn, ["find_course", "help"]))


def _send_centres(turn: Turn, found: Sequence[tuple[Centre, float | None]]) -> None:
    kb = turn.services.knowledge
    replies = turn.services.replies
    bubbles = [centre_bubble(c, kb, replies, distance_km=km) for c, km in found]
    items = [
        turn.reply_text("centres.alt_item", name=c.name_th, km=_km(km))
        if km is not None
        else c.name_th
        for c, km in found
    ]
    alt = turn.reply_text("centres.alt_text", count=len(found), names=", ".join(items))
    turn.send(carousel(bubbles, alt, quick=_after_answer(turn)))


# -- answers ------------------------------------------------------------------------------


async def answer_location(turn: Turn, lat: float, lng: float) -> None:
    """The nearest centres to a point, and which subdistrict the point is in."""
    kb = turn.services.knowledge
    turn.end()
    found = nearest_centres(kb, lat, lng, k=NEAREST_K)
    if not found:
        turn.say("centres.none_at_all", *main_menu(turn))
        return
    try:
        sub, off_km = where_am_i(kb, lat, lng)
    except LookupError:
        sub, off_km = None, float("inf")
    if sub is not None and off_km <= NEAR_KM:
        turn.say("centres.near_you", area=area_label(turn, sub.code), count=len(found))
    else:
        turn.say("centres.nearest", count=len(found))
    _send_centres(turn, [(c, km) for c, km in found])


async def answer_area(turn: Turn, code: str, guessed: bool = False) -> None:
    """Centres in a typed area; the nearest to its middle when it has none (and say so)."""
    kb = turn.services.knowledge
    turn.end()
    try:
        area = kb.places.get(code)
    except KeyError:
        await ask_where(turn)
        return
    label = area_label(turn, code)
    if guessed:
        turn.say("centres.guessed", area=label)
    inside = centres_in(kb, code)
    if inside:
        turn.say("centres.in_area", area=label, count=len(inside))
        _send_centres(turn, [(c, None) for c in inside[:MAX_CARDS]])
        return
    found = nearest_centres(kb, area.lat, area.lng, k=NEAREST_K)
    if not found:
        turn.say("centres.none_at_all", *main_menu(turn))
        return
    turn.say("centres.none_in_area", area=label, count=len(found))
    _send_centres(turn, [(c, km) for c, km in found])


async def ask_where(turn: Turn, tries: int = 0) -> None:
    """No place given: ask for LINE's location (or a typed place)."""
    turn.end()
    turn.goto(WHERE, **{TRIES: tries})
    if tries == 0:
        turn.say("centres.ask_where", _location_button(turn))
    else:
        turn.say("centres.where_not_understood", _location_button(turn))


async def ask_which(turn: Turn, choice: PlaceChoice) -> None:
    """Several places fit: one button each (postback with the code), or, when there are
    too many for buttons, ask for the province (typing it narrows the same options)."""
    buttons: list[Action] = []
    if len(choice.options) <= MAX_OPTIONS:
        for code in choice.options:
            label = _option_label(turn, code)
            buttons.append(
                PostbackAction(label=label, data=postback_data(PICK, c=code), display_text=label)
            )
    buttons.append(_location_button(turn))
    turn.end()
    turn.goto(WHICH, ctr_options=list(choice.options), **{TRIES: 0})
    if len(choice.options) > MAX_OPTIONS:
        turn.say("centres.which_place_many", *buttons)
    elif choice.name:
        turn.say("centres.which_place", *buttons, name=choice.name)
    else:
        turn.say("centres.which_place_unnamed", *buttons)


async def _answer_choice(turn: Turn, choice: PlaceChoice) -> bool:
    """Answer a place reading; False when there was no place in it."""
    if choice.code:
        await answer_area(turn, choice.code, guessed=choice.guessed)
        return True
    if choice.options:
        await ask_which(turn, choice)
        return True
    return False


async def _hand_over(turn: Turn) -> bool:
    """The user asked for something else mid-step: let that capability answer.

    Place names alone read as ``out_of_scope`` (or no intent), so they stay here.
    """
    return offer_detour(turn)


async def _not_understood(turn: Turn) -> None:
    tries = miss(turn, TRIES, limit=MAX_TRIES)
    if not tries.again:
        turn.end()
        turn.say("centres.give_up", *main_menu(turn))
        return
    await ask_where(turn, tries.count)


# -- handlers -----------------------------------------------------------------------------


@router.intent("find_centre")
async def find_centre(turn: Turn) -> None:
    """Centres near a place named in the message, or ask where the user is."""
    if not await _answer_choice(turn, _place(turn, whole=False)):
        await ask_where(turn)


@router.event("message:location")
async def shared_location(turn: Turn) -> None:
    """A location shared without being asked: the nearest centres are the useful answer."""
    location = turn.event.location
    if location is None:
        await ask_where(turn)
        return
    await answer_location(turn, location.latitude, location.longitude)


async def _answered_before_place(turn: Turn) -> bool:
    """What both place questions handle first: a shared location, "back", another capability."""
    location = turn.event.location
    if location is not None:
        await answer_location(turn, location.latitude, location.longitude)
        return True
    if back_to_menu(turn, "centres.left"):
        return True
    return await _hand_over(turn)


@router.step(WHERE, accepts=("location",))
async def where_answer(turn: Turn) -> None:
    """The answer to "where are you?": a shared location or a typed place."""
    if await _answered_before_place(turn):
        return
    if await _answer_choice(turn, _place(turn, whole=True)):
        return
    await _not_understood(turn)


@router.step(WHICH, accepts=("location",))
async def which_answer(turn: Turn) -> None:
    """Typed instead of pressed: a province narrows the options; another place is a new ask."""
    if await _answered_before_place(turn):
        return
    options = [str(c) for c in turn.state.answers.get("ctr_options", [])]
    choice = _place(turn, whole=True)
    if choice.code:
        inside = [o for o in options if o.startswith(choice.code)]
        if choice.code in options or len(inside) != 1:
            await answer_area(turn, choice.code, guessed=choice.guessed)
        else:
            await answer_area(turn, inside[0])
        return
    if choice.options:
        kept = [o for o in choice.options if o in options]
        if len(kept) == 1:
            await answer_area(turn, kept[0])
        else:
            await ask_which(turn, choice)
        return
    await _not_understood(turn)


@router.postback(PICK, stamped=True, restart="find_centre")
async def picked(turn: Turn) -> None:
    """A place button of the question now open (an older one is stale: ``bot.dialogue.stamps``)."""
    code = turn.postback.get("c", "")
    if not code.isdigit():
        await ask_where(turn)
        return
    await answer_area(turn, code)
