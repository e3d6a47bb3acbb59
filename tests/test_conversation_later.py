"""A late answer is offered by "ดูผลลัพธ์" (a free reply when tapped), never a paid push.

The follow greeting asks LINE for the display name; the fake LINE API holds that call, so the
answer is still being prepared when the reply token gets old (``REPLY_LATER_AFTER_SECONDS``
set low here). Through the signed webhook, in both deployments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from bot.kb.loader import load_replies
from bot.line.messages import LABEL_MAX, fit
from bot.settings import Settings
from bot.storage.db import EventLog
from tests.conftest import SECRET
from tests.conversation import Chat, find_action, serving, texts
from tests.fakeline import FakeLine
from tests.helpers import ROOT, bot_database, envelope, event_of, post_signed, user_id

R = load_replies(ROOT / "knowledge")
Answer = list[dict[str, Any]]


@pytest.fixture(params=["embedded", "shared"])
def late_bot(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Iterator[Any]:
    overrides = {"reply_later_after_seconds": 0.5, "loading_after_seconds": 0.2}
    if request.param == "embedded":
        settings = make_settings(**overrides)
    else:
        settings = request.getfixturevalue("make_shared_settings")(**overrides)
    yield from serving(settings)


def offer(fake: FakeLine, token: str, timeout: float = 10.0) -> Answer:
    """The reply LINE got with ``token`` (the "ready soon" offer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for to, m in fake.delivered() if to == token]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("no reply with the follow event's token")


def test_a_late_answer_waits_for_its_tap_and_costs_no_push(
    late_bot: Any, fake_line: FakeLine
) -> None:
    c = Chat(late_bot, fake_line, user_id("late"))
    fake_line.hang_next("profile", 3.0)  # the welcome waits for the display name
    follow = event_of("follow", c.user, follow={"isUnblocked": False})
    assert post_signed(late_bot.base_url, SECRET, envelope(follow)).status_code == 200
    offered = offer(fake_line, follow["replyToken"])
    assert texts(offered) == [R.text("help.result_later")]
    button = find_action(offered, R.text("help.button_result"))
    assert button["type"] == "postback"

    # Tapped at once, while the answer is still being prepared: a user's events are handled
    # in order, so the tap is answered when the answer is ready, with the tap's own token.
    answer = c.postback(button["data"])
    assert any(t in R.texts["greeting.privacy_notice"] for t in texts(answer))
    assert fake_line.calls("push") == []  # nothing paid

    # A second tap: shown already.
    again = c.postback(button["data"])
    assert texts(again)[0] == R.text("help.result_gone")
    assert fake_line.calls("push") == []
    c.close()


def test_erasure_drops_a_held_answer(chat: Callable[[str], Chat], fake_line: FakeLine) -> None:
    c = chat("late-erased")
    c.say("สวัสดีครับ")
    held_id = "01HELDANSWERFORERASURE0001"
    with bot_database(c.server.settings) as engine, Session(engine) as s, s.begin():
        s.add(
            EventLog(
                webhook_event_id=held_id,
                chat_id=c.user,
                event_type="message",
                event_ts=0,
                status="held",
                delivery="held",
                outbox={"messages": [{"type": "text", "text": "คำตอบของคุณสมชาย"}]},
            )
        )
    question = c.say("ลบข้อมูลของฉัน")
    c.press(question, fit(R.text("privacy.button_yes"), LABEL_MAX))
    with bot_database(c.server.settings) as engine, Session(engine) as s:
        row = s.get(EventLog, held_id)
        assert row is not None and row.outbox is None and row.status == "done"
        assert row.chat_id != c.user
