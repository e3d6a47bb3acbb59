"""Detours: another question in the middle of a flow, and coming back to the flow after it.

In question 3 of the assessment a person types "อยากหาคอร์สบัญชี" or "จดทะเบียนพาณิชย์ที่ไหน".
That is not a bad answer to swallow, and it is not a reason to lose the first two answers:

* a step that cannot use a message which clearly reads as another capability or a guide calls
  ``offer_detour``: "ดู … เลยไหม หรือทำ … ต่อ", with a button for each;
* when the other capability answers (its button, or a global intent such as help or staff),
  ``pause_before`` keeps the flow: if the answer leaves the dialogue alone the flow simply
  stays open; if it ends the dialogue, the flow is kept as ``paused``; if it opens a flow of
  its own, the paused one rides along and comes back when that one ends;
* ``settle`` runs after every turn: it keeps the question a step last asked (to ask it again
  on resume) and adds a "ทำ … ต่อ" button while a flow waits;
* the ``resume`` button (``handlers.help``) restores the flow and asks its question again.

Cancel is the exception: it ends the flow and forgets any paused one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.content.menu import answer_button
from bot.dialogue.router import GO
from bot.dialogue.state import DialogueState
from bot.line.messages import QUICK_REPLY_MAX, Flex, PostbackAction, Text, postback_data

if TYPE_CHECKING:
    from bot.dialogue.router import Handler, Turn

#: The stored step of a flow waiting to be resumed (no handler: messages route as usual).
PAUSED = "paused"
#: Dialogue answers: the paused flow, and the last question an open step asked.
PAUSED_KEY = "_paused"
ASKED_KEY = "_asked"
#: The message a detour offer was made for: its button answers that message, places and all.
DETOUR_KEY = "_detour"
#: Postback flag of the offer's button (``action=go&i=<intent>&d=1``).
DETOUR_FLAG = "d"
#: A message whose place or topic names cover at least this share of its letters is an answer
#: to a step asking for a place or a topic, whatever else it could read as.
NAMES_SHARE = 0.5
RESUME = "resume"
#: Intents that never count as a detour: greetings and thanks are answered by the step.
SOCIAL = frozenset({"greet", "thanks", "goodbye", "back", "out_of_scope"})
#: The largest question (LINE JSON) kept for asking again; carousels are not kept.
ASKED_MAX_BYTES = 4000


def _module(handler: Handler | None) -> str | None:
    return getattr(handler, "__module__", None)


def _flow_module(turn: Turn, step: str | None) -> str | None:
    found = turn.services.dispatcher.steps.get(step or "")
    return _module(found.func) if found else None


def flow_label(turn: Turn, step: str) -> str:
    """What a person calls the flow of ``step`` ("การทำแบบประเมินทักษะ")."""
    key = f"help.flow_{step.split('.', 1)[0]}"
    replies = turn.services.replies
    return replies.text(key) if key in replies else replies.text("help.flow_other")


def resume_button(turn: Turn) -> PostbackAction:
    """The button that goes back to the flow that waits."""
    label = turn.reply_text("help.button_resume")
    return PostbackAction(label=label, data=postback_data(RESUME), display_text=label)


def detour_intent(turn: Turn) -> str | None:
    """The capability or guide a message in a step clearly asks for instead (None: none)."""
    parse = turn.nlu
    intent = parse.intent if parse else None
    if not intent or intent in SOCIAL:
        return None
    dispatcher = turn.services.dispatcher
    handler = dispatcher.handler_for(intent)
    if handler is None or intent in dispatcher.global_intents:
        return None
    if _module(handler) == _flow_module(turn, turn.state.step):
        return None  # the flow's own capability: the step handles it
    return intent if answer_button(turn, intent) is not None else None


def mostly_names(turn: Turn) -> bool:
    """Is the message mostly the names it mentions ("ขายของออนไลน์", "เชียงใหม่")? Then a step
    asking for a topic or place takes it as the answer; a longer question that merely
    contains one ("จดทะเบียนพาณิชย์ต้องใช้เอกสารอะไร") is about something else."""
    parse = turn.nlu
    if parse is None or not parse.entities:
        return False
    letters = len(parse.normalised.replace(" ", ""))
    named = sum(len(e.text.replace(" ", "")) for e in parse.entities)
    return letters > 0 and named / letters >= NAMES_SHARE


def offer_detour_first(turn: Turn) -> bool:
    """``offer_detour`` for a step that reads topics or places out of any message: a message
    that is more than the names it contains is offered as the detour it asks for."""
    return not mostly_names(turn) and offer_detour(turn)


def offer_detour(turn: Turn) -> bool:
    """Offer the other capability or guide the message asks for, and the way back (True);
    False when the message does not clearly ask for something else."""
    intent = detour_intent(turn)
    step = turn.state.step
    if intent is None or step is None:
        return False
    button = answer_button(turn, intent)
    if button is None:
        return False
    flow = flow_label(turn, step)
    data = postback_data(GO, i=intent, **{DETOUR_FLAG: "1"})
    go = PostbackAction(label=button.label, data=data, display_text=button.label)
    turn.say("help.detour", go, resume_button(turn), topic=button.label, flow=flow)
    # the button answers this very message (its place, topic and market) when pressed
    state = turn.next_state or turn.state
    answers = {**state.answers, DETOUR_KEY: turn.text[:500]}
    turn.next_state = DialogueState(step=state.step, answers=answers)
    turn.detour_offered = True
    return True


def pause_before(turn: Turn, route: str, handler: Handler | None) -> None:
    """Before another capability answers inside an open flow, remember the flow."""
    step = turn.state.step
    if not route.startswith("intent:") or turn.answering == "cancel":
        return
    said = turn.state.answers.get(DETOUR_KEY)
    if turn.event.type == "postback" and turn.postback.get(DETOUR_FLAG) and isinstance(said, str):
        turn.nlu = turn.services.nlu.parse(said)  # the offer's button answers what was asked
    open_flow = bool(step) and step != PAUSED and step in turn.services.dispatcher.steps
    if open_flow and _module(handler) != _flow_module(turn, step):
        answers = {k: v for k, v in turn.state.answers.items() if k != DETOUR_KEY}
        turn.paused = {"step": step, "answers": answers}


def settle(turn: Turn) -> None:
    """After the answer: keep a paused flow, the question an open step asked, and offer
    the way back to a waiting flow."""
    dispatcher = turn.services.dispatcher
    if turn.forget:
        return  # the user's data is being erased: nothing is kept
    cancelled = turn.answering == "cancel"
    final = turn.next_state or turn.state
    paused: dict[str, Any] | None = turn.paused
    if paused is None and not cancelled and turn.next_state is not None:
        carried = turn.state.answers.get(PAUSED_KEY)
        if isinstance(carried, dict) and final.step is None:
            paused = carried  # a flow opened during a detour ended: the paused one is back
    if cancelled and final.step is None:
        turn.next_state = DialogueState()
        return
    if paused is not None:
        if final.step == paused.get("step"):
            pass  # the detour left the flow open
        elif final.step is None or final.step == PAUSED:
            turn.next_state = DialogueState(step=PAUSED, answers={PAUSED_KEY: paused})
        elif PAUSED_KEY not in final.answers:
            turn.next_state = DialogueState(
                step=final.step, answers={**final.answers, PAUSED_KEY: paused}
            )
    final = turn.next_state or turn.state
    asked_now = turn.next_state is not None and not turn.detour_offered
    if asked_now and final.step in dispatcher.steps and turn.messages:
        asked = turn.messages[-1].to_line()
        if len(json.dumps(asked, ensure_ascii=False).encode()) <= ASKED_MAX_BYTES:
            final.answers[ASKED_KEY] = asked
    waiting = final.step == PAUSED or (
        turn.paused is not None and final.step == turn.paused.get("step")
    )
    if waiting and turn.messages:
        _add_quick(turn, resume_button(turn))


def _add_quick(turn: Turn, button: PostbackAction) -> None:
    last = turn.messages[-1]
    if not isinstance(last, (Text, Flex)):
        return
    if any(getattr(q, "data", None) == button.data for q in last.quick_replies):
        return
    import dataclasses

    quick = (*last.quick_replies[: QUICK_REPLY_MAX - 1], button)
    turn.messages[-1] = dataclasses.replace(last, quick_replies=quick)


def restore(turn: Turn) -> DialogueState | None:
    """The flow a resume button goes back to (None: nothing waits)."""
    state = turn.state
    if state.step == PAUSED:
        paused = state.answers.get(PAUSED_KEY)
        if isinstance(paused, dict) and paused.get("step") in turn.services.dispatcher.steps:
            return DialogueState(
                step=str(paused["step"]), answers=dict(paused.get("answers") or {})
            )
        return None
    if state.step and state.step in turn.services.dispatcher.steps:
        return DialogueState(step=state.step, answers=dict(state.answers))
    return None
