"""Conversation scripts: one user talking to the running bot, as on a phone.

``Chat`` posts real signed webhook events to the app (``ServerThread``), waits
for what the fake LINE API delivered for that event (the reply with the
event's token, or a push to the user) and returns LINE's message JSON, so a
test reads like the chat it checks::

    chat = Chat(server, fake_line, user_id("a"))
    answer = chat.say("อยากทำแบบประเมิน")
    answer = chat.press(answer, "ยังเป็นแค่ไอเดีย")

Every request the bot makes was already checked by the fake against LINE's
OpenAPI spec and limits; a rejected one fails the wait here with its reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.content.replies import Replies
from bot.kb.queries import CourseHit, ProgrammeHit
from bot.settings import Settings, to_sync_url
from bot.storage.db import Assessment, EventLog
from tests.conftest import SECRET
from tests.fakeline import FakeLine
from tests.helpers import (
    ServerThread,
    WorkerThread,
    bot_database,
    envelope,
    event_of,
    json_dicts,
    post_signed,
    text_event,
)

Message = dict[str, Any]

#: Event-log states after which an event gets no (more) answer.
_FINISHED = ("done", "standby", "failed", "dead")


def serving(settings: Settings) -> Iterator[ServerThread]:
    """The bot serving, with a worker (embedded in serve, or a separate one with Redis)."""
    with ServerThread(settings) as server:
        if settings.redis_url:
            with WorkerThread(settings):
                yield server
        else:
            yield server


class Chat:
    """One LINE user's side of a conversation with the running bot."""

    def __init__(self, server: ServerThread, fake: FakeLine, user: str) -> None:
        self.server = server
        self.fake = fake
        self.user = user
        self._engine: Engine | None = None
        self.last: list[Message] = []

    # -- sending ---------------------------------------------------------------------------

    def say(self, text: str, timeout: float = 15.0) -> list[Message]:
        """Type ``text``; the messages the bot answered with."""
        return self._send(text_event(text, self.user), timeout)

    def press(self, answer: list[Message], label: str, timeout: float = 15.0) -> list[Message]:
        """Tap the quick-reply or Flex button whose label contains ``label``."""
        action = find_action(answer, label)
        if action["type"] == "message":
            return self.say(action["text"], timeout)
        if action["type"] == "postback":
            return self.postback(action["data"], timeout)
        raise AssertionError(f"button {label!r} is a {action['type']} action; tap it yourself")

    def postback(self, data: str, timeout: float = 15.0) -> list[Message]:
        """A postback event, as LINE sends when a postback button is tapped."""
        return self._send(event_of("postback", self.user, postback={"data": data}), timeout)

    def share_location(
        self, lat: float, lng: float, address: str = "", timeout: float = 15.0
    ) -> list[Message]:
        """Share a location (LINE's location message)."""
        message: dict[str, Any] = {
            "id": str(uuid.uuid4().int)[:18],
            "type": "location",
            "latitude": lat,
            "longitude": lng,
        }
        if address:
            message["address"] = address
        return self._send(event_of("message", self.user, message=message), timeout)

    def send_media(self, kind: str, timeout: float = 15.0) -> list[Message]:
        """A sticker, image, audio, video or file message."""
        message: dict[str, Any] = {"id": str(uuid.uuid4().int)[:18], "type": kind}
        if kind == "sticker":
            message.update(packageId="446", stickerId="1988", stickerResourceType="STATIC")
        else:
            message["contentProvider"] = {"type": "line"}
        return self._send(event_of("message", self.user, message=message), timeout)

    def follow(self, timeout: float = 15.0) -> list[Message]:
        return self._send(event_of("follow", self.user, follow={"isUnblocked": False}), timeout)

    def unfollow(self, timeout: float = 15.0) -> list[Message]:
        return self._send(event_of("unfollow", self.user), timeout)

    def _send(self, event: dict[str, Any], timeout: float) -> list[Message]:
        resp = post_signed(self.server.base_url, SECRET, envelope(event))
        assert resp.status_code == 200, resp.text
        self.last = self._answer(event, timeout)
        return self.last

    # -- waiting for the answer ------------------------------------------------------------

    def _answer(self, event: dict[str, Any], timeout: float) -> list[Message]:
        token = event.get("replyToken")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self._status(event["webhookEventId"])
            if status in _FINISHED:
                return self._delivered(token)
            time.sleep(0.02)
        rejected = [
            (r.kind, r.status, r.body) for r in self.fake.calls("*", None) if r.status >= 400
        ]
        raise AssertionError(f"no answer within {timeout}s; LINE refused: {rejected[-3:]}")

    def _delivered(self, token: str | None) -> list[Message]:
        """What LINE delivered for this event: the reply with its token, else pushes."""
        delivered = self.fake.delivered()
        replies = [m for to, m in delivered if token and to == token]
        return replies

    def _status(self, event_id: str) -> str | None:
        if self._engine is None:
            self._engine = create_engine(to_sync_url(self.server.settings.sqlalchemy_url))
        with self._engine.connect() as conn:
            return conn.scalar(select(EventLog.status).where(EventLog.webhook_event_id == event_id))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


# -- reading answers -----------------------------------------------------------------------


def texts(answer: list[Message]) -> list[str]:
    """The text of each text message (Flex: its altText)."""
    out = []
    for m in answer:
        if m["type"] == "text":
            out.append(m["text"])
        elif m["type"] == "flex":
            out.append(m["altText"])
    return out


def joined(answer: list[Message]) -> str:
    """All the text a user reads, Flex contents included, as one string."""
    keys = ("text", "altText", "label", "title", "address")
    return "\n".join(
        node[key] for node in json_dicts(answer) for key in keys if isinstance(node.get(key), str)
    )


def quick_replies(answer: list[Message]) -> list[dict[str, Any]]:
    """The quick-reply actions under the last message that has any."""
    for m in reversed(answer):
        items = (m.get("quickReply") or {}).get("items")
        if items:
            return [i["action"] for i in items]
    return []


def quick_labels(answer: list[Message]) -> list[str]:
    return [a["label"] for a in quick_replies(answer)]


def bubbles(answer: list[Message]) -> list[dict[str, Any]]:
    """Every Flex bubble in the answer (carousels flattened)."""
    out: list[dict[str, Any]] = []
    for m in answer:
        if m["type"] != "flex":
            continue
        contents = m["contents"]
        out.extend(contents["contents"] if contents["type"] == "carousel" else [contents])
    return out


def all_actions(answer: list[Message]) -> list[dict[str, Any]]:
    """Every action in the answer: quick replies and Flex buttons."""
    found = (node.get("action") for node in json_dicts(answer))
    return [action for action in found if isinstance(action, dict) and "type" in action]


def find_action(answer: list[Message], label: str) -> dict[str, Any]:
    """The action whose label contains ``label`` (quick replies first)."""
    actions = quick_replies(answer) + all_actions(answer)
    for action in actions:
        if label in action.get("label", ""):
            return action
    labels = [a.get("label") for a in actions]
    raise AssertionError(f"no button {label!r} in {labels}; answer: {texts(answer)}")


def variants(replies: Replies, key: str, **params: Any) -> list[str]:
    """Every wording of a reply key (keys may hold several variants)."""
    return [v.format_map(params) for v in replies.texts[key]]


def said(answer: list[Message], replies: Replies, key: str, **params: Any) -> bool:
    """The answer contains one of the wordings of reply ``key``."""
    text = joined(answer)
    return any(v in text for v in variants(replies, key, **params))


def says_exactly(answer: list[Message], replies: Replies, key: str, **params: Any) -> bool:
    """One text message of the answer is exactly a wording of reply ``key``."""
    wanted = {v.format_map(params) for v in replies.texts[key]}
    return any(t in wanted for t in texts(answer))


def card_names(answer: list[Message]) -> list[str]:
    """The bold first line (the name) of every card in the answer."""
    return [b["body"]["contents"][0]["text"] for b in bubbles(answer)]


def hit_names(hits: Iterable[CourseHit | ProgrammeHit]) -> list[str]:
    """The names of found courses or programmes, in order: what their cards' first lines
    must be."""
    return [h.course.name.th if isinstance(h, CourseHit) else h.programme.name.th for h in hits]


def save_assessment(server: ServerThread, user: str, **fields: Any) -> None:
    """A finished assessment row, as the assessment flow stores it."""
    with bot_database(server.settings) as engine, Session(engine) as s, s.begin():
        s.add(Assessment(line_user_id=user, **fields))
