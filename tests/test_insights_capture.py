"""The insight moments a conversation leaves in ``insight_events``, through the signed
webhook in both deployments (SQLite, and PostgreSQL with Redis): each moment once, with the
person's profile at the time; never twice for a redelivered or retried event; gone with
the person (their days marked for the rollup); never for the console simulator's users.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from bot.console.pages.simulator import Captured, _event, simulator_user
from bot.insights import capture, records
from bot.insights.records import InsightDirty, InsightEvent
from bot.kb.loader import Knowledge, load_replies
from bot.line.events import InboundEvent
from bot.line.messages import LABEL_MAX, Message, fit, postback_data
from bot.pipeline.process import Pipeline
from bot.queue.base import QueuedEvent
from bot.services import Services
from bot.settings import Settings
from bot.storage.daily import local_day
from bot.storage.db import Assessment, EventLog
from bot.storage.migrate import upgrade
from tests.conftest import SECRET
from tests.conversation import Chat
from tests.fakeline import FakeLine
from tests.helpers import (
    ROOT,
    ServerThread,
    bot_database,
    envelope,
    post_signed,
    text_event,
    user_id,
)
from tests.test_notices import one_new_course, run_notices

REPLIES = load_replies(ROOT / "knowledge")

START = postback_data("go", i="start_assessment")
#: The assessment this file answers: a food business in Bangkok, digital skills "none".
ANSWERS = {
    "business_stage": "new",
    "sector": "food",
    "sales_channels": "none",
    "digital_skill": "none",
    "goal": "sell_online",
    "province": "10",
    "notify": "no",
}
#: A question naming a topic (online selling) and a province (Chiang Mai).
COURSE_QUESTION = "อยากเรียนขายของออนไลน์ที่เชียงใหม่"
GUIDE = "digital_centre_cost"
GUIDE_QUESTION = "ไปใช้คอมที่ศูนย์ดิจิทัลชุมชนต้องจ่ายตังค์ไหม"
UNANSWERABLE = "วันนี้ฝนตกไหม"

Row = dict[str, Any]


def label(key: str) -> str:
    """A button's label as LINE shows it (cut to size)."""
    return fit(REPLIES.text(key), LABEL_MAX)


def rows(server: ServerThread | Settings, user: str | None = None) -> list[Row]:
    """The user's insight rows (everyone's when None), oldest first."""
    settings = server if isinstance(server, Settings) else server.settings
    stmt = select(InsightEvent).order_by(InsightEvent.id)
    if user is not None:
        stmt = stmt.where(InsightEvent.line_user_id == user)
    with bot_database(settings) as engine, engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def kinds(found: list[Row]) -> Counter[str]:
    return Counter(r["kind"] for r in found)


def assess(c: Chat, kb: Knowledge) -> None:
    """Answer every question with the ``ANSWERS`` buttons (postbacks, as LINE sends them)."""
    c.postback(START)
    for qid in kb.assessment.ids:
        c.postback(postback_data("asm", q=qid, o=ANSWERS[qid]))


def test_a_conversation_leaves_each_moment_once_with_the_profile_of_its_time(
    chat: Callable[[str], Chat], chat_bot: ServerThread, kb: Knowledge
) -> None:
    c = chat("citizen")
    other = chat("bystander")
    c.follow()
    c.say(COURSE_QUESTION)
    assess(c, kb)
    c.say(GUIDE_QUESTION)
    c.postback(postback_data("guide_fb", id=GUIDE, v="down"))
    c.say(UNANSWERABLE)
    c.say("ขอคุยกับเจ้าหน้าที่")  # last: the bot stays quiet after a hand-off
    other.say("สวัสดีครับ")

    found = rows(chat_bot, c.user)
    counted = kinds(found)
    once = (
        records.FOLLOWED,
        records.ASSESSMENT_STARTED,
        records.ASSESSMENT_FINISHED,
        records.DIGITAL_LOW,
        records.GUIDE_SHOWN,
        records.GUIDE_UNHELPFUL,
        records.UNANSWERED,
        records.HANDOFF,
    )
    assert {k: counted[k] for k in once} == dict.fromkeys(once, 1), counted
    assert set(counted) <= set(once) | {records.ASKED, records.INTENT, records.NO_COURSE}
    by_kind = {r["kind"]: r for r in found}
    day = local_day()
    assert {r["day"] for r in found} == {day}

    # Before the assessment: no profile; the question's own province and topic.
    assert (by_kind[records.FOLLOWED]["sector"], by_kind[records.FOLLOWED]["stage"]) == ("", 0)
    assert by_kind[records.FOLLOWED]["province"] == ""
    asked = [r for r in found if r["kind"] == records.ASKED]
    first = asked[0]
    assert (first["key"], first["province"], first["sector"]) == ("online_selling", "50", "")
    assert all(r["key"] == "" or r["key"] in kb.topics for r in asked)
    intents = {r["key"] for r in found if r["kind"] == records.INTENT}
    assert {"find_course", "start_assessment", f"guide:{GUIDE}", "contact_staff"} <= intents

    # The assessment's own profile, then everything after it carries it.
    with bot_database(chat_bot.settings) as engine, engine.connect() as conn:
        stage = conn.scalar(select(Assessment.stage).where(Assessment.line_user_id == c.user))
    finished = by_kind[records.ASSESSMENT_FINISHED]
    assert (finished["province"], finished["sector"], finished["stage"]) == ("10", "food", stage)
    assert by_kind[records.DIGITAL_LOW]["stage"] == stage
    for kind in (records.GUIDE_SHOWN, records.GUIDE_UNHELPFUL, records.UNANSWERED):
        row = by_kind[kind]
        assert (row["province"], row["sector"], row["stage"]) == ("10", "food", stage), kind
    assert by_kind[records.GUIDE_SHOWN]["key"] == GUIDE
    assert by_kind[records.GUIDE_UNHELPFUL]["key"] == GUIDE
    # The theme is a code, never the words.
    assert by_kind[records.UNANSWERED]["key"] == "out_of_scope"
    assert by_kind[records.HANDOFF]["key"] in kb.agencies
    assert all(UNANSWERABLE not in r["key"] for r in found)

    # The bystander's greeting is theirs alone.
    assert kinds(rows(chat_bot, other.user)) == {records.ASKED: 1, records.INTENT: 1}


def test_a_redelivered_event_writes_nothing_twice(
    chat: Callable[[str], Chat], chat_bot: ServerThread
) -> None:
    c = chat("twice")
    event = text_event(COURSE_QUESTION, c.user)
    resp = post_signed(chat_bot.base_url, SECRET, envelope(event))
    assert resp.status_code == 200
    c.say("สวัสดีครับ")  # answered after the first: the first is done too
    before = rows(chat_bot, c.user)
    again = {**event, "deliveryContext": {"isRedelivery": True}}
    assert post_signed(chat_bot.base_url, SECRET, envelope(again)).status_code == 200
    c.say("สวัสดีครับ")
    after = rows(chat_bot, c.user)
    assert kinds(after) - kinds(before) == {records.ASKED: 1, records.INTENT: 1}
    assert [r["id"] for r in after[: len(before)]] == [r["id"] for r in before]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_retried_event_resends_its_answer_and_writes_nothing_again(
    backend: str, make_settings: Callable[..., Settings], request: pytest.FixtureRequest
) -> None:
    """A worker cut off after the answer was stored: the retry sends the stored answer,
    the moments were stored with it and are not written again."""
    if backend == "postgresql":
        settings = make_settings(database_url=request.getfixturevalue("pg_url"))
    else:
        settings = make_settings()
    upgrade(settings)
    user = user_id("retried")
    event = text_event(COURSE_QUESTION, user)
    item = QueuedEvent(event["webhookEventId"], user, event["timestamp"], event, 1)

    class CutOff(Captured):
        """LINE unreachable at the first try: the stored answer waits for the retry."""

        tried = False

        async def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
            if not self.messages and not self.tried:
                self.tried = True
                raise ConnectionError("cut off")
            await super().reply(reply_token, messages)

    async def scenario() -> int:
        services = Services.build(settings)
        try:
            messenger = CutOff()
            pipeline = Pipeline(services, messenger)
            with pytest.raises(ConnectionError):
                await pipeline.process(item)
            async with services.db.session() as s:
                status = await s.scalar(
                    select(EventLog.status).where(EventLog.webhook_event_id == item.event_id)
                )
            assert status == "sending"
            await pipeline.process(item)  # the retry: the stored answer, sent
            await pipeline.process(item)  # a redelivery: already done
            return len(messenger.messages)
        finally:
            await services.close()

    sent = asyncio.run(scenario())
    found = rows(settings, user)
    assert sent >= 1  # the stored answer went out at the retry
    assert kinds(found) == {records.ASKED: 1, records.INTENT: 1}
    assert found[0]["province"] == "50"


def test_erasure_deletes_the_moments_and_marks_their_days(
    chat: Callable[[str], Chat], chat_bot: ServerThread
) -> None:
    c = chat("leaving")
    stays = chat("staying")
    c.follow()
    c.say(COURSE_QUESTION)
    stays.say(COURSE_QUESTION)
    old_day = local_day().replace(year=2025, month=1, day=6)
    with bot_database(chat_bot.settings) as engine, engine.begin() as conn:
        conn.execute(
            insert(InsightEvent),
            [{"day": old_day, "line_user_id": c.user, "kind": records.FOLLOWED}],
        )
        conn.execute(insert(InsightDirty), [{"day": local_day()}])  # already marked: kept
    assert rows(chat_bot, c.user)

    answer = c.say("ลบข้อมูลของฉัน")
    c.press(answer, label("privacy.button_yes"))

    assert rows(chat_bot, c.user) == []  # the erasure turn itself recorded nothing either
    assert kinds(rows(chat_bot, stays.user)) == {records.ASKED: 1, records.INTENT: 1}
    with bot_database(chat_bot.settings) as engine, engine.connect() as conn:
        dirty = set(conn.scalars(select(InsightDirty.day)))
    assert dirty == {local_day(), old_day}


def test_console_simulator_users_are_never_recorded(
    make_settings: Callable[..., Settings], kb: Knowledge
) -> None:
    settings = make_settings()
    upgrade(settings)
    user = simulator_user("operator")

    async def scenario() -> None:
        services = Services.build(settings)
        try:
            pipeline = Pipeline(services, Captured())
            for message, postback in (
                ({"type": "text", "text": COURSE_QUESTION}, None),
                (None, START),
                ({"type": "text", "text": UNANSWERABLE}, None),
            ):
                event = _event(user, message, postback)
                item = QueuedEvent(event["webhookEventId"], user, event["timestamp"], event, 1)
                await pipeline.process(item)
        finally:
            await services.close()

    asyncio.run(scenario())
    assert rows(settings) == []
    # The same turns from a citizen are recorded (the test above is not vacuous).
    event = text_event(COURSE_QUESTION, user_id("citizen"))
    assert capture.recorded(InboundEvent.from_dict(event))
    assert not capture.recorded(InboundEvent.from_dict(_event(user, None, START)))


# -- notices ------------------------------------------------------------------------------------


@pytest.fixture
def notice_settings(make_settings: Callable[..., Settings], pg_url: str) -> Settings:
    return make_settings(database_url=pg_url, notify_quiet_hours="", notify_interval_seconds=0)


@pytest.fixture
def notice_db(notice_settings: Settings) -> Iterator[Engine]:
    with bot_database(notice_settings) as engine:
        yield engine


def test_notice_deliveries_and_an_unsubscribe_are_recorded_once(
    notice_settings: Settings, notice_db: Engine, fake_line: FakeLine
) -> None:
    course, users = one_new_course(notice_db, "notice", 3)
    with notice_db.begin() as conn:
        conn.execute(
            insert(Assessment),
            [
                {
                    "line_user_id": users[0],
                    "answers": {"sector": "food"},
                    "stage": 3,
                    "topics": [],
                    "province_code": "50",
                }
            ],
        )
    assert run_notices(notice_settings).sent == 3
    assert run_notices(notice_settings).sent == 0  # a second run: nothing new, nothing twice

    delivered = rows(notice_settings)
    assert sorted((r["line_user_id"], r["key"]) for r in delivered) == sorted(
        (u, course.id) for u in users
    )
    assert {r["kind"] for r in delivered} == {records.NOTICE_DELIVERED}
    profile = {r["line_user_id"]: (r["province"], r["sector"], r["stage"]) for r in delivered}
    assert profile[users[0]] == ("50", "food", 3) and profile[users[1]] == ("", "", 0)

    with ServerThread(notice_settings) as server:
        c = Chat(server, fake_line, users[0])
        answer = c.say("เลิกรับแจ้งเตือน")
        c.press(answer, label("unsubscribe.button_all"))
        c.close()
    stopped = [r for r in rows(notice_settings, users[0]) if r["kind"] != "notice_delivered"]
    unsubscribed = [r for r in stopped if r["kind"] == records.NOTICE_UNSUBSCRIBED]
    assert [(r["key"], r["province"], r["stage"]) for r in unsubscribed] == [(course.id, "50", 3)]


def test_unknown_kinds_are_refused() -> None:
    """A typo in a handler fails loudly instead of counting under a kind no view reads."""

    class _Event:
        def __init__(self) -> None:
            self.user_id = "U" + "0" * 32
            self.one_to_one = True
            self.raw: dict[str, Any] = {}

    class _Turn:
        def __init__(self) -> None:
            self.event = _Event()
            self.nlu = None
            self.writes: list[Any] = []

        def write(self, change: Any) -> None:
            self.writes.append(change)

    with pytest.raises(ValueError, match="unknown insight kind"):
        capture.note(_Turn(), "clicked")  # type: ignore[arg-type]
