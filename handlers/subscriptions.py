"""subscribe / unsubscribe: which new courses a user hears about by push notice.

Subscribing is three button presses deep: topics (several; each press toggles
one, and the labels show which are chosen), a province or nationwide (typed
names work too), then a confirmation that writes the user's one
``Subscription`` row, the record the push notices (issue 6) select from.
Unsubscribing stops everything or some topics. Every postback carries what it
needs, so an old button does something sensible instead of failing.

```mermaid
stateDiagram-v2
    [*] --> topics: subscribe
    [*] --> already: active subscription
    already --> topics: change
    topics --> topics: toggle
    topics --> area: done
    area --> confirm: province / nationwide
    confirm --> [*]: yes (row saved)
    confirm --> topics: edit
    [*] --> stop: unsubscribe
    stop --> [*]: all
    stop --> stop_some: some
    stop_some --> stop_some: topic removed
    stop_some --> [*]: done / last topic
```
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.menu import back_to_menu, go_button, intent_buttons, is_back, main_menu
from bot.dialogue.detours import offer_detour, offer_detour_first
from bot.dialogue.retries import Miss, miss
from bot.dialogue.router import Router, Turn
from bot.dialogue.steps import Step, StepGroup
from bot.insights import capture, records
from bot.line.messages import Action, PostbackAction, postback_data
from bot.storage.db import Subscription
from bot.storage.queries import (
    Merge,
    deactivate,
    latest_assessment,
    load_subscription,
    save_subscription,
    set_topics,
)


class SubscribeSteps(StepGroup, prefix="subscribe"):
    """Choosing topics, then the area, then confirming; or choosing topics to stop."""

    topics = Step()
    area = Step()
    confirm = Step()
    stop_some = Step()


router = Router("subscriptions", steps=SubscribeSteps)

TOPICS = SubscribeSteps.topics
AREA = SubscribeSteps.area
CONFIRM = SubscribeSteps.confirm
STOP_SOME = SubscribeSteps.stop_some

#: Postback actions (``action=<name>&...``).
TOGGLE = "subt"  # t=<topic id>: choose or un-choose a topic
DONE = "subd"  # topics chosen
PLACE = "suba"  # p=<province code> | all
DECIDE = "subc"  # a=yes | edit | no
MANAGE = "subm"  # a=change | stop | keep (already subscribed)
STOP = "unsb"  # a=all | some | keep, or t=<topic id> to stop one topic

NATIONWIDE = "all"
#: Quick replies left for topics after "done" and "cancel" (LINE allows 13).
MAX_TOPIC_BUTTONS = 11
MAX_TRIES = 2
#: Dialogue-answer key of the count of typed answers not understood.
TRIES = "sub_tries"
#: More provinces than this in one answer is a misreading, not a choice.
MAX_PROVINCES = 5
PLACE_TYPES = ("province", "district", "subdistrict")


# -- storage ------------------------------------------------------------------------------


async def _subscription(turn: Turn) -> Subscription | None:
    user = turn.user_id
    return await turn.read(lambda s: load_subscription(s, user))


async def _write_subscription(
    s: AsyncSession, user_id: str, topics: Sequence[str], provinces: Sequence[str]
) -> None:
    """The user's choice replaces their topics; the stage is their latest assessment's."""
    latest = await latest_assessment(s, user_id)
    stage = latest.stage if latest is not None else None
    await save_subscription(s, user_id, topics, provinces, stage=stage, merge=Merge.REPLACE)


# -- wording ------------------------------------------------------------------------------


def topic_names(turn: Turn, topics: Iterable[str]) -> str:
    """Topic labels from the knowledge, in the given order."""
    known = turn.services.knowledge.topics
    return ", ".join(known[t].label.th for t in topics if t in known)


def area_names(turn: Turn, provinces: Sequence[str]) -> str:
    """Province names, or "nationwide" for an empty list."""
    if not provinces:
        return turn.reply_text("subscribe.nationwide")
    places = turn.services.knowledge.places.provinces
    return ", ".join(places[p].name_th for p in provinces if p in places)


def _answers(turn: Turn) -> tuple[list[str], list[str]]:
    known = turn.services.knowledge.topics
    topics = [str(t) for t in turn.state.answers.get("sub_topics", []) if t in known]
    provinces = [str(p) for p in turn.state.answers.get("sub_provinces", [])]
    return topics, provinces


def _typed(turn: Turn, key: str) -> bool:
    """The user typed a button's label instead of pressing it."""
    return turn.text.strip() == turn.reply_text(key).strip()


def _typed_topics(turn: Turn) -> list[str]:
    if turn.nlu is None:
        return []
    known = turn.services.knowledge.topics
    return list(dict.fromkeys(e.value for e in turn.nlu.entities_of("topic") if e.value in known))


def _button(turn: Turn, key: str, action: str, **params: str) -> PostbackAction:
    label = turn.reply_text(key)
    return PostbackAction(label=label, data=postback_data(action, **params), display_text=label)


def _cancel_button(turn: Turn) -> PostbackAction:
    return go_button(turn.reply_text("subscribe.button_cancel"), "cancel")


# -- subscribing --------------------------------------------------------------------------


def ask_topics(turn: Turn, chosen: Sequence[str], key: str | None = None, tries: int = 0) -> None:
    """The topic buttons, chosen ones marked; each press toggles one."""
    known = turn.services.knowledge.topics
    buttons: list[Action] = []
    for topic_id, topic in list(known.items())[:MAX_TOPIC_BUTTONS]:
        mark = "subscribe.topic_on" if topic_id in chosen else "subscribe.topic_off"
        label = turn.reply_text(mark, topic=topic.label.th)
        buttons.append(
            PostbackAction(label=label, data=postback_data(TOGGLE, t=topic_id), display_text=label)
        )
    buttons += [_button(turn, "subscribe.button_done", DONE), _cancel_button(turn)]
    turn.end()
    turn.goto(TOPICS, sub_topics=list(chosen), **{TRIES: tries})
    if key is not None:
        turn.say(key, *buttons)
    elif chosen:
        turn.say("subscribe.chosen", *buttons, topics=topic_names(turn, chosen))
    else:
        turn.say("subscribe.ask_topics", *buttons)


async def ask_area(turn: Turn, topics: Sequence[str]) -> None:
    """Province (optional): the assessment's, nationwide, or a typed one."""
    buttons: list[Action] = []
    user = turn.user_id
    latest = await turn.latest_assessment(user)
    places = turn.services.knowledge.places.provinces
    mine = latest.province_code if latest is not None else None
    if mine and mine in places:
        label = turn.reply_text("subscribe.button_my_province", province=places[mine].name_th)
        buttons.append(
            PostbackAction(label=label, data=postback_data(PLACE, p=mine), display_text=label)
        )
    buttons.append(_button(turn, "subscribe.button_nationwide", PLACE, p=NATIONWIDE))
    buttons.append(_cancel_button(turn))
    turn.end()
    turn.goto(AREA, sub_topics=list(topics), **{TRIES: 0})
    turn.say("subscribe.ask_area", *buttons)


def ask_confirm(
    turn: Turn, topics: Sequence[str], provinces: Sequence[str], tries: int = 0
) -> None:
    """Show what will be saved; yes, edit, or cancel."""
    turn.end()
    turn.goto(CONFIRM, sub_topics=list(topics), sub_provinces=list(provinces), **{TRIES: tries})
    turn.say(
        "subscribe.confirm",
        _button(turn, "subscribe.button_confirm", DECIDE, a="yes"),
        _button(turn, "subscribe.button_edit", DECIDE, a="edit"),
        _button(turn, "subscribe.button_cancel", DECIDE, a="no"),
        topics=topic_names(turn, topics),
        area=area_names(turn, provinces),
    )


async def _save(turn: Turn, topics: Sequence[str], provinces: Sequence[str]) -> None:
    user, chosen, area = turn.user_id, list(topics), list(provinces)
    turn.write(lambda s: _write_subscription(s, user, chosen, area))
    turn.end()
    turn.say(
        "subscribe.saved",
        *main_menu(turn),
        topics=topic_names(turn, topics),
        area=area_names(turn, provinces),
    )


def _next_try(turn: Turn, give_up: str = "subscribe.give_up") -> Miss | None:
    """Count a misunderstood answer; None (and the flow closed) after too many."""
    tries = miss(turn, TRIES, limit=MAX_TRIES)
    if tries.again:
        return tries
    turn.end()
    if give_up == "unsubscribe.gave_up":
        turn.say("unsubscribe.gave_up", *main_menu(turn))
    else:
        turn.say("subscribe.give_up", *main_menu(turn))
    return None


async def _hand_over(turn: Turn) -> bool:
    """The user asked for something else mid-step: another capability or a guide is offered
    (the flow waits); the other notice request ("stop" while subscribing) answers at once."""
    if offer_detour(turn):
        return True
    intent = turn.nlu.intent if turn.nlu else None
    if not intent or intent in ("subscribe", "back", "out_of_scope"):
        return False
    if not turn.can_hand_over(intent):
        return False
    turn.end()
    return await turn.hand_over(intent)


def provinces_in(turn: Turn) -> list[str]:
    """Province codes the user typed (a district or subdistrict counts as its province)."""
    codes: list[str] = []
    for entity in turn.nlu.entities if turn.nlu else ():
        if entity.type not in PLACE_TYPES:
            continue
        provinces = {c[:2] for c in (entity.candidates or (entity.value,))}
        if len(provinces) == 1:
            codes.append(provinces.pop())
    if not codes and turn.text.strip():
        places = turn.services.knowledge.places
        result = places.find_in_text(turn.text) or places.resolve(turn.text)
        if result.province_code:
            codes.append(result.province_code)
    known = turn.services.knowledge.places.provinces
    found = [c for c in dict.fromkeys(codes) if c in known]
    # "อ.เมือง" names every province's capital district: that is not a choice of provinces.
    return found if len(found) <= MAX_PROVINCES else []


@router.intent("subscribe")
async def subscribe(turn: Turn) -> None:
    """Start choosing topics (topics named in the message are chosen already)."""
    row = await _subscription(turn)
    named = _typed_topics(turn)
    if row is not None and row.active and not named:
        turn.end()
        turn.say(
            "subscribe.already",
            _button(turn, "subscribe.button_change", MANAGE, a="change"),
            _button(turn, "subscribe.button_stop", MANAGE, a="stop"),
            _button(turn, "subscribe.button_keep", MANAGE, a="keep"),
            topics=topic_names(turn, row.topics),
            area=area_names(turn, row.provinces),
        )
        return
    start = list(row.topics) if row is not None else []
    ask_topics(turn, list(dict.fromkeys([*start, *named])))


@router.postback(TOGGLE, stamped=True, restart="subscribe")
async def toggle_topic(turn: Turn) -> None:
    """Choose or un-choose one topic; an old button starts a fresh choice."""
    topic = turn.postback.get("t", "")
    chosen = _answers(turn)[0] if turn.state.step == TOPICS else []
    if topic in turn.services.knowledge.topics:
        chosen = [t for t in chosen if t != topic] if topic in chosen else [*chosen, topic]
    ask_topics(turn, chosen)


@router.postback(DONE, stamped=True, restart="subscribe")
async def topics_done(turn: Turn) -> None:
    """Topics chosen: ask about the province (at least one topic first)."""
    if turn.state.step != TOPICS:
        ask_topics(turn, [], key="subscribe.stale")
        return
    chosen = _answers(turn)[0]
    if not chosen:
        ask_topics(turn, [], key="subscribe.none_chosen")
        return
    await ask_area(turn, chosen)


@router.step(TOPICS)
async def topics_typed(turn: Turn) -> None:
    """Typed topic names are chosen; "done" typed works like the button."""
    chosen = _answers(turn)[0]
    if _typed(turn, "subscribe.button_done"):
        if chosen:
            await ask_area(turn, chosen)
        else:
            ask_topics(turn, [], key="subscribe.none_chosen")
        return
    if back_to_menu(turn, "subscribe.cancelled"):
        return
    if offer_detour_first(turn):  # a question that merely names a topic chooses nothing
        return
    named = _typed_topics(turn)
    if named:
        ask_topics(turn, list(dict.fromkeys([*chosen, *named])))
        return
    if await _hand_over(turn):
        return
    tries = _next_try(turn)
    if tries is not None:
        ask_topics(turn, chosen, key="subscribe.topics_not_understood", tries=tries.count)


@router.postback(PLACE, stamped=True, restart="subscribe")
async def area_chosen(turn: Turn) -> None:
    """The province button, or nationwide."""
    topics = _answers(turn)[0]
    if turn.state.step != AREA or not topics:
        ask_topics(turn, [], key="subscribe.stale")
        return
    code = turn.postback.get("p", NATIONWIDE)
    provinces = [] if code == NATIONWIDE else [code]
    if provinces and code not in turn.services.knowledge.places.provinces:
        await ask_area(turn, topics)
        return
    ask_confirm(turn, topics, provinces)


@router.step(AREA)
async def area_typed(turn: Turn) -> None:
    """A typed province (or several); "back" returns to the topics."""
    topics = _answers(turn)[0]
    if is_back(turn):
        ask_topics(turn, topics)
        return
    if _typed(turn, "subscribe.button_nationwide"):
        ask_confirm(turn, topics, [])
        return
    provinces = provinces_in(turn)
    if provinces:
        ask_confirm(turn, topics, provinces)
        return
    if await _hand_over(turn):
        return
    tries = _next_try(turn)
    if tries is not None:
        turn.goto(AREA, **tries.saved())
        turn.say(
            "subscribe.area_not_understood",
            _button(turn, "subscribe.button_nationwide", PLACE, p=NATIONWIDE),
            _cancel_button(turn),
        )


@router.postback(DECIDE, stamped=True, restart="subscribe")
async def decided(turn: Turn) -> None:
    """Yes saves the row; edit goes back to the topics; no leaves everything as it was."""
    answer = turn.postback.get("a", "")
    topics, provinces = _answers(turn)
    if answer == "no":
        turn.end()
        turn.say("subscribe.cancelled", *main_menu(turn))
        return
    if turn.state.step != CONFIRM or not topics:
        ask_topics(turn, [], key="subscribe.stale")
        return
    if answer == "yes":
        await _save(turn, topics, provinces)
    else:
        ask_topics(turn, topics)


@router.step(CONFIRM)
async def confirm_typed(turn: Turn) -> None:
    """The confirmation typed as words: the button labels, or "back" to the province."""
    topics, provinces = _answers(turn)
    if _typed(turn, "subscribe.button_confirm"):
        await _save(turn, topics, provinces)
    elif _typed(turn, "subscribe.button_edit"):
        ask_topics(turn, topics)
    elif is_back(turn):
        await ask_area(turn, topics)
    elif not await _hand_over(turn):
        tries = _next_try(turn)
        if tries is not None:
            ask_confirm(turn, topics, provinces, tries=tries.count)


@router.postback(MANAGE, stamped=True, restart="subscribe")
async def manage(turn: Turn) -> None:
    """Already subscribed: change the topics, stop, or keep."""
    answer = turn.postback.get("a", "")
    row = await _subscription(turn)
    if answer == "change":
        ask_topics(turn, list(row.topics) if row is not None else [])
    elif answer == "stop":
        await _stop_all(turn)
    else:
        turn.end()
        turn.say("subscribe.kept", *main_menu(turn))


# -- unsubscribing ------------------------------------------------------------------------


async def _stop_all(turn: Turn) -> None:
    user = turn.user_id
    turn.write(lambda s: deactivate(s, user))
    capture.note(turn, records.NOTICE_UNSUBSCRIBED, last_notice=True)
    turn.end()
    turn.say("unsubscribe.stopped_all", *intent_buttons(turn, ["subscribe", "help"]))


def _stop_buttons(turn: Turn, topics: Sequence[str]) -> list[Action]:
    known = turn.services.knowledge.topics
    buttons: list[Action] = []
    for topic in [t for t in topics if t in known][:MAX_TOPIC_BUTTONS]:
        label = turn.reply_text("unsubscribe.topic_button", topic=known[topic].label.th)
        buttons.append(
            PostbackAction(label=label, data=postback_data(STOP, t=topic), display_text=label)
        )
    buttons.append(_button(turn, "unsubscribe.button_done", STOP, a="keep"))
    return buttons


async def _stop_topics(turn: Turn, row: Subscription, stopped: Sequence[str]) -> None:
    """Stop some topics; stopping the last one stops everything."""
    remaining = [t for t in row.topics if t not in stopped]
    if not remaining:
        await _stop_all(turn)
        return
    user = turn.user_id
    turn.write(lambda s: set_topics(s, user, remaining))
    capture.note(turn, records.NOTICE_UNSUBSCRIBED, last_notice=True)
    turn.end()
    turn.goto(STOP_SOME)
    turn.say(
        "unsubscribe.removed",
        *_stop_buttons(turn, remaining),
        removed=topic_names(turn, stopped),
        topics=topic_names(turn, remaining),
    )


async def _active(turn: Turn) -> Subscription | None:
    row = await _subscription(turn)
    if row is None or not row.active:
        turn.end()
        turn.say("unsubscribe.nothing", *intent_buttons(turn, ["subscribe", "help"]))
        return None
    return row


@router.intent("unsubscribe")
async def unsubscribe(turn: Turn) -> None:
    """Stop all notices or some topics; topics named in the message are stopped at once."""
    row = await _active(turn)
    if row is None:
        return
    named = [t for t in _typed_topics(turn) if t in row.topics]
    if named:
        await _stop_topics(turn, row, named)
        return
    buttons = [_button(turn, "unsubscribe.button_all", STOP, a="all")]
    if len(row.topics) > 1:
        buttons.append(_button(turn, "unsubscribe.button_some", STOP, a="some"))
    buttons.append(_button(turn, "unsubscribe.button_keep", STOP, a="keep"))
    turn.end()
    turn.say("unsubscribe.ask", *buttons, topics=topic_names(turn, row.topics))


@router.postback(STOP, stamped=True, restart="unsubscribe")
async def stop(turn: Turn) -> None:
    """Stop all, pick some, stop one topic, or keep the rest."""
    row = await _active(turn)
    if row is None:
        return
    topic = turn.postback.get("t")
    answer = turn.postback.get("a", "")
    if topic:
        if topic in row.topics:
            await _stop_topics(turn, row, [topic])
        else:
            turn.goto(STOP_SOME)
            turn.say("unsubscribe.pick", *_stop_buttons(turn, row.topics))
    elif answer == "all":
        await _stop_all(turn)
    elif answer == "some":
        turn.end()
        turn.goto(STOP_SOME)
        turn.say("unsubscribe.pick", *_stop_buttons(turn, row.topics))
    else:
        turn.end()
        turn.say("unsubscribe.kept", *main_menu(turn), topics=topic_names(turn, row.topics))


@router.step(STOP_SOME)
async def stop_typed(turn: Turn) -> None:
    """Typed topic names are stopped; "done" typed keeps the rest."""
    row = await _active(turn)
    if row is None:
        return
    if _typed(turn, "unsubscribe.button_done"):
        turn.end()
        turn.say("unsubscribe.kept", *main_menu(turn), topics=topic_names(turn, row.topics))
        return
    named = [t for t in _typed_topics(turn) if t in row.topics]
    if named:
        await _stop_topics(turn, row, named)
        return
    if await _hand_over(turn):
        return
    tries = _next_try(turn, give_up="unsubscribe.gave_up")
    if tries is not None:
        turn.end()
        turn.goto(STOP_SOME, **tries.saved())
        turn.say("unsubscribe.topics_not_understood", *_stop_buttons(turn, row.topics))
