"""The main menu: what the bot can do, as buttons that start each capability.

Shared by help, the welcome, cancel, the fallback and "did you mean ...?".
Each button is a postback ``action=go&i=<intent>`` (see ``bot.dialogue.router.GO``),
so pressing it runs the intent's handler without another trip through the
intent engine; its label comes from ``knowledge/replies.yaml`` (``menu.*``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from bot.dialogue.router import GO
from bot.line.messages import (
    QUICK_REPLY_MAX,
    Action,
    Flex,
    MessageAction,
    PostbackAction,
    Text,
    postback_data,
)

#: LINE's limit on the text a message action sends.
MESSAGE_ACTION_MAX = 300

if TYPE_CHECKING:
    from bot.dialogue.router import Turn


def intent_labels(turn: Turn) -> dict[str, str]:
    """Button label of each intent a person can start from a menu."""
    r = turn.reply_text
    return {
        "start_assessment": r("menu.start_assessment"),
        "find_course": r("menu.find_course"),
        "export_programme": r("menu.export_programme"),
        "find_centre": r("menu.find_centre"),
        "subscribe": r("menu.subscribe"),
        "unsubscribe": r("menu.unsubscribe"),
        "my_profile": r("menu.my_profile"),
        "delete_my_data": r("menu.delete_my_data"),
        "contact_staff": r("menu.contact_staff"),
        "help": r("menu.help"),
    }


def go_button(label: str, intent: str) -> PostbackAction:
    """A button that runs ``intent``'s handler; the chat shows the label as the user's words."""
    return PostbackAction(label=label, data=postback_data(GO, i=intent), display_text=label)


def help_button(turn: Turn) -> PostbackAction:
    """The button that opens the help (labelled as in the menu)."""
    return go_button(intent_labels(turn)["help"], "help")


#: The main menu, in the order a newcomer meets it.
MAIN_MENU = (
    "start_assessment",
    "find_course",
    "export_programme",
    "find_centre",
    "subscribe",
    "my_profile",
    "contact_staff",
)


def main_menu(turn: Turn) -> tuple[PostbackAction, ...]:
    """The main menu as quick-reply buttons."""
    labels = intent_labels(turn)
    return tuple(go_button(labels[i], i) for i in MAIN_MENU)


def intent_buttons(turn: Turn, intents: list[str]) -> tuple[PostbackAction, ...]:
    """Buttons for these intents (those that have a menu label), in the given order."""
    labels = intent_labels(turn)
    return tuple(go_button(labels[i], i) for i in intents if i in labels)


def answer_button(turn: Turn, intent: str) -> PostbackAction | None:
    """A button for an intent with a menu label, or for a guide (``guide:<id>``)."""
    guide = turn.services.knowledge.guides.by_label(intent)
    if guide is not None:
        return go_button(guide.short, guide.label)
    labels = intent_labels(turn)
    return go_button(labels[intent], intent) if intent in labels else None


def offer_also(turn: Turn) -> None:
    """A message with two requests: after the first is answered, offer the second as the
    first quick reply of the last message (when it is not what was just answered)."""
    parse = turn.nlu
    second = parse.also if parse else None
    if not second or second == turn.answering or not turn.messages:
        return
    button = answer_button(turn, second)
    last = turn.messages[-1]
    if button is None or not isinstance(last, (Text, Flex)):
        return
    label = turn.reply_text("guides.button_also", label=button.label)
    # the second request's own words, sent as if typed: its place and topic come along
    offer: Action = (
        MessageAction(label=label, text=parse.also_text[:MESSAGE_ACTION_MAX])
        if parse and parse.also_text
        else dataclasses.replace(button, label=label, display_text=button.label)
    )
    quick = (offer, *last.quick_replies)[:QUICK_REPLY_MAX]
    turn.messages[-1] = dataclasses.replace(last, quick_replies=quick)


def is_back(turn: Turn) -> bool:
    """The message asks to go back (the ``back`` intent)."""
    return turn.nlu is not None and turn.nlu.intent == "back"


def back_to_menu(turn: Turn, key: str) -> bool:
    """On "back", close the open step and say reply ``key`` with the main menu (True);
    any other message is left to the caller (False)."""
    if not is_back(turn):
        return False
    turn.end()
    turn.say(key, *main_menu(turn))
    return True
