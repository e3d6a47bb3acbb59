"""Flex building blocks that always fit LINE's limits, whatever the knowledge holds.

Texts are capped by the callers (``fit``), links are made valid http(s) URIs or dropped,
a bubble past 30 KB loses its optional parts and then shortens its texts, and a carousel
keeps at most 10 bubbles and drops trailing ones past 50 KB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from bot.line.messages import Action, Flex, fit

__all__ = [
    "ACCENT",
    "BUBBLE_MAX_BYTES",
    "CAROUSEL_MAX_BYTES",
    "GREY",
    "LINE_MAX",
    "MAX_BUBBLES",
    "NAME_MAX",
    "NOTE",
    "NOTE_MAX",
    "URI_MAX",
    "WARN",
    "bubble",
    "button",
    "carousel",
    "row",
    "safe_uri",
    "size_of",
    "tel_uri",
    "text",
]

#: Bubbles we show in one carousel (LINE allows 12; ten is plenty to read on a phone).
MAX_BUBBLES = 10
#: LINE's limits on Flex JSON, measured as compact UTF-8 (1 KB taken as 1000 bytes).
BUBBLE_MAX_BYTES = 30_000
CAROUSEL_MAX_BYTES = 50_000
#: Characters of a URI action (LINE's limit).
URI_MAX = 1000

# Caps on what one card shows, so no knowledge entry can make a bubble too big.
NAME_MAX = 120
LINE_MAX = 240
NOTE_MAX = 400

GREY = "#8C8C8C"
ACCENT = "#06C755"
WARN = "#D97706"
NOTE = "#B45309"


def safe_uri(url: str | None) -> str | None:
    """``url`` as an absolute http(s) URI LINE accepts (non-ASCII escaped), or None."""
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    escaped = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    return escaped if len(escaped) <= URI_MAX else None


def tel_uri(phone: str | None) -> str | None:
    """A ``tel:`` URI for a Thai phone number as people write it ("02-123 4567"), or None."""
    if not phone:
        return None
    # The first number only: "02-123 4567 ext 12" or "1569, 1570" dial the first.
    first = re.match(r"\s*\+?[\d\s\-()]+", phone)
    digits = re.sub(r"[^\d+]", "", first.group()) if first else ""
    return f"tel:{digits}" if len(digits.lstrip("+")) >= 3 else None


def text(value: str, **style: Any) -> dict[str, Any]:
    """A Flex text component; LINE refuses empty text, so callers pass something."""
    return {"type": "text", "text": value or " ", "wrap": True, **style}


def row(label: str, value: str) -> dict[str, Any]:
    """A grey label and its value on one baseline ("รูปแบบ  ออนไลน์")."""
    return {
        "type": "box",
        "layout": "baseline",
        "spacing": "sm",
        "contents": [
            text(fit(label, 40), size="sm", color=GREY, flex=2),
            text(fit(value, LINE_MAX), size="sm", flex=5),
        ],
    }


def button(action: Action, primary: bool) -> dict[str, Any]:
    """A footer button: the first one filled in the accent colour, the others links."""
    return {
        "type": "button",
        "style": "primary" if primary else "link",
        "height": "sm",
        "color": ACCENT if primary else None,
        "action": action.to_line(),
    }


def _clean(node: Any) -> Any:
    """Drop None values (optional Flex properties left unset)."""
    if isinstance(node, dict):
        return {k: _clean(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def bubble(
    body: list[dict[str, Any]], buttons: list[dict[str, Any]], *, optional: int = 0
) -> dict[str, Any]:
    """A bubble; if it passed LINE's 30 KB, drop body parts from the end (never the first
    ``len(body) - optional`` essentials), then shorten the rest."""
    while True:
        made = _clean(
            {
                "type": "bubble",
                "size": "kilo",
                "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": body},
                "footer": (
                    {"type": "box", "layout": "vertical", "spacing": "xs", "contents": buttons}
                    if buttons
                    else None
                ),
            }
        )
        if size_of(made) <= BUBBLE_MAX_BYTES:
            return dict(made)
        if optional > 0:
            body = body[:-1]
            optional -= 1
            continue
        body = [_shrink(part) for part in body]


def _shrink(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "text" and isinstance(node.get("text"), str):
            return {**node, "text": fit(node["text"], max(20, len(node["text"]) // 2))}
        return {k: _shrink(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_shrink(v) for v in node]
    return node


def card_titles(bubbles: Sequence[dict[str, Any]]) -> str:
    """The cards' names (each bubble's first text), for an ``altText`` that says what the
    cards are: LINE shows it in notifications, and screen readers read it out."""
    names = []
    for bubble in list(bubbles)[:MAX_BUBBLES]:
        first = (bubble.get("body") or {}).get("contents") or [{}]
        text = first[0].get("text") if isinstance(first[0], dict) else None
        if isinstance(text, str) and text.strip():
            names.append(text.strip())
    return ", ".join(names)


def size_of(container: dict[str, Any]) -> int:
    """Bytes of compact UTF-8 JSON, as LINE measures a Flex container."""
    return len(json.dumps(container, ensure_ascii=False, separators=(",", ":")).encode())


def carousel(
    bubbles: Sequence[dict[str, Any]], alt_text: str, quick: tuple[Action, ...] = ()
) -> Flex:
    """Bubbles as one Flex message: at most 10, and fewer if they would pass 50 KB.

    One bubble is sent as a carousel too, so every answer reads the same way.
    """
    kept = list(bubbles)[:MAX_BUBBLES]
    while len(kept) > 1 and size_of({"type": "carousel", "contents": kept}) > CAROUSEL_MAX_BYTES:
        kept.pop()
    return Flex(
        alt_text=alt_text, contents={"type": "carousel", "contents": kept}, quick_replies=quick
    )
