"""my_profile and delete_my_data (PDPA) through the signed webhook, in both deployments.

The erasure test fills every place a user leaves traces (rows of several tables, a
push batch's recipient list, a dead letter, a queued event, Redis keys), erases one
user by buttons, and then reads every table of ``bot.storage.db.Base.metadata`` and every
Redis key of the bot: nothing may still name that user, and the other user's data
must be exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import bot.storage.db as db
from bot.content.menu import go_button
from bot.kb.loader import Knowledge, load_replies
from bot.kb.queries import thai_date
from bot.line.messages import LABEL_MAX, fit, postback_data
from bot.storage.db import (
    Assessment,
    Base,
    DeadLetter,
    EventLog,
    Handoff,
    LocalQueueItem,
    Subscription,
)
from bot.storage.privacy import ANONYMOUS, scrub
from handlers.privacy import DELETE
from tests.conversation import Chat, quick_labels, says_exactly, texts
from tests.helpers import ROOT, bot_database

R = load_replies(ROOT / "knowledge")
Answer = list[dict[str, Any]]


def engine_of(c: Chat) -> AbstractContextManager[Engine]:
    return bot_database(c.server.settings)


def add(c: Chat, *rows: Any) -> None:
    with engine_of(c) as engine, Session(engine) as s:
        s.add_all(rows)
        s.commit()


def said(answer: list[dict[str, Any]], key: str, **params: Any) -> bool:
    return says_exactly(answer, R, key, **params)


def label(key: str, **params: Any) -> str:
    return fit(R.text(key, **params), LABEL_MAX)


def subscribe(c: Chat, kb: Knowledge, topic: str) -> None:
    answer = c.postback(go_button("menu", "subscribe").data)
    answer = c.press(answer, label("subscribe.topic_off", topic=kb.topics[topic].label.th))
    answer = c.press(answer, label("subscribe.button_done"))
    answer = c.press(answer, label("subscribe.button_nationwide"))
    c.press(answer, label("subscribe.button_confirm"))


def assessment(user: str, **extra: Any) -> Assessment:
    values: dict[str, Any] = {
        "line_user_id": user,
        "answers": {"business_stage": "running", "province": "76"},
        "stage": 3,
        "topics": ["online_selling", "digital_marketing"],
        "province_code": "76",
    }
    values.update(extra)
    return Assessment(**values)


# -- reading everything back ---------------------------------------------------------------


def rows_naming(c: Chat, user: str) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table that mentions ``user`` anywhere (JSON included)."""
    found = []
    with engine_of(c) as engine, engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                if user in json.dumps(dict(row), default=str, ensure_ascii=False):
                    found.append((table.name, dict(row)))
    return found


def redis_keys_naming(c: Chat, user: str) -> list[str]:
    settings = c.server.settings
    if not settings.redis_url:
        return []
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        return [k for k in client.scan_iter(f"{settings.redis_prefix}:*", count=1000) if user in k]
    finally:
        client.close()


def wait_until_gone(c: Chat, user: str, timeout: float = 5.0) -> None:
    """The queue removes the handled event's own entry just after the turn: allow for it."""
    deadline = time.monotonic() + timeout
    while True:
        rows, keys = rows_naming(c, user), redis_keys_naming(c, user)
        if not rows and not keys:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still naming the user: rows={rows} keys={keys}")
        time.sleep(0.05)


# -- my_profile ----------------------------------------------------------------------------


def test_my_profile_with_nothing_stored_offers_the_assessment(chat: Callable[[str], Chat]) -> None:
    answer = chat("profile-empty").say("ข้อมูลของฉัน")
    assert said(answer, "privacy.profile_empty")
    assert label("menu.start_assessment") in quick_labels(answer)


def test_my_profile_shows_the_latest_assessment_and_subscription(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("profile-full")
    old = assessment(c.user, stage=1, created_at=dt.datetime(2024, 1, 5, 3, tzinfo=dt.UTC))
    # 20:00 UTC is already the next day in Thailand.
    new = assessment(c.user, stage=4, created_at=dt.datetime(2025, 6, 13, 20, tzinfo=dt.UTC))
    add(c, old, new)
    subscribe(c, kb, "logistics")
    text = "\n".join(texts(c.say("ข้อมูลของฉัน")))
    assert thai_date(dt.date(2025, 6, 14)) in text  # Buddhist era, Thai day
    assert "2568" in text
    assert (
        R.text(
            "privacy.profile_assessment",
            date=thai_date(dt.date(2025, 6, 14)),
            stage=4,
            topics=f"{kb.topics['online_selling'].label.th}, {kb.topics['digital_marketing'].label.th}",
            province=kb.places.provinces["76"].name_th,
            count=2,
        )
        in text
    )
    assert (
        R.text(
            "privacy.profile_subscription",
            topics=kb.topics["logistics"].label.th,
            area=R.text("privacy.profile_nationwide"),
        )
        in text
    )


# -- delete_my_data ------------------------------------------------------------------------


def test_delete_my_data_leaves_nothing_of_the_user(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    alice, bob = chat("erase-alice"), chat("erase-bob")
    subscribe(alice, kb, "online_selling")
    subscribe(bob, kb, "language")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    traces: list[Any] = [
        assessment(alice.user),
        assessment(alice.user, stage=2),
        assessment(bob.user),
        Handoff(line_user_id=alice.user, agency="DBD", until=past),  # ended, not yet pruned
        DeadLetter(
            webhook_event_id="dead-" + uuid.uuid4().hex[:10],
            chat_id=alice.user,
            event_type="message",
            payload={"source": {"type": "user", "userId": alice.user}},
            error="boom",
            attempts=5,
        ),
        # A group event of alice's, dead-lettered under the group's id.
        DeadLetter(
            webhook_event_id="dead-" + uuid.uuid4().hex[:10],
            chat_id="C" + "0" * 32,
            event_type="message",
            payload={"source": {"type": "group", "groupId": "C" + "0" * 32, "userId": alice.user}},
            error="boom",
            attempts=5,
        ),
        # An event of alice's still queued (due in an hour, after everything else).
        LocalQueueItem(
            webhook_event_id="later-" + uuid.uuid4().hex[:10],
            chat_id=alice.user,
            event_ts=9_000_000_000_000,
            payload={"source": {"type": "user", "userId": alice.user}},
            attempts=0,
            available_at=time.time() + 3600,
        ),
    ]
    # Push-notice records (issue 6), when that part is present.
    batch_key = str(uuid.uuid4())
    if hasattr(db, "NoticeBatch") and hasattr(db, "NoticeDelivery"):
        traces += [
            db.NoticeBatch(
                retry_key=batch_key,
                run_id=1,
                status="sent",
                course_ids=["crs-x"],
                recipients=[alice.user, bob.user],
                messages=[],
            ),
            db.NoticeDelivery(
                line_user_id=alice.user, course_id="crs-x", retry_key=batch_key, status="sent"
            ),
            db.NoticeDelivery(
                line_user_id=bob.user, course_id="crs-x", retry_key=batch_key, status="sent"
            ),
        ]
    add(alice, *traces)
    settings = alice.server.settings
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        client.set(f"{settings.redis_prefix}:note:{alice.user}", "x")
        client.set(f"{settings.redis_prefix}:note:{bob.user}", "x")
        client.close()
    bob_before = rows_naming(bob, bob.user)

    answer = alice.say("ลบข้อมูลของฉัน")
    assert said(answer, "privacy.confirm_delete")
    assert rows_naming(alice, alice.user)  # nothing is deleted before the confirmation
    answer = alice.press(answer, label("privacy.button_yes"))
    message = "\n".join(texts(answer))
    assert R.text("privacy.deleted_assessments", count=2) in message
    assert R.text("privacy.deleted_subscriptions", count=1) in message
    assert R.text("privacy.deleted_handoffs", count=1) in message
    assert R.text("privacy.deleted_profile", count=1) in message

    wait_until_gone(alice, alice.user)
    with engine_of(alice) as engine, engine.connect() as conn:
        kept = conn.execute(select(EventLog.status).where(EventLog.chat_id == ANONYMOUS)).all()
    assert kept and all(status in ("done", "standby") for (status,) in kept)

    # The other user's data is untouched (the shared batch lost only alice).
    def own(rows: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        return [(t, r) for t, r in rows if t != "notice_batches"]  # shared with alice

    assert own(rows_naming(bob, bob.user)) == own(bob_before)
    with engine_of(bob) as engine, Session(engine) as s:
        row = s.get(Subscription, bob.user)
        assert row is not None and row.active and row.topics == ["language"]
        if hasattr(db, "NoticeBatch"):
            batch = s.get(db.NoticeBatch, batch_key)
            assert batch is not None and batch.recipients == [bob.user]
    if settings.redis_url:
        assert redis_keys_naming(bob, bob.user)

    # Talking again starts afresh: nothing from before comes back.
    assert said(alice.say("ข้อมูลของฉัน"), "privacy.profile_empty")


def test_delete_my_data_no_keeps_everything(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("erase-no")
    subscribe(c, kb, "language")
    answer = c.say("ลบข้อมูลของฉัน")
    answer = c.press(answer, label("privacy.button_no"))
    assert said(answer, "privacy.delete_cancelled")
    with engine_of(c) as engine, Session(engine) as s:
        assert s.get(Subscription, c.user) is not None


def test_an_old_yes_button_asks_again(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("erase-stale")
    subscribe(c, kb, "language")
    answer = c.postback(postback_data(DELETE, a="yes"))  # no question open
    assert said(answer, "privacy.confirm_delete")
    with engine_of(c) as engine, Session(engine) as s:
        assert s.get(Subscription, c.user) is not None
    answer = c.press(answer, label("privacy.button_yes"))
    assert R.text("privacy.deleted_subscriptions", count=1) in "\n".join(texts(answer))


# -- pure logic ----------------------------------------------------------------------------


def test_scrub_removes_the_id_from_lists_and_masks_it_in_text() -> None:
    value = {"to": ["U1", "U2"], "note": "sent to U1", "n": 3, "U1": {"x": "U1"}}
    assert scrub(value, "U1") == {
        "to": ["U2"],
        "note": f"sent to {ANONYMOUS}",
        "n": 3,
        ANONYMOUS: {"x": ANONYMOUS},
    }
