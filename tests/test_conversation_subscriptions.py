"""subscribe / unsubscribe through the signed webhook, and the Subscription row they write.

The row is what push notices (issue 6) select from, so each script ends by reading it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.content.menu import go_button
from bot.kb.loader import Knowledge, load_replies
from bot.line.messages import LABEL_MAX, fit
from bot.storage.db import Assessment, Subscription, User
from tests.conversation import Chat, quick_labels, says_exactly
from tests.helpers import ROOT, bot_database

R = load_replies(ROOT / "knowledge")
Answer = list[dict[str, Any]]


@contextmanager
def database(c: Chat) -> Iterator[Session]:
    """A session on the running bot's database (SQLite or PostgreSQL)."""
    with bot_database(c.server.settings) as engine, Session(engine) as session:
        yield session


def subscription(c: Chat) -> Subscription | None:
    with database(c) as s:
        return s.get(Subscription, c.user)


def said(answer: list[dict[str, Any]], key: str, **params: Any) -> bool:
    return says_exactly(answer, R, key, **params)


def label(key: str, **params: Any) -> str:
    """A button label as LINE shows it (cut to 20 characters)."""
    return fit(R.text(key, **params), LABEL_MAX)


def topic(kb: Knowledge, topic_id: str, chosen: bool = False) -> str:
    key = "subscribe.topic_on" if chosen else "subscribe.topic_off"
    return label(key, topic=kb.topics[topic_id].label.th)


def names(kb: Knowledge, *ids: str) -> str:
    return ", ".join(kb.topics[i].label.th for i in ids)


def menu_button(c: Chat, intent: str) -> Answer:
    """Press a main-menu button (a postback that runs the intent)."""
    return c.postback(go_button("menu", intent).data)


def subscribe_by_buttons(c: Chat, kb: Knowledge, *topics: str) -> Answer:
    answer = menu_button(c, "subscribe")
    for t in topics:
        answer = c.press(answer, topic(kb, t))
    answer = c.press(answer, label("subscribe.button_done"))
    answer = c.press(answer, label("subscribe.button_nationwide"))
    return c.press(answer, label("subscribe.button_confirm"))


def test_subscribe_by_buttons_alone(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("sub-buttons")
    answer = menu_button(c, "subscribe")
    assert said(answer, "subscribe.ask_topics")
    assert topic(kb, "online_selling") in quick_labels(answer)

    answer = c.press(answer, topic(kb, "online_selling"))
    assert said(answer, "subscribe.chosen", topics=names(kb, "online_selling"))
    assert topic(kb, "online_selling", chosen=True) in quick_labels(answer)

    answer = c.press(answer, topic(kb, "digital_marketing"))
    answer = c.press(answer, topic(kb, "accounting_finance"))
    answer = c.press(answer, topic(kb, "accounting_finance", chosen=True))  # un-choose
    labels = quick_labels(answer)
    assert topic(kb, "accounting_finance") in labels
    assert topic(kb, "online_selling", chosen=True) in labels
    assert topic(kb, "digital_marketing", chosen=True) in labels

    answer = c.press(answer, label("subscribe.button_done"))
    assert said(answer, "subscribe.ask_area")
    answer = c.press(answer, label("subscribe.button_nationwide"))
    chosen = names(kb, "online_selling", "digital_marketing")
    nationwide = R.text("subscribe.nationwide")
    assert said(answer, "subscribe.confirm", topics=chosen, area=nationwide)
    assert subscription(c) is None  # nothing is written before the confirmation

    answer = c.press(answer, label("subscribe.button_confirm"))
    assert said(answer, "subscribe.saved", topics=chosen, area=nationwide)
    row = subscription(c)
    assert row is not None
    assert row.topics == ["online_selling", "digital_marketing"]
    assert row.provinces == []
    assert row.stage is None
    assert row.active is True
    assert row.created_at is not None and row.updated_at is not None


def test_subscribe_uses_the_assessment_and_typed_answers(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("sub-assessed")
    with database(c) as s:
        s.add(
            Assessment(
                line_user_id=c.user,
                answers={"business_stage": "running", "province": "50"},
                stage=3,
                topics=["online_selling"],
                province_code="50",
                created_at=dt.datetime(2025, 6, 13, 3, 0, tzinfo=dt.UTC),
            )
        )
        s.commit()
    answer = c.say("อยากรับแจ้งเตือนคอร์สใหม่")
    assert said(answer, "subscribe.ask_topics")
    answer = c.say("บัญชี")  # a topic typed instead of pressed
    assert topic(kb, "accounting_finance", chosen=True) in quick_labels(answer)
    answer = c.say(R.text("subscribe.button_done"))
    chiang_mai = kb.places.provinces["50"].name_th
    assert label("subscribe.button_my_province", province=chiang_mai) in quick_labels(answer)
    answer = c.press(answer, label("subscribe.button_my_province", province=chiang_mai))
    assert said(
        answer, "subscribe.confirm", topics=names(kb, "accounting_finance"), area=chiang_mai
    )
    answer = c.say(R.text("subscribe.button_confirm"))
    assert said(answer, "subscribe.saved", topics=names(kb, "accounting_finance"), area=chiang_mai)
    row = subscription(c)
    assert row is not None
    assert (row.topics, row.provinces, row.stage, row.active) == (
        ["accounting_finance"],
        ["50"],
        3,
        True,
    )

    # Already subscribed: the current choice is shown with change / stop / keep.
    answer = c.say("สมัครรับข่าว")
    assert said(
        answer, "subscribe.already", topics=names(kb, "accounting_finance"), area=chiang_mai
    )
    answer = c.press(answer, label("subscribe.button_change"))
    assert topic(kb, "accounting_finance", chosen=True) in quick_labels(answer)
    answer = c.press(answer, topic(kb, "language"))
    answer = c.press(answer, label("subscribe.button_done"))
    answer = c.say("อยู่โคราช")  # a typed province
    korat = kb.places.provinces["30"].name_th
    assert said(
        answer, "subscribe.confirm", topics=names(kb, "accounting_finance", "language"), area=korat
    )
    c.press(answer, label("subscribe.button_confirm"))
    row = subscription(c)
    assert row is not None
    assert (row.topics, row.provinces) == (["accounting_finance", "language"], ["30"])


def test_unsubscribe_some_then_all(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("sub-stop")
    subscribe_by_buttons(c, kb, "online_selling", "digital_marketing")
    answer = c.say("เลิกรับแจ้งเตือน")
    assert said(answer, "unsubscribe.ask", topics=names(kb, "online_selling", "digital_marketing"))
    answer = c.press(answer, label("unsubscribe.button_some"))
    stop_one = label("unsubscribe.topic_button", topic=kb.topics["online_selling"].label.th)
    answer = c.press(answer, stop_one)
    assert said(
        answer,
        "unsubscribe.removed",
        removed=names(kb, "online_selling"),
        topics=names(kb, "digital_marketing"),
    )
    row = subscription(c)
    assert row is not None and row.active and row.topics == ["digital_marketing"]

    answer = c.say("เลิกรับแจ้งเตือน")
    answer = c.press(answer, label("unsubscribe.button_all"))
    assert said(answer, "unsubscribe.stopped_all")
    row = subscription(c)
    assert row is not None and row.active is False

    answer = c.say("เลิกรับแจ้งเตือน")
    assert said(answer, "unsubscribe.nothing")


def test_cancel_at_the_confirmation_writes_nothing(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("sub-cancel")
    answer = menu_button(c, "subscribe")
    answer = c.press(answer, topic(kb, "logistics"))
    answer = c.press(answer, label("subscribe.button_done"))
    answer = c.press(answer, label("subscribe.button_nationwide"))
    answer = c.press(answer, label("subscribe.button_cancel"))
    assert said(answer, "subscribe.cancelled")
    assert subscription(c) is None


def test_unfollow_deactivates_and_follow_does_not_reactivate(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("sub-unfollow")
    subscribe_by_buttons(c, kb, "export_trade")
    row = subscription(c)
    assert row is not None and row.active

    assert c.unfollow() == []  # LINE gives no reply token; nothing is sent
    row = subscription(c)
    assert row is not None and row.active is False
    with database(c) as s:
        user = s.scalar(select(User).where(User.line_user_id == c.user))
        assert user is not None and user.following is False

    c.follow()
    row = subscription(c)
    assert row is not None and row.active is False  # notices stay off until asked for
    assert row.topics == ["export_trade"]
