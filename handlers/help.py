"""Small talk that keeps a conversation moving: help, thanks, goodbye, cancel, back.

``cancel`` is global: it wins over whatever step the user is in, so "ยกเลิก"
always gets a person out of a flow. ``back`` reaches this module only when no
step is open (a step handler that can go back handles it itself), so here it
just says there is nothing to go back to. Every answer that leaves the user
without a next move carries the main menu.
"""

from __future__ import annotations

from bot.content.menu import answer_button, intent_buttons, main_menu
from bot.dialogue.detours import ASKED_KEY, PAUSED, RESUME, flow_label, restore, resume_button
from bot.dialogue.router import Router, Turn
from bot.dialogue.stamps import STALE
from bot.line.messages import from_line
from bot.pipeline import held

router = Router("help")

#: Capabilities the help menu offers besides the main menu (less common, still findable).
MORE = ("unsubscribe", "delete_my_data")


@router.intent("help", global_=True)
async def show_help(turn: Turn) -> None:
    """What the bot can do, as buttons that start each capability."""
    turn.say("help.menu", *main_menu(turn), *intent_buttons(turn, list(MORE)))


@router.intent("thanks")
async def thanks(turn: Turn) -> None:
    """You're welcome, and the menu in case there is more to do."""
    turn.say("help.thanks", *main_menu(turn))


@router.intent("goodbye")
async def goodbye(turn: Turn) -> None:
    """Say goodbye warmly; the user can come back any time."""
    turn.say("help.goodbye")


def flow_name(turn: Turn, step: str) -> str | None:
    """What a person would call the flow a step belongs to (None: a flow we don't know)."""
    r = turn.reply_text
    names = {
        "assessment": r("help.flow_assessment"),
        "courses": r("help.flow_courses"),
        "export": r("help.flow_export"),
        "centres": r("help.flow_centres"),
        "subscribe": r("help.flow_subscribe"),
        "privacy": r("help.flow_privacy"),
    }
    return names.get(step.split(".", 1)[0])


@router.intent("cancel", global_=True)
async def cancel(turn: Turn) -> None:
    """End whatever step is open and say what was cancelled; the menu comes with it."""
    step = turn.state.step
    if not step:
        turn.say("help.nothing_to_cancel", *main_menu(turn))
        return
    turn.end()
    what = flow_name(turn, step)
    if what is None:
        turn.say("help.cancelled_step", *main_menu(turn))
    else:
        turn.say("help.cancelled", *main_menu(turn), what=what)


@router.intent("back")
async def back(turn: Turn) -> None:
    """A "back" outside any flow: nothing to go back to, so offer the menu."""
    turn.say("help.nothing_to_go_back", *main_menu(turn))


@router.postback(RESUME)
async def resume(turn: Turn) -> None:
    """Back to the flow a detour interrupted: its question is asked again."""
    restored = restore(turn)
    if restored is None or restored.step is None:
        turn.say("help.nothing_to_resume", *main_menu(turn))
        return
    turn.next_state = restored
    turn.say("help.resumed", flow=flow_label(turn, restored.step))
    asked = restored.answers.get(ASKED_KEY)
    if isinstance(asked, dict):
        turn.send(from_line(asked))
    else:
        turn.say("help.resumed_answer_again")


@router.event(STALE)
async def stale_button(turn: Turn) -> None:
    """A flow's button from an earlier state: not acted on; say where the person is now."""
    if turn.state.expired_step and turn.services.dispatcher.timeout_handler(turn) is not None:
        return  # the time-out notice has just said what happened
    step = turn.state.step
    if step == PAUSED and restore(turn) is not None:
        turn.say("help.stale_button_paused", resume_button(turn))
        return
    if not step or step not in turn.services.dispatcher.steps:
        intent = turn.services.dispatcher.restarts.get(turn.postback.get("action", ""))
        again = answer_button(turn, intent) if intent else None
        if again is not None:
            menu = [b for b in main_menu(turn) if b.data != again.data]
            timed_out = turn.state.expired_step is not None  # not ended: it timed out
            key = "help.stale_button_expired" if timed_out else "help.stale_button_restart"
            turn.say(key, again, *menu)
        else:
            turn.say("help.stale_button", *main_menu(turn))
        return
    turn.say("help.stale_button_in_flow", flow=flow_label(turn, step))
    asked = turn.state.answers.get(ASKED_KEY)
    if isinstance(asked, dict):
        turn.send(from_line(asked))
    else:
        turn.say("help.resumed_answer_again")


@router.postback(held.LATER)
async def late_result(turn: Turn) -> None:
    """The "ดูผลลัพธ์" tap: the answer that was not ready in time, by this fresh reply."""
    event_id = turn.postback.get("e", "")
    user = turn.user_id
    status, messages = await turn.read(lambda s: held.find(s, event_id, user))
    if status == held.HELD and messages:
        for message in messages:
            turn.send(from_line(message))
        turn.write(held.taken(event_id))  # with this answer: shown once
        return
    if status in ("processing", "sending"):
        turn.say("help.result_not_ready", held.later_button(turn.services.replies, event_id))
        return
    turn.say("help.result_gone", *main_menu(turn))
