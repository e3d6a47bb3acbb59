"""The bot's own outgoing message types.

Handlers build these small values; ``bot.line`` turns them into SDK models and
``bot chat`` prints them. Each knows its LINE JSON form, so both delivery
paths agree on exactly what a user would see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode


@dataclass(frozen=True)
class MessageAction:
    """A button that sends ``text`` as if the user typed it."""

    label: str
    text: str

    def to_line(self) -> dict[str, Any]:
        return {"type": "message", "label": self.label, "text": self.text}


@dataclass(frozen=True)
class PostbackAction:
    """A button that sends structured ``data`` (``action=name&k=v``) to the bot."""

    label: str
    data: str
    display_text: str | None = None

    def to_line(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "postback", "label": self.label, "data": self.data}
        if self.display_text:
            out["displayText"] = self.display_text
        return out


@dataclass(frozen=True)
class LocationAction:
    """LINE's "share my location" quick-reply button."""

    label: str

    def to_line(self) -> dict[str, Any]:
        return {"type": "location", "label": self.label}


@dataclass(frozen=True)
class UriAction:
    """A button that opens a web page."""

    label: str
    uri: str

    def to_line(self) -> dict[str, Any]:
        return {"type": "uri", "label": self.label, "uri": self.uri}


Action = MessageAction | PostbackAction | LocationAction | UriAction


def postback_data(action: str, **params: str | int) -> str:
    """Encode a postback payload; the router dispatches on ``action``."""
    return urlencode({"action": action, **{k: str(v) for k, v in params.items()}})


def parse_postback(data: str | None) -> dict[str, str]:
    """Decode ``postback_data`` output; unknown shapes give an empty action."""
    if not data:
        return {}
    return dict(parse_qsl(data, keep_blank_values=True))


def _quick_reply(items: tuple[Action, ...]) -> dict[str, Any]:
    return {"items": [{"type": "action", "action": a.to_line()} for a in items]}


@dataclass(frozen=True)
class Text:
    """A text bubble, optionally with quick-reply buttons under it."""

    text: str
    quick_replies: tuple[Action, ...] = ()

    def to_line(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "text", "text": self.text}
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
        out: dict[str, Any] = {"type": "flex", "altText": self.alt_text, "contents": self.contents}
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

#: LINE accepts at most this many messages in one reply or push.
MAX_MESSAGES = 5
