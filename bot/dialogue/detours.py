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

from bot.dialogue.state import DialogueState
from bot.line.messages import QUICK_REPLY_MAX, Flex, PostbackAction, Text, postback_data

if TYPE_CHECKING:
    from bot.dialogue.router import Handler, Turn

#: The stored step of a flow waiting to be resumed (no handler: messages route as usual).
PAUSED = "paused"
#: Dialogue answers: the paused flow, and the last question an open step asked.
PAUSED_KEY = "_paused"
ASKED_KEY = "_asked"
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
    from bot.content.menu import answer_button

    return intent if answer_button(turn, intent) is not None else None


def offer_detour(turn: Turn) -> bool:
    """Offer the other capability or guide the message asks for, and the way back (True);
    False when the message does not clearly ask for something else."""
    from bot.content.menu import answer_button

    intent = detour_intent(turn)
    step = turn.state.step
    if intent is None or step is None:
        return False
    button = answer_button(turn, intent)
    if button is None:
        return False
    flow = flow_label(turn, step)
    turn.say("help.detour", button, resume_button(turn), topic=button.label, flow=flow)
    return True


def pause_before(turn: Turn, route: str, handler: Handler | None) -> None:
    """Before another capability answers inside an open flow, remember the flow."""
    step = turn.state.step
    if not route.startswith("intent:") or turn.answering == "cancel":
        return
    open_flow = bool(step) and step != PAUSED and step in turn.services.dispatcher.steps
    if open_flow and _module(handler) != _flow_module(turn, step):
        turn.paused = {"step": step, "answers": dict(turn.state.answers)}


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
    if turn.next_state is not None and final.step in dispatcher.steps and turn.messages:
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
