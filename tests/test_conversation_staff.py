"""contact_staff: the right agency's contact, then the bot stays quiet until staff
end the hand-off (``bot handoff end``, the admin endpoint) or its time passes."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

from bot.kb.loader import Knowledge, load_knowledge, load_replies
from bot.kb.queries import agency_contact_lines
from bot.nlu import Entity, Parse
from bot.settings import Settings
from bot.storage import handoff
from bot.storage.db import Assessment, Base, Database, Handoff, aware, utcnow
from handlers.staff import (
    GENERAL_AGENCY,
    agency_for_topic,
    contact_codes,
    duration,
    named_agency,
    pick_agency,
)
from tests.conversation import Chat, texts
from tests.fakeline import FakeLine
from tests.helpers import ROOT, ServerThread, bot_database, run_bot_with

REPLIES = load_replies(ROOT / "knowledge")
KB: Knowledge = load_knowledge(ROOT / "knowledge").knowledge  # type: ignore[assignment]
ADMIN_TOKEN = "admin-token-for-the-handoff-tests-0123"


@pytest.fixture(params=["embedded", "shared"])
def mode_settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Settings:
    """Both deployments, with the admin endpoints open (ADMIN_TOKEN set)."""
    if request.param == "embedded":
        return make_settings(admin_token=ADMIN_TOKEN)
    settings: Settings = request.getfixturevalue("make_shared_settings")(admin_token=ADMIN_TOKEN)
    return settings


# -- helpers -------------------------------------------------------------------------------


def sql(server: ServerThread, statement: Any) -> list[Any]:
    with bot_database(server.settings) as engine, engine.begin() as conn:
        result = conn.execute(statement)
        return list(result.all()) if result.returns_rows else []


def bot_cli(server: ServerThread, *args: str) -> subprocess.CompletedProcess[str]:
    return run_bot_with(server.settings, *args)


def contact_text(code: str) -> str:
    lines = agency_contact_lines(KB, contact_codes(KB, code))
    return REPLIES.text(
        "staff.contact", agency=KB.agencies[code].name.th, contacts="\n".join(lines)
    )


def handed_off_text(seconds: int) -> str:
    return REPLIES.text("staff.handed_off", duration=duration(REPLIES, seconds))


def assert_silent(c: Chat, fake_line: FakeLine) -> None:
    """A message now gets no reply and no push."""
    before = len(fake_line.calls("reply", status=None))
    assert c.say("สวัสดีครับ") == []
    time.sleep(0.3)
    assert len(fake_line.calls("reply", status=None)) == before
    assert fake_line.calls("push", status=None) == []


def assert_answers_again(c: Chat) -> None:
    assert texts(c.say("สวัสดีครับ"))[0] in REPLIES.texts["greeting.hello"]


# -- conversations -------------------------------------------------------------------------


def test_contact_staff_then_silence_until_staff_end_it_with_the_cli(
    chat: Callable[[str], Chat], chat_bot: ServerThread, fake_line: FakeLine
) -> None:
    c = chat("exporter")
    bystander = chat("bystander")
    answer = c.say("ขอคุยกับเจ้าหน้าที่เรื่องส่งออกไปญี่ปุ่น")
    # Japan is a market: the agency behind the export programmes for it.
    assert texts(answer) == [
        contact_text("DITP"),
        handed_off_text(chat_bot.settings.handoff_seconds),
    ]
    ((agency, until),) = sql(
        chat_bot, select(Handoff.agency, Handoff.until).where(Handoff.line_user_id == c.user)
    )
    assert agency == "DITP"
    until = aware(until)
    expected = utcnow() + dt.timedelta(seconds=chat_bot.settings.handoff_seconds)
    assert abs((until - expected).total_seconds()) < 60

    assert_silent(c, fake_line)
    assert_answers_again(bystander)  # only that user is with staff

    listing = bot_cli(chat_bot, "handoff", "list")
    assert listing.returncode == 0, listing.stderr
    assert c.user in listing.stdout and "DITP" in listing.stdout
    assert bystander.user not in listing.stdout
    ended = bot_cli(chat_bot, "handoff", "end", c.user)
    assert ended.returncode == 0, ended.stderr
    assert_answers_again(c)
    again = bot_cli(chat_bot, "handoff", "end", c.user)
    assert again.returncode == 1 and "no open hand-off" in again.stderr
    assert "nobody" in bot_cli(chat_bot, "handoff", "list").stdout


def test_menu_button_hand_off_ended_through_the_admin_endpoint(
    chat: Callable[[str], Chat], chat_bot: ServerThread, fake_line: FakeLine
) -> None:
    c = chat("caller")
    menu = c.say("เมนู")
    answer = c.press(menu, REPLIES.text("menu.contact_staff"))
    # Nothing points to an agency: the ministry's general contact.
    assert texts(answer)[0] == contact_text(GENERAL_AGENCY)
    assert_silent(c, fake_line)

    base = chat_bot.base_url + "/admin/handoffs"
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert httpx.get(base, timeout=10).status_code == 401
    listed = httpx.get(base, headers=auth, timeout=10)
    assert listed.status_code == 200
    (row,) = listed.json()["handoffs"]
    assert row["user_id"] == c.user and row["agency"] == GENERAL_AGENCY
    assert httpx.post(f"{base}/{c.user}/end", timeout=10).status_code == 401
    ended = httpx.post(f"{base}/{c.user}/end", headers=auth, timeout=10)
    assert ended.status_code == 200 and ended.json()["ok"] is True
    assert httpx.post(f"{base}/{c.user}/end", headers=auth, timeout=10).status_code == 404
    assert httpx.get(base, headers=auth, timeout=10).json()["handoffs"] == []
    assert_answers_again(c)


def test_hand_off_ends_by_itself_when_its_time_passes(
    chat: Callable[[str], Chat], chat_bot: ServerThread, fake_line: FakeLine
) -> None:
    c = chat("patient")
    c.say("ขอคุยกับเจ้าหน้าที่")
    assert_silent(c, fake_line)
    sql(
        chat_bot,
        update(Handoff)
        .where(Handoff.line_user_id == c.user)
        .values(until=utcnow() - dt.timedelta(seconds=1)),
    )
    assert_answers_again(c)
    assert "nobody" in bot_cli(chat_bot, "handoff", "list").stdout


def test_agency_follows_the_latest_assessment(
    chat: Callable[[str], Chat], chat_bot: ServerThread
) -> None:
    c = chat("assessed")
    for topics in (["export_trade"], ["digital_skills", "online_selling"]):  # the latest counts
        sql(
            chat_bot,
            insert(Assessment).values(
                line_user_id=c.user,
                answers={"business_stage": "new"},
                stage=2,
                topics=topics,
                province_code=None,
                created_at=utcnow(),
            ),
        )
        time.sleep(0.01)
    code = agency_for_topic(KB, "digital_skills")
    assert code is not None and code != GENERAL_AGENCY
    answer = c.say("ขอคุยกับเจ้าหน้าที่")
    assert texts(answer)[0] == contact_text(code)


# -- choosing the agency (no bot needed) ---------------------------------------------------


def _parse(*entities: Entity) -> Parse:
    return Parse("x", "x", "contact_staff", 1.0, (), entities)


def test_an_agency_named_in_the_message_wins() -> None:
    assert named_agency(KB, "ติดต่อ DITP หน่อย") == "DITP"
    assert named_agency(KB, "เบอร์กรมพัฒนาธุรกิจการค้า") == "DBD"
    assert named_agency(KB, "ขอคุยกับเจ้าหน้าที่") is None
    assert named_agency(KB, "democracy") is None  # a code inside a word is not a mention
    market = Entity("market", "JP", "ญี่ปุ่น", 1.0)
    assert pick_agency(KB, _parse(market), "ติดต่อ DBD เรื่องญี่ปุ่น", []) == "DBD"


def test_market_then_topic_then_assessment_then_ministry() -> None:
    market = Entity("market", "JP", "ญี่ปุ่น", 1.0)
    topic = Entity("topic", "online_selling", "ขายออนไลน์", 1.0)
    jp = pick_agency(KB, _parse(market, topic), "", ["digital_skills"])
    assert jp == "DITP"
    selling = pick_agency(KB, _parse(topic), "", ["digital_skills"])
    assert selling == agency_for_topic(KB, "online_selling")
    assert pick_agency(KB, _parse(), "", ["digital_skills"]) == agency_for_topic(
        KB, "digital_skills"
    )
    assert pick_agency(KB, _parse(), "", ["logistics"]) == GENERAL_AGENCY  # no course on it
    assert pick_agency(KB, None, "", []) == GENERAL_AGENCY


def test_an_agency_without_a_phone_shows_its_parents_phone() -> None:
    assert contact_codes(KB, "NEA") == ["NEA", "DITP"]
    assert contact_codes(KB, "DITP") == ["DITP"]
    lines = agency_contact_lines(KB, contact_codes(KB, "NEA"))
    assert any("1169" in line for line in lines)


def test_duration_in_hours_or_minutes() -> None:
    assert duration(REPLIES, 4 * 3600) == REPLIES.text("staff.hours", n=4)
    assert duration(REPLIES, 90 * 60) == REPLIES.text("staff.minutes", n=90)


def test_handoff_store_start_again_end_and_list(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        try:
            first = await handoff.start(db, "Ua", "DITP", 600)
            again = await handoff.start(db, "Ua", "DBD", 1200)
            assert again.started_at == first.started_at and again.until > first.until
            await handoff.start(db, "Ub", None, 600)
            assert [h.user_id for h in await handoff.active(db)] == ["Ua", "Ub"]
            assert await handoff.is_open(db, "Ua")
            assert await handoff.end(db, "Ua") is True
            assert await handoff.end(db, "Ua") is False
            assert not await handoff.is_open(db, "Ua")
            assert [h.to_json()["user_id"] for h in await handoff.active(db)] == ["Ub"]
        finally:
            await db.close()

    asyncio.run(scenario())
