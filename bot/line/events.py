"""LINE webhook envelopes and events as small, typed values.

The queue carries each event's raw JSON (so an unknown event type survives a
round trip untouched); workers turn it into an ``InboundEvent`` only when they
handle it. We parse ourselves instead of with the SDK's models because the
SDK raises on event types it does not know, and LINE adds new ones.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any


class EnvelopeError(ValueError):
    """The body is not a LINE webhook envelope (answered 400)."""


#: The longest id stored (LINE's are 26 to 33 characters; the columns hold 64).
MAX_ID_CHARS = 64
#: A JSON escape of a UTF-16 surrogate: valid only in pairs (checked only when one is there).
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _without_nul(value: Any) -> Any:
    """``value`` with every NUL character in its strings (keys too) made U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def parse_envelope(body: bytes) -> list[dict[str, Any]]:
    """Return the envelope's events, checking only what routing needs."""
    try:
        # Strict UTF-8 (what LINE sends): json.loads on bytes would let an encoded
        # surrogate through ("surrogatepass"), text no store can take.
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"malformed JSON: {exc}") from None
    except RecursionError:  # nested deeper than any LINE event: refuse, never crash
        raise EnvelopeError("malformed JSON: nested too deep") from None
    if _SURROGATE.search(body) is not None:
        try:  # "\ud800" alone is valid JSON but no text: it could never be stored
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise EnvelopeError("text that is not valid Unicode (a lone surrogate)") from None
    if b"\\u0000" in body:  # NUL: no text of LINE's has one, and PostgreSQL cannot store it
        data = _without_nul(data)
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise EnvelopeError("body is not an object with an 'events' list")
    events: list[dict[str, Any]] = data["events"]
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise EnvelopeError(f"events[{i}] is not an object")
        if not isinstance(event.get("type"), str):
            raise EnvelopeError(f"events[{i}].type is missing")
        ts = event.get("timestamp")
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise EnvelopeError(f"events[{i}].timestamp is missing or not an integer")
        if not 0 <= ts < 2**63:
            raise EnvelopeError(f"events[{i}].timestamp is out of range")
        source = event.get("source")
        if isinstance(source, dict):
            for key in ("userId", "groupId", "roomId"):
                value = source.get(key)
                if isinstance(value, str) and len(value) > MAX_ID_CHARS:
                    raise EnvelopeError(f"events[{i}].source.{key} is longer than any LINE id")
        event_id = event.get("webhookEventId")
        if isinstance(event_id, str) and len(event_id) > MAX_ID_CHARS:
            raise EnvelopeError(f"events[{i}].webhookEventId is longer than any LINE id")
        if not isinstance(event.get("webhookEventId"), str) or not event["webhookEventId"]:
            # LINE always sends one; derive a stable id so redeliveries still de-duplicate.
            canonical = json.dumps(event, sort_keys=True, ensure_ascii=False).encode()
            event["webhookEventId"] = "h" + hashlib.sha256(canonical).hexdigest()[:25]
    return events


def source_key(event: dict[str, Any]) -> str:
    """The conversation an event belongs to: the unit of ordering and locking."""
    source = event.get("source") or {}
    if not isinstance(source, dict):
        return "unknown"
    for key in ("userId", "groupId", "roomId"):
        value = source.get(key)
        if isinstance(value, str) and value:
            if key == "userId" and source.get("type") in ("group", "room"):
                continue
            return value
    for key in ("groupId", "roomId", "userId"):
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    return "unknown"


@dataclass(frozen=True)
class Location:
    """A point a user shared, or one the bot shows."""

    latitude: float
    longitude: float
    title: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class InboundEvent:
    """What a handler needs from one webhook event."""

    id: str
    type: str
    timestamp_ms: int
    mode: str
    redelivery: bool
    source_type: str | None
    user_id: str | None
    chat_id: str
    reply_token: str | None
    message_type: str | None = None
    message_id: str | None = None
    text: str | None = None
    postback_data: str | None = None
    postback_params: dict[str, Any] = field(default_factory=dict)
    location: Location | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def one_to_one(self) -> bool:
        """True for a chat with one user (the only kind the bot serves fully)."""
        return self.source_type == "user"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InboundEvent:
        """Build from raw event JSON; unknown fields and types are kept in ``raw``."""
        source = data.get("source") if isinstance(data.get("source"), dict) else {}
        assert isinstance(source, dict)
        message = data.get("message") if isinstance(data.get("message"), dict) else {}
        assert isinstance(message, dict)
        postback = data.get("postback") if isinstance(data.get("postback"), dict) else {}
        assert isinstance(postback, dict)
        delivery = data.get("deliveryContext") or {}
        location = None
        if message.get("type") == "location":
            try:
                lat, lng = float(message["latitude"]), float(message["longitude"])
                # A point off the Earth (or 1e308, infinity) is no location: the handlers
                # ask where the user is instead of failing on it until it is dead-lettered.
                if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
                    raise ValueError("coordinates out of range")
                location = Location(
                    latitude=lat,
                    longitude=lng,
                    title=message.get("title"),
                    address=message.get("address"),
                )
            except (KeyError, TypeError, ValueError, OverflowError):
                location = None
        return cls(
            id=str(data["webhookEventId"]),
            type=str(data["type"]),
            timestamp_ms=int(data["timestamp"]),
            mode=str(data.get("mode") or "active"),
            redelivery=bool(isinstance(delivery, dict) and delivery.get("isRedelivery")),
            source_type=source.get("type"),
            user_id=source.get("userId"),
            chat_id=source_key(data),
            reply_token=data.get("replyToken"),
            message_type=message.get("type"),
            message_id=message.get("id"),
            text=message.get("text") if message.get("type") == "text" else None,
            postback_data=postback.get("data"),
            postback_params=postback.get("params") or {},
            location=location,
            raw=data,
        )
