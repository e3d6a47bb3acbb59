"""POST /callback end to end, in both deployments (SQLite embedded; Redis + PostgreSQL).

Each test posts bodies signed with LINE's HMAC scheme to the real app over
loopback HTTP and checks what reached the fake LINE API.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.kb.loader import load_replies
from bot.settings import Settings
from bot.storage.db import DeadLetter, EventLog, User
from tests.conftest import SECRET, run
from tests.conversation import serving
from tests.fakeline import FakeLine
from tests.helpers import (
    ROOT,
    ServerThread,
    envelope,
    event_of,
    post_signed,
    text_event,
    user_id,
    wait_until,
)

REPLIES = load_replies(ROOT / "knowledge")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def bot(mode_settings: Settings) -> Iterator[ServerThread]:
    """The bot serving, with a worker (embedded in serve, or a separate one with Redis)."""
    yield from serving(mode_settings)


def _rows(server: ServerThread, model: Any) -> list[Any]:
    """Every row of a table, read with this test's own connection."""

    async def fetch() -> list[Any]:
        from bot.storage.db import Database

        db = Database(server.settings.sqlalchemy_url)
        try:
            async with db.session() as s:
                return list((await s.scalars(select(model))).all())
        finally:
            await db.close()

    result: list[Any] = run(fetch())
    return result


def _log_rows(server: ServerThread) -> list[EventLog]:
    return _rows(server, EventLog)


def _pending(server: ServerThread) -> int:
    """Events stored and not finished, read with this test's own connections."""

    async def count() -> int:
        from bot.queue.local_queue import LocalQueue
        from bot.queue.redis_queue import RedisQueue, connect
        from bot.storage.db import Database

        st = server.settings
        if st.redis_url:
            queue = RedisQueue(connect(st.redis_url), st.redis_prefix)
            try:
                return await queue.pending()
            finally:
                await queue.close()
        db = Database(st.sqlalchemy_url)
        try:
            return await LocalQueue(db).pending()
        finally:
            await db.close()

    result: int = run(count())
    return result


def test_signed_text_event_gets_one_reply(bot: ServerThread, fake_line: FakeLine) -> None:
    event = text_event("สวัสดีครับ")
    response = post_signed(bot.base_url, SECRET, envelope(event))
    assert response.status_code == 200
    (call,) = fake_line.wait_for("reply", 1)
    assert call.body["replyToken"] == event["replyToken"]
    assert call.body["messages"][0]["text"] in REPLIES.texts["greeting.hello"]
    assert call.headers["authorization"] == "Bearer test-access-token"
    time.sleep(0.5)
    assert len(fake_line.calls("reply", status=None)) == 1
    assert fake_line.calls("push", status=None) == []


def test_gibberish_gets_the_polite_fallback(bot: ServerThread, fake_line: FakeLine) -> None:
    post_signed(bot.base_url, SECRET, envelope(text_event("qwzx ppp 999")))
    (call,) = fake_line.wait_for("reply", 1)
    # Gibberish reads as out of scope: a polite note of what the bot can do, and the menu.
    assert call.body["messages"][0]["text"] in REPLIES.texts["fallback.out_of_scope"]
    assert call.body["messages"][0]["quickReply"]["items"]


@pytest.mark.parametrize(
    ("body", "signature", "status"),
    [
        (envelope(text_event("สวัสดี")), None, 401),
        (envelope(text_event("สวัสดี")), "bm90IHRoZSByaWdodCBzaWduYXR1cmU=", 403),
        (b'{"events": [', "auto", 400),
        (b'{"destination": "U1", "events": {"not": "a list"}}', "auto", 400),
        (b"[1, 2, 3]", "auto", 400),
        (json.dumps({"events": [{"type": "message"}]}).encode(), "auto", 400),
        # Poison messages: LINE would redeliver a 5xx for ever; these can never be stored.
        (json.dumps({"events": [text_event("ab\ud800cd")]}).encode(), "auto", 400),
        (json.dumps({"events": [text_event("ab\udc00cd")]}).encode(), "auto", 400),
        (envelope(text_event("abc")).replace(b"abc", b"a\xed\xa0\x80c"), "auto", 400),
        (b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b', "events": []}', "auto", 400),
        (envelope(text_event("x", ts=2**64)), "auto", 400),
        (envelope(text_event("x", "U" + "f" * 100)), "auto", 400),
        (envelope(text_event("x", event_id="0" * 65)), "auto", 400),
    ],
    ids=[
        "missing-signature",
        "wrong-signature",
        "malformed-json",
        "events-not-list",
        "not-object",
        "no-timestamp",
        "lone-surrogate-escape",
        "lone-low-surrogate-escape",
        "encoded-surrogate",
        "nested-too-deep",
        "timestamp-out-of-range",
        "user-id-too-long",
        "event-id-too-long",
    ],
)
def test_bad_requests_are_refused_and_nothing_is_processed(
    bot: ServerThread, fake_line: FakeLine, body: bytes, signature: str | None, status: int
) -> None:
    response = post_signed(bot.base_url, SECRET, body, signature=signature)
    assert response.status_code == status
    time.sleep(0.6)
    assert fake_line.requests == []
    assert _pending(bot) == 0
    assert [
        (r.webhook_event_id, r.event_type, r.status, r.created_at) for r in _log_rows(bot)
    ] == []


def test_a_nul_in_a_text_is_stored_as_a_replacement_character(
    bot: ServerThread, fake_line: FakeLine
) -> None:
    event = text_event("สวัส\x00ดี")
    assert post_signed(bot.base_url, SECRET, envelope(event)).status_code == 200
    fake_line.wait_for("reply", 1)
    # (marked done just after the reply: the mark may wait a moment to ride along)
    wait_until(lambda: [r.status for r in _log_rows(bot)] == ["done"], timeout=5)


def test_body_signed_with_another_secret_is_refused(bot: ServerThread, fake_line: FakeLine) -> None:
    response = post_signed(bot.base_url, "some-other-channel-secret", envelope(text_event("hi")))
    assert response.status_code == 403
    time.sleep(0.5)
    assert fake_line.requests == []


def test_oversized_body_is_413(make_settings: type, fake_line: FakeLine) -> None:
    settings = make_settings(max_body_bytes=2048)
    with ServerThread(settings) as server:
        big = envelope(text_event("ก" * 3000))
        assert post_signed(server.base_url, SECRET, big).status_code == 413
        # Also when the client does not announce the length (chunked upload).
        chunks = iter([big[:1000], big[1000:]])
        response = httpx.post(
            f"{server.base_url}/callback",
            content=chunks,
            headers={"X-Line-Signature": "x", "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert post_signed(server.base_url, SECRET, envelope(text_event("สวัสดี"))).status_code == 200
        fake_line.wait_for("reply", 1)


def test_verify_button_empty_events_is_ok(bot: ServerThread, fake_line: FakeLine) -> None:
    body = json.dumps({"destination": "U" + "0" * 32, "events": []}).encode()
    assert post_signed(bot.base_url, SECRET, body).status_code == 200
    time.sleep(0.3)
    assert fake_line.requests == []


def test_redelivered_event_is_answered_once(bot: ServerThread, fake_line: FakeLine) -> None:
    event = text_event("สวัสดี")
    assert post_signed(bot.base_url, SECRET, envelope(event)).status_code == 200
    fake_line.wait_for("reply", 1)
    again = dict(event, deliveryContext={"isRedelivery": True})
    assert post_signed(bot.base_url, SECRET, envelope(again)).status_code == 200
    assert post_signed(bot.base_url, SECRET, envelope(again)).status_code == 200
    time.sleep(1.0)
    assert len(fake_line.calls("reply", status=None)) == 1
    assert fake_line.calls("push", status=None) == []


def test_unknown_event_type_is_accepted_and_not_answered(
    bot: ServerThread, fake_line: FakeLine
) -> None:
    odd = event_of("brandNewEventType", somethingNew={"x": 1})
    assert post_signed(bot.base_url, SECRET, envelope(odd)).status_code == 200
    wait_until(lambda: [r for r in _log_rows(bot) if r.status == "done"])
    assert fake_line.requests == []


def test_standby_events_are_recorded_never_answered(bot: ServerThread, fake_line: FakeLine) -> None:
    event = text_event("สวัสดี", mode="standby")
    assert post_signed(bot.base_url, SECRET, envelope(event)).status_code == 200
    rows = wait_until(lambda: _log_rows(bot))
    assert rows[0].status == "standby"
    time.sleep(0.3)
    assert fake_line.requests == []


def test_expired_reply_token_falls_back_to_push_with_retry_key(
    bot: ServerThread, fake_line: FakeLine
) -> None:
    user = user_id("late")
    old = text_event("สวัสดี", user, ts=int((time.time() - 65) * 1000))
    post_signed(bot.base_url, SECRET, envelope(old))
    (push,) = fake_line.wait_for("push", 1)
    assert push.body["to"] == user
    assert UUID.match(push.headers["x-line-retry-key"])
    assert fake_line.calls("reply", status=None) == []


def test_rejected_reply_token_falls_back_to_push(bot: ServerThread, fake_line: FakeLine) -> None:
    event = text_event("สวัสดี")
    fake_line.expire_reply_token(event["replyToken"])
    post_signed(bot.base_url, SECRET, envelope(event))
    (push,) = fake_line.wait_for("push", 1)
    assert UUID.match(push.headers["x-line-retry-key"])
    assert [r.status for r in fake_line.calls("reply", status=None)] == [400]
    assert len(fake_line.delivered()) == 1


def test_line_500_then_success_gives_one_reply(bot: ServerThread, fake_line: FakeLine) -> None:
    fake_line.fail_next("reply", 500)
    post_signed(bot.base_url, SECRET, envelope(text_event("สวัสดี")))
    fake_line.wait_for("reply", 1)
    time.sleep(0.5)
    assert [r.status for r in fake_line.calls("reply", status=None)] == [500, 200]
    assert len(fake_line.delivered()) == 1


def test_line_429_backs_off_then_replies(bot: ServerThread, fake_line: FakeLine) -> None:
    fake_line.fail_next("reply", 429, times=2, retry_after=0.2)
    post_signed(bot.base_url, SECRET, envelope(text_event("สวัสดี")))
    fake_line.wait_for("reply", 1)
    statuses = fake_line.calls("reply", status=None)
    assert [r.status for r in statuses] == [429, 429, 200]
    assert statuses[1].at - statuses[0].at >= 0.18  # honoured Retry-After


def test_line_timeout_is_retried(make_settings: type, fake_line: FakeLine) -> None:
    settings = make_settings(line_timeout_seconds=0.5)
    with ServerThread(settings) as server:
        fake_line.hang_next("reply", 1.0)
        post_signed(server.base_url, SECRET, envelope(text_event("สวัสดี")))
        fake_line.wait_for("reply", 1)
        time.sleep(1.5)
        assert len(fake_line.delivered()) == 1


def test_other_4xx_is_not_retried_and_is_kept_for_operators(
    bot: ServerThread, fake_line: FakeLine
) -> None:
    fake_line.fail_next("reply", 400)
    event = text_event("สวัสดี")
    post_signed(bot.base_url, SECRET, envelope(event))
    wait_until(lambda: [r for r in _log_rows(bot) if r.status == "failed"])
    time.sleep(0.5)
    refused, apology = fake_line.calls("reply", status=None)
    assert (
        refused.status == 400
        and refused.body["messages"][0]["text"] in REPLIES.texts["greeting.hello"]
    )
    # The refused answer is not retried; the user gets a polite apology instead of silence.
    assert apology.status == 200
    assert [m["text"] for _to, m in fake_line.delivered()] == [REPLIES.text("errors.apology")]
    assert fake_line.calls("push", status=None) == []

    (letter,) = _rows(bot, DeadLetter)
    assert letter.webhook_event_id == event["webhookEventId"]


def test_two_users_interleaved_keep_their_own_order(bot: ServerThread, fake_line: FakeLine) -> None:
    a, b = user_id("a"), user_id("b")
    now = int(time.time() * 1000)
    events = [
        text_event("สวัสดี", a, ts=now + 3),
        text_event("hello", b, ts=now + 1),
        text_event("สวัสดีครับ", a, ts=now + 1),
        text_event("สวัสดีค่ะ", b, ts=now + 2),
        text_event("หวัดดี", a, ts=now + 2),
        text_event("hi", b, ts=now + 3),
    ]
    assert post_signed(bot.base_url, SECRET, envelope(*events)).status_code == 200
    calls = fake_line.wait_for("reply", 6)
    order = [c.body["replyToken"] for c in calls]
    for user in (a, b):
        mine = sorted(
            (e for e in events if e["source"]["userId"] == user), key=lambda e: e["timestamp"]
        )
        expected = [e["replyToken"] for e in mine]
        assert [t for t in order if t in expected] == expected


def test_follow_records_user_and_sends_welcome(bot: ServerThread, fake_line: FakeLine) -> None:
    user = user_id("friend")
    post_signed(bot.base_url, SECRET, envelope(event_of("follow", user)))
    (call,) = fake_line.wait_for("reply", 1)
    texts = [m["text"] for m in call.body["messages"]]
    assert texts[0] == REPLIES.text("greeting.welcome_named", name="ผู้ใช้ทดสอบ")
    consent = call.body["messages"][1]["quickReply"]["items"][0]["action"]
    assert consent["type"] == "postback"

    post_signed(
        bot.base_url,
        SECRET,
        envelope(event_of("postback", user, postback={"data": consent["data"]})),
    )
    fake_line.wait_for("reply", 2)
    post_signed(bot.base_url, SECRET, envelope(event_of("unfollow", user)))

    def fetch() -> User | None:
        return next((u for u in _rows(bot, User) if u.line_user_id == user), None)

    row = wait_until(lambda: (u := fetch()) is not None and not u.following and u)
    assert row.consent_at is not None and row.first_seen_at <= row.last_seen_at


def test_group_join_gets_one_to_one_note(bot: ServerThread, fake_line: FakeLine) -> None:
    group = "C" + "1" * 32
    join = event_of("join", None, source={"type": "group", "groupId": group})
    post_signed(bot.base_url, SECRET, envelope(join))
    (call,) = fake_line.wait_for("reply", 1)
    assert call.body["messages"][0]["text"] in REPLIES.texts["chat_events.group_note"]


def test_sticker_and_image_get_polite_answers(bot: ServerThread, fake_line: FakeLine) -> None:
    sticker = event_of(
        "message", message={"id": "1", "type": "sticker", "packageId": "446", "stickerId": "1988"}
    )
    image = event_of(
        "message",
        user_id(2),
        message={"id": "2", "type": "image", "contentProvider": {"type": "line"}},
    )
    post_signed(bot.base_url, SECRET, envelope(sticker, image))
    calls = fake_line.wait_for("reply", 2)
    texts = {c.body["replyToken"]: c.body["messages"][0]["text"] for c in calls}
    assert texts[sticker["replyToken"]] in REPLIES.texts["fallback.sticker"]
    assert texts[image["replyToken"]] in REPLIES.texts["fallback.media"]


def test_loading_animation_only_when_the_answer_is_slow(
    bot: ServerThread, fake_line: FakeLine
) -> None:
    post_signed(bot.base_url, SECRET, envelope(event_of("follow", user_id("quick"))))
    (quick,) = fake_line.wait_for("reply", 1)
    assert "ผู้ใช้ทดสอบ" in quick.body["messages"][0]["text"]  # welcomed by display name
    assert fake_line.calls("loading", status=None) == []

    fake_line.reset()
    user = user_id("slow")
    fake_line.hang_next("profile", 1.5)  # LINE's profile API is slow: the answer takes > 0.8 s
    post_signed(bot.base_url, SECRET, envelope(event_of("follow", user)))
    fake_line.wait_for("reply", 1)
    (loading,) = fake_line.calls("loading", status=None)
    assert loading.body == {"chatId": user, "loadingSeconds": 20}
    assert loading.at < fake_line.calls("reply")[0].at


def test_queue_down_answers_503_so_line_redelivers(
    make_settings: type, fake_line: FakeLine, pg_url: str
) -> None:
    from tests.helpers import free_port

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(redis_url=dead_redis, database_url=pg_url)
    with ServerThread(settings) as server:
        response = post_signed(server.base_url, SECRET, envelope(text_event("สวัสดี")))
        assert response.status_code == 503
        ready = httpx.get(f"{server.base_url}/readyz")
        assert ready.status_code == 503 and ready.json()["queue"].startswith("unavailable")
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    assert fake_line.requests == []


def test_readyz_reports_ok_when_everything_answers(bot: ServerThread) -> None:
    ready = httpx.get(f"{bot.base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "queue": "ok"}
    assert ready.headers["x-request-id"]
