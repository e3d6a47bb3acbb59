"""``bot chat``: talk to the bot in a terminal, through the webhook's own pipeline.

Each line typed becomes a LINE-shaped event processed by the same
``Pipeline`` the workers run (intent engine, router, handlers, dialogue
state, event log), with replies printed instead of sent to LINE. Every
button is numbered, quick replies and the buttons on Flex cards alike:
typing the number presses it (a link button prints its address). ``@lat,lng``
shares a location (the answer to a "share my location" button);
``/follow``, ``/unfollow``, ``/sticker``, ``/image``, ``/video``, ``/audio``
and ``/file`` send those events. When the bot stays quiet (a user handed to
staff) the console says so. When standard input is not a terminal, one
message is read per line, so a conversation can be scripted:
``printf 'สวัสดี\\n' | bot chat --user U1``.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any, TextIO

from bot.line.messages import (
    Action,
    Flex,
    LocationAction,
    LocationMessage,
    Message,
    MessageAction,
    PostbackAction,
    Sticker,
    Text,
    UriAction,
)
from bot.pipeline.process import Pipeline
from bot.queue.base import QueuedEvent
from bot.services import Services
from bot.settings import Settings
from bot.storage.migrate import upgrade

_LOCATION = re.compile(r"^@\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")


def flex_action(data: dict[str, Any]) -> Action | None:
    """Our action for a Flex component's action JSON (None: a kind the console cannot press)."""
    label = str(data.get("label") or "")
    kind = data.get("type")
    if kind == "postback" and data.get("data"):
        return PostbackAction(label, str(data["data"]), data.get("displayText"))
    if kind == "uri" and data.get("uri"):
        return UriAction(label, str(data["uri"]))
    if kind == "message" and data.get("text"):
        return MessageAction(label or str(data["text"]), str(data["text"]))
    return None


def _flex_texts(node: Any, buttons: list[Action]) -> list[str]:
    """Text and buttons of a flex component tree, in reading order.

    Each pressable button is appended to ``buttons`` and shown with its number.
    """
    out: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "text" and node.get("text"):
            out.append(str(node["text"]))
        data = node.get("action")
        if isinstance(data, dict):
            action = flex_action(data)
            if action is not None and (node.get("type") == "button" or action.label):
                buttons.append(action)
                out.append(f"[{len(buttons)}] {action.label}".rstrip())
            elif node.get("type") == "button" and data.get("label"):
                out.append(f"[{data['label']}]")
        for key in ("header", "hero", "body", "footer", "contents"):
            if key in node:
                out += _flex_texts(node[key], buttons)
    elif isinstance(node, list):
        for child in node:
            out += _flex_texts(child, buttons)
    return out


_KINDS: dict[type, str] = {LocationAction: "share location", UriAction: "open link"}


def render(messages: Sequence[Message]) -> tuple[str, list[Action]]:
    """Readable text for a terminal, and every button to number.

    Flex card buttons are numbered where they appear; the quick replies (of
    the last message that has any, as LINE shows them) come after them.
    """
    lines: list[str] = []
    buttons: list[Action] = []
    quick: list[Action] = []
    for message in messages:
        if isinstance(message, Text):
            lines.append(f"bot> {message.text}")
            quick = list(message.quick_replies) or quick
        elif isinstance(message, Flex):
            contents = message.contents
            bubbles = (
                contents.get("contents", []) if contents.get("type") == "carousel" else [contents]
            )
            lines.append(f"bot> [{message.alt_text}] ({len(bubbles)} card(s))")
            for i, bubble in enumerate(bubbles, 1):
                lines.append(f"     card {i}: " + " | ".join(_flex_texts(bubble, buttons)))
            quick = list(message.quick_replies) or quick
        elif isinstance(message, Sticker):
            lines.append(f"bot> (sticker {message.package_id}/{message.sticker_id})")
        elif isinstance(message, LocationMessage):
            lines.append(
                f"bot> (map) {message.title}, {message.address} "
                f"({message.latitude:.5f}, {message.longitude:.5f})"
            )
    for action in quick:
        buttons.append(action)
        kind = _KINDS.get(type(action), "")
        lines.append(f"     [{len(buttons)}] {action.label}" + (f" ({kind})" if kind else ""))
    return "\n".join(lines), buttons


class ConsoleMessenger:
    """A Messenger that prints what LINE would show."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.buttons: list[Action] = []
        #: Answers printed so far (the chat loop notices an event that got none).
        self.answers = 0

    def _print(self, messages: Sequence[Message]) -> None:
        text, self.buttons = render(messages)
        self.answers += 1
        print(text, file=self.out, flush=True)

    async def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
        self._print(messages)

    async def push(self, to: str, messages: Sequence[Message], retry_key: str) -> bool:
        self._print(messages)
        return True

    async def show_loading(self, chat_id: str, seconds: int = 20) -> None:
        print("bot> ...", file=self.out, flush=True)

    async def profile(self, user_id: str) -> dict[str, Any]:
        return {"userId": user_id}


#: Console commands that send a media message of that kind.
_MEDIA = ("/image", "/video", "/audio", "/file")


def build_event(
    line: str, user_id: str, buttons: list[Action], out: TextIO | None = None
) -> dict[str, Any] | None:
    """The LINE event a typed line stands for (None: nothing to send)."""
    out = out or sys.stdout
    line = line.strip()
    if not line:
        return None
    base: dict[str, Any] = {
        "webhookEventId": "chat" + uuid.uuid4().hex[:22],
        "timestamp": int(time.time() * 1000),
        "mode": "active",
        "source": {"type": "user", "userId": user_id},
        "replyToken": uuid.uuid4().hex,
        "deliveryContext": {"isRedelivery": False},
    }
    if line.isdigit() and 1 <= int(line) <= len(buttons):
        action = buttons[int(line) - 1]
        if isinstance(action, PostbackAction):
            return {**base, "type": "postback", "postback": {"data": action.data}}
        if isinstance(action, MessageAction):
            line = action.text
        elif isinstance(action, LocationAction):
            print("     (type @latitude,longitude to share a location)", file=out)
            return None
        elif isinstance(action, UriAction):
            print(f"     (link: {action.uri})", file=out)
            return None
    match = _LOCATION.match(line)
    message: dict[str, Any]
    if match:
        message = {
            "type": "location",
            "id": uuid.uuid4().hex[:12],
            "latitude": float(match[1]),
            "longitude": float(match[2]),
        }
    elif line in ("/follow", "/unfollow"):
        return {**base, "type": line[1:]}
    elif line == "/sticker":
        message = {
            "type": "sticker",
            "id": uuid.uuid4().hex[:12],
            "packageId": "446",
            "stickerId": "1988",
        }
    elif line in _MEDIA:
        message = {"type": line[1:], "id": uuid.uuid4().hex[:12]}
        if line != "/file":
            message["contentProvider"] = {"type": "line"}
        else:
            message.update(fileName="document.pdf", fileSize=1024)
    else:
        message = {"type": "text", "id": uuid.uuid4().hex[:12], "text": line}
    return {**base, "type": "message", "message": message}


async def chat(settings: Settings, user_id: str, stdin: TextIO, out: TextIO) -> None:
    """Run the conversation loop until end of input (or ``/quit``)."""
    if settings.uses_sqlite:
        await asyncio.to_thread(upgrade, settings)
    services = Services.build(settings)
    console = ConsoleMessenger(out)
    pipeline = Pipeline(services, console)
    interactive = stdin.isatty()
    if interactive:
        print(
            "Type a message (numbers press buttons, @lat,lng shares a location, "
            "/sticker /image /file send media, /quit ends)."
        )
    try:
        while True:
            if interactive:
                line = await asyncio.to_thread(input, "you> ")
            else:
                line = await asyncio.to_thread(stdin.readline)
                if not line:
                    break
                print(f"you> {line.rstrip()}", file=out, flush=True)
            if line.strip() == "/quit":
                break
            event = build_event(line, user_id, console.buttons, out)
            if event is None:
                continue
            item = QueuedEvent(event["webhookEventId"], user_id, event["timestamp"], event, 1)
            before = console.answers
            await pipeline.process(item)
            if console.answers == before and event["type"] in ("message", "postback"):
                print(
                    "     (no answer: the bot is quiet, e.g. while staff have the chat)", file=out
                )
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        await services.close()


def run(settings: Settings, user_id: str) -> None:
    """Entry point for ``bot chat``."""
    asyncio.run(chat(settings, user_id, sys.stdin, sys.stdout))
