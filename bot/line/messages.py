"""The bot's own outgoing message types.

Handlers build these small values; ``bot.line.client`` turns them into SDK models and
``bot chat`` prints them. Each knows its LINE JSON form, so both delivery
paths agree on exactly what a user would see.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

# LINE's documented limits (Messaging API reference). Every ``to_line`` keeps within
# them, so no knowledge edit can make a request LINE would reject.
#: Messages in one reply or push.
MAX_MESSAGES = 5
#: Characters of a text message.
TEXT_MAX = 5000
#: Quick-reply buttons under one message.
QUICK_REPLY_MAX = 13
#: Characters of an action label (quick reply; Flex buttons allow 40, we keep to 20).
LABEL_MAX = 20
#: Characters of the text a message action sends, and of a postback's display text.
ACTION_TEXT_MAX = 300
#: Bytes of postback data.
POSTBACK_DATA_MAX_BYTES = 300
#: Characters of a Flex message's alternative text (notifications, old clients).
ALT_TEXT_MAX = 400
#: Bubbles in one Flex carousel.
CAROUSEL_MAX = 12


def line_length(text: str) -> int:
    """Length as LINE counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` LINE characters with an ellipsis, never mid-character.

    Thai vowel and tone marks are combining characters: the cut moves back so a
    consonant never loses its marks (which would show a different word).
    """
    if line_length(text) <= limit:
        return text
    out = text
    while out and line_length(out) > limit - 1:
        out = out[:-1]
    while out and unicodedata.combining(out[-1]):
        out = out[:-1]
    # A Thai consonant followed by a dropped mark is still whole; strip a dangling
    # leading vowel (เ แ โ ใ ไ) whose consonant was cut off.
    while out and out[-1] in "เแโใไ":
        out = out[:-1]
    return out.rstrip() + "…"


@dataclass(frozen=True)
class MessageAction:
    """A button that sends ``text`` as if the user typed it."""

    label: str
    text: str

    def to_line(self) -> dict[str, Any]:
        return {
            "type": "message",
            "label": fit(self.label, LABEL_MAX),
            "text": fit(self.text, ACTION_TEXT_MAX),
        }


@dataclass(frozen=True)
class PostbackAction:
    """A button that sends structured ``data`` (``action=name&k=v``) to the bot."""

    label: str
    data: str
    display_text: str | None = None

    def to_line(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "postback",
            "label": fit(self.label, LABEL_MAX),
            "data": self.data,
        }
        if self.display_text:
            out["displayText"] = fit(self.display_text, ACTION_TEXT_MAX)
        return out


@dataclass(frozen=True)
class LocationAction:
    """LINE's "share my location" quick-reply button."""

    label: str

    def to_line(self) -> dict[str, Any]:
        return {"type": "location", "label": fit(self.label, LABEL_MAX)}


@dataclass(frozen=True)
class UriAction:
    """A button that opens a web page."""

    label: str
    uri: str

    def to_line(self) -> dict[str, Any]:
        return {"type": "uri", "label": fit(self.label, LABEL_MAX), "uri": self.uri}


Action = MessageAction | PostbackAction | LocationAction | UriAction


def postback_data(action: str, **params: str | int) -> str:
    """Encode a postback payload; the router dispatches on ``action``.

    Raises ``ValueError`` past LINE's 300 bytes: keep ids short, never put text in.
    """
    data = urlencode({"action": action, **{k: str(v) for k, v in params.items()}})
    if len(data.encode()) > POSTBACK_DATA_MAX_BYTES:
        raise ValueError(f"postback data is {len(data.encode())} bytes (LINE allows 300)")
    return data


def parse_postback(data: str | None) -> dict[str, str]:
    """Decode ``postback_data`` output; unknown shapes give an empty action."""
    if not data:
        return {}
    return dict(parse_qsl(data, keep_blank_values=True))


def _quick_reply(items: tuple[Action, ...]) -> dict[str, Any]:
    kept = items[:QUICK_REPLY_MAX]
    return {"items": [{"type": "action", "action": a.to_line()} for a in kept]}


@dataclass(frozen=True)
class Text:
    """A text bubble, optionally with quick-reply buttons under it."""

    text: str
    quick_replies: tuple[Action, ...] = ()

    def to_line(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "text", "text": fit(self.text, TEXT_MAX)}
        if self.quick_replies:
            out["quickReply"] = _quick_reply(self.quick_replies)
        return out


@dataclass(frozen=True)
class Flex:
    """A Flex bubble or carousel; ``contents`` is LINE's flex JSON."""

    alt_text: str
    contents: dict[str, Any] = field(hash=False)
    quick_replies: tuple[Action, ...] = ()

    def to_line(self) -> dict[str, Any]:
        contents = self.contents
        if contents.get("type") == "carousel" and len(contents.get("contents", ())) > CAROUSEL_MAX:
            contents = {**contents, "contents": contents["contents"][:CAROUSEL_MAX]}
        out: dict[str, Any] = {
            "type": "flex",
            "altText": fit(self.alt_text, ALT_TEXT_MAX),
            "contents": contents,
        }
        if self.quick_replies:
            out["quickReply"] = _quick_reply(self.quick_replies)
        return out


@dataclass(frozen=True)
class Sticker:
    """A LINE sticker (package and sticker ids from LINE's sticker list)."""

    package_id: str
    sticker_id: str

    def to_line(self) -> dict[str, Any]:
        return {"type": "sticker", "packageId": self.package_id, "stickerId": self.sticker_id}


@dataclass(frozen=True)
class LocationMessage:
    """A map pin, e.g. a community digital centre."""

    title: str
    address: str
    latitude: float
    longitude: float

    def to_line(self) -> dict[str, Any]:
        return {
            "type": "location",
            "title": self.title,
            "address": self.address,
            "latitude": self.latitude,
            "longitude": self.longitude,
        }


Message = Text | Flex | Sticker | LocationMessage


def from_line(data: dict[str, Any]) -> Message:
    """Rebuild a message stored in the outbox (inverse of ``to_line``)."""

    def actions(node: dict[str, Any]) -> tuple[Any, ...]:
        out: list[Any] = []
        for item in (node.get("quickReply") or {}).get("items", []):
            a = item["action"]
            if a["type"] == "message":
                out.append(MessageAction(a["label"], a["text"]))
            elif a["type"] == "postback":
                out.append(PostbackAction(a["label"], a["data"], a.get("displayText")))
            elif a["type"] == "location":
                out.append(LocationAction(a["label"]))
            elif a["type"] == "uri":
                out.append(UriAction(a["label"], a["uri"]))
        return tuple(out)

    kind = data["type"]
    if kind == "text":
        return Text(data["text"], actions(data))
    if kind == "flex":
        return Flex(data["altText"], data["contents"], actions(data))
    if kind == "sticker":
        return Sticker(data["packageId"], data["stickerId"])
    if kind == "location":
        return LocationMessage(data["title"], data["address"], data["latitude"], data["longitude"])
    raise ValueError(f"cannot rebuild a stored {kind} message")
