"""A rich menu from the knowledge as LINE's ``RichMenuRequest`` JSON.

An area that runs an intent sends the same postback as the bot's menu buttons
(``action=go&i=<intent>``), so the router answers it like a typed request. LINE's rich
menus do not take the ``location`` action (quick replies only), so the location picker is
LINE's URL scheme for it, which opens the picker and sends the chosen place as a location
message, the one the centres handler answers.
"""

from __future__ import annotations

from typing import Any

from bot.content.menu import go_button
from bot.kb.loader import Knowledge
from bot.kb.schemas import RichMenu, RichMenuArea
from bot.line.messages import PostbackAction, UriAction

#: LINE's URL scheme that opens the location picker, see
#: https://developers.line.biz/en/docs/messaging-api/using-line-url-scheme/
LOCATION_PICKER_URI = "https://line.me/R/nv/location/"


def menu_of(menu: RichMenu | str, knowledge: Knowledge) -> RichMenu:
    """``menu`` itself, or the menu with that id in the knowledge (KeyError if none)."""
    return knowledge.richmenus[menu] if isinstance(menu, str) else menu


def action(area: RichMenuArea) -> dict[str, Any]:
    """What a tap on ``area`` does, as a LINE action object."""
    if area.intent is not None:
        button = go_button(area.label, area.intent)
        if area.display_text:
            button = PostbackAction(button.label, button.data, area.display_text)
        return button.to_line()
    if area.uri is not None:
        return UriAction(area.label, area.uri).to_line()
    return UriAction(area.label, LOCATION_PICKER_URI).to_line()


def request_body(menu: RichMenu | str, knowledge: Knowledge) -> dict[str, Any]:
    """The body of LINE's create (and validate) rich menu call for ``menu``."""
    m = menu_of(menu, knowledge)
    return {
        "size": {"width": m.width, "height": m.height},
        "selected": m.selected,
        "name": m.name,
        "chatBarText": m.chat_bar_text,
        "areas": [
            {
                "bounds": {
                    "x": a.bounds.x,
                    "y": a.bounds.y,
                    "width": a.bounds.width,
                    "height": a.bounds.height,
                },
                "action": action(a),
            }
            for a in m.areas
        ],
    }
