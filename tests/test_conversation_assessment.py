"""The skills assessment as people use it: through the signed webhook to the fake LINE API.

Every script runs in both deployments (SQLite without Redis; Redis + PostgreSQL). Wording
is read from the reply files, so an operator's edit does not break the tests.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from itertools import zip_longest
from typing import Any

import pytest
import redis
from sqlalchemy import select

from bot.kb.loader import Knowledge, load_knowledge, load_replies
from bot.kb.queries import needs_check
from bot.line.messages import postback_data
from bot.settings import Settings
from bot.storage.db import Assessment, Subscription
from tests.conversation import Chat, bubbles, find_action, joined, quick_replies, serving, texts
from tests.fakeline import FakeLine
from tests.helpers import ROOT, bot_database, user_id

REPLIES = load_replies(ROOT / "knowledge")
START = postback_data("go", i="start_assessment")  # the main menu's "ประเมินทักษะ" button


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    result = load_knowledge(ROOT / "knowledge", also=(ROOT / "intents",))
    assert result.knowledge is not None, result.problems
    return result.knowledge


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[a-z_]+\}", template)
    return re.compile("(?s)" + "(.+?)".join(re.escape(p) for p in parts))


def said(answer: list[dict[str, Any]], key: str) -> bool:
    """Whether one of the answer's texts is reply ``key`` (any variant, any values)."""
    patterns = [_pattern(v) for v in REPLIES.texts[key]]
    return any(p.fullmatch(t) for t in texts(answer) for p in patterns)


def question(kb: Knowledge, qid: str) -> str:
    """The text of question ``qid`` as the bot asks it first ("ข้อ 2/7 · ...")."""
    a = kb.assessment
    return REPLIES.text(
        "assessment.question",
        number=a.number(qid),
        total=len(a.ids),
        question=a.question(qid).text,
    )


def asks(answer: list[dict[str, Any]], kb: Knowledge, qid: str) -> bool:
    return question(kb, qid) in texts(answer)


def label(kb: Knowledge, qid: str, option: str) -> str:
    found = kb.assessment.question(qid).option(option)
    assert found is not None
    return found.label


def button(key: str) -> str:
    return REPLIES.text(key)


def rows(c: Chat, model: Any) -> list[Any]:
    """This user's rows of a table, oldest first."""
    with bot_database(c.server.settings) as engine, engine.connect() as conn:
        query = select(model).where(model.line_user_id == c.user)
        if model is Assessment:
            query = query.order_by(Assessment.id)
        return list(conn.execute(query).all())


def expire(c: Chat) -> None:
    """Let the user's open dialogue time out now (as its TTL would), keeping the marker."""
    settings = c.server.settings
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url)
        client.delete(f"{settings.redis_prefix}:dlg:{c.user}")
        client.close()
    else:
        c.server.services.dialogue._states.pop(c.user)  # type: ignore[attr-defined]


def notes_where_needed(answer: list[dict[str, Any]], kb: Knowledge) -> int:
    """Check every card: an entry that needs checking shows the sample/check note."""
    notes = [
        v
        for key in ("cards.note_sample", "cards.note_check", "cards.note_centre")
        for v in REPLIES.texts[key]
    ]
    entries: dict[str, Any] = {c.name.th: c for c in kb.courses}
    entries |= {p.name.th: p for p in kb.programmes}
    checked = 0
    for bubble in bubbles(answer):
        name = bubble["body"]["contents"][0]["text"]
        entry = entries.get(name)
        centre = next((c for c in kb.centres if c.name_th == name), None)
        if entry is not None:
            needed = needs_check(entry.provenance, entry.schedule)
        else:
            assert centre is not None, f"a card for something unknown: {name}"
            needed = needs_check(centre.provenance, None) or centre.status != "active"
        if needed:
            assert any(n in joined([bubble]) for n in notes), f"no check note on {name}"
            checked += 1
    return checked


# -- whole assessments -------------------------------------------------------------------------


def test_finished_by_pressing_buttons_alone(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("buttons-only")
    turns = 0

    def press(answer: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
        nonlocal turns
        turns += 1
        return c.press(answer, text)

    turns += 1
    answer = c.postback(START)
    assert said(answer, "assessment.intro") and asks(answer, kb, "business_stage")
    answer = press(answer, label(kb, "business_stage", "new"))
    assert asks(answer, kb, "sector")
    answer = press(answer, label(kb, "sector", "food"))
    assert asks(answer, kb, "sales_channels")
    answer = press(answer, label(kb, "sales_channels", "social"))
    assert said(answer, "assessment.question_more")  # pick more, or go on
    answer = press(answer, button("assessment.button_done"))
    assert asks(answer, kb, "digital_skill")
    answer = press(answer, label(kb, "digital_skill", "basic"))
    assert asks(answer, kb, "goal")
    answer = press(answer, label(kb, "goal", "sell_online"))
    assert asks(answer, kb, "province")
    # LINE's own "share my location" quick reply; near Cha-am.
    assert find_action(answer, button("assessment.button_location"))["type"] == "location"
    turns += 1
    answer = c.share_location(12.80, 99.97)
    assert said(answer, "assessment.place_got") and asks(answer, kb, "notify")
    answer = press(answer, label(kb, "notify", "yes"))

    assert turns == 9  # start + 8 answers (the channels question takes a pick and "done")
    assert said(answer, "assessment.result") and said(answer, "assessment.notify_saved")
    assert len(answer) <= 5
    cards = bubbles(answer)
    assert 1 <= len(cards) <= 10
    # Low digital skills: the nearest community digital centre comes first, with its distance.
    first = joined([cards[0]])
    assert cards[0]["body"]["contents"][0]["text"] in {c.name_th for c in kb.centres}
    assert re.search(r"\d+\.\d", first)
    assert notes_where_needed(answer, kb) == len(cards)  # every shipped entry is a sample

    [saved] = rows(c, Assessment)
    assert saved.answers == {
        "business_stage": "new",
        "sector": "food",
        "sales_channels": ["social"],
        "digital_skill": "basic",
        "goal": "sell_online",
        "province": "76",
        "notify": "yes",
    }
    assert saved.province_code == "76" and 1 <= saved.stage <= 5
    assert saved.topics[0] == "online_selling"
    [sub] = rows(c, Subscription)
    assert sub.active and sub.provinces == ["76"] and sub.stage == saved.stage
    assert sub.topics == saved.topics[: kb.assessment.scoring.show_topics]


def test_finished_by_typing_alone(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("typing-only")
    for typed, next_question in [
        ("อยากทำแบบประเมินครับ", "business_stage"),
        ("ยังเป็นแค่ไอเดียครับ", "sector"),
        ("ขายผ้าทอ", "sales_channels"),
        ("ยังไม่เคยขายออนไลน์", "digital_skill"),
        ("ใช้ไม่ค่อยเป็น", "goal"),
        ("อยากขายออนไลน์", "province"),
        ("อยู่โคราช", "notify"),
    ]:
        assert asks(c.say(typed), kb, next_question), typed
    answer = c.say("ไม่รับครับ")
    assert said(answer, "assessment.result") and not said(answer, "assessment.notify_saved")
    korat = {c.name_th for c in kb.centres if c.province_code == "30"}
    assert bubbles(answer)[0]["body"]["contents"][0]["text"] in korat
    notes_where_needed(answer, kb)

    [saved] = rows(c, Assessment)
    assert saved.answers == {
        "business_stage": "idea",
        "sector": "handicraft",
        "sales_channels": ["none"],
        "digital_skill": "none",
        "goal": "sell_online",
        "province": "30",
        "notify": "no",
    }
    assert saved.stage == 1 and saved.province_code == "30"
    assert rows(c, Subscription) == []


def test_an_exporter_typing_freely_gets_programmes_with_reasons(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("exporter")
    c.say("เช็คความพร้อมส่งออกหน่อย")
    for text in (
        "ส่งออกอยู่แล้วครับ",
        "อาหารแปรรูป",
        "ขายหน้าร้านกับshopeeแล้วก็ส่งไปต่างประเทศ",  # several channels in one message
        "ยิงแอดเป็นครับ😎",
        "๗",  # Thai digit: the 7th option
        "ข้ามครับ",
    ):
        answer = c.say(text)
        assert not said(answer, "assessment.not_understood"), text
    assert asks(answer, kb, "notify")
    answer = c.say("รับครับ")
    assert said(answer, "assessment.result")
    cards = bubbles(answer)
    programme_names = {p.name.th for p in kb.programmes}
    shown = [b["body"]["contents"][0]["text"] for b in cards]
    assert any(name in programme_names for name in shown)
    assert not any(name in {c.name_th for c in kb.centres} for name in shown)
    reasons = [*REPLIES.texts["cards.reasons_title"], *REPLIES.texts["cards.reasons_check_title"]]
    assert any(r in joined(answer) for r in reasons)  # the pre-screen says what to check
    notes_where_needed(answer, kb)

    [saved] = rows(c, Assessment)
    assert saved.answers["sales_channels"] == ["shopfront", "marketplace", "abroad"]
    assert saved.answers["goal"] == "export" and saved.answers["province"] is None
    assert saved.stage == 5
    [sub] = rows(c, Subscription)
    assert sub.provinces == [] and sub.topics[0] == "export_trade"


# -- moving around -----------------------------------------------------------------------------


def test_back_goes_one_question_back(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("back")
    answer = c.postback(START)
    answer = c.say("ย้อนกลับ")  # nothing before the first question
    assert said(answer, "assessment.first_question") and asks(answer, kb, "business_stage")
    answer = c.press(answer, label(kb, "business_stage", "running"))
    answer = c.press(answer, label(kb, "sector", "beauty"))
    assert asks(answer, kb, "sales_channels")
    answer = c.say("ย้อนกลับ")
    assert asks(answer, kb, "sector")
    answer = c.press(answer, button("assessment.button_back"))
    assert asks(answer, kb, "business_stage")
    answer = c.say("3")
    answer = c.say("2")
    answer = c.press(answer, label(kb, "sales_channels", "website"))
    answer = c.press(answer, button("assessment.button_back"))  # back from "pick more"
    assert asks(answer, kb, "sector")
    answer = c.press(answer, label(kb, "sector", "lifestyle"))
    assert asks(answer, kb, "sales_channels")  # the channels are asked afresh


def test_cancel_mid_way_ends_it_and_saves_nothing(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("cancel")
    answer = c.postback(START)
    answer = c.press(answer, label(kb, "business_stage", "idea"))
    answer = c.press(answer, label(kb, "sector", "food"))
    answer = c.say("ยกเลิก")
    assert said(answer, "help.cancelled")
    answer = c.say("2")  # no longer an answer to anything
    assert not any(t.startswith(question(kb, "sales_channels")[:6]) for t in texts(answer))
    assert not said(answer, "assessment.question")
    assert rows(c, Assessment) == []


def test_starting_again_asks_resume_or_restart(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("resume")
    answer = c.postback(START)
    answer = c.press(answer, label(kb, "business_stage", "new"))
    answer = c.press(answer, label(kb, "sector", "fashion"))
    answer = c.say("ขอทำแบบประเมินใหม่")  # typed while a question is open
    assert said(answer, "assessment.resume_or_restart")
    answer = c.press(answer, button("assessment.button_resume"))
    assert asks(answer, kb, "sales_channels")
    answer = c.postback(START)  # the menu button while one is open
    assert said(answer, "assessment.resume_or_restart")
    answer = c.press(answer, button("assessment.button_restart"))
    assert said(answer, "assessment.intro") and asks(answer, kb, "business_stage")
    # The restart dropped the earlier answers: finish it and look at what was saved.
    for text in ("4", "1", "6", "3", "7", "ข้าม", "2"):
        answer = c.say(text)
    assert said(answer, "assessment.result")
    [saved] = rows(c, Assessment)
    assert saved.answers["business_stage"] == "exporting"
    assert saved.answers["sector"] == "food" and saved.answers["sales_channels"] == ["abroad"]


def test_an_answer_not_understood_is_asked_again_twice_then_buttons_and_a_way_out(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("confused")
    answer = c.postback(START)
    answer = c.say("asdfgh")
    assert said(answer, "assessment.not_understood") and asks(answer, kb, "business_stage")
    answer = c.say("qwerty uiop")
    assert said(answer, "assessment.not_understood_again") and asks(answer, kb, "business_stage")
    answer = c.say("zzz")
    assert said(answer, "assessment.offer_buttons")
    labels = [a["label"] for a in quick_replies(answer)]
    assert button("assessment.button_exit") in labels
    assert label(kb, "business_stage", "idea") in labels
    answer = c.say("blah")  # a fourth: the bot stops instead of looping
    assert said(answer, "assessment.gave_up")
    answer = c.say("1")
    assert not said(answer, "assessment.question")

    # The way out offered on the third miss.
    answer = c.postback(START)
    for text in ("ฮ่าๆๆ", "xx", "yy"):
        answer = c.say(text)
    answer = c.press(answer, button("assessment.button_exit"))
    assert said(answer, "assessment.exited")
    assert rows(c, Assessment) == []


def test_a_place_name_in_several_provinces_asks_which(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("ambiguous-place")
    answer = c.postback(START)
    for text in ("2", "1", "3", "3", "3"):
        answer = c.say(text)
    assert asks(answer, kb, "province")
    answer = c.say("หนองบัว")  # in 25 provinces: too many buttons, so ask for the province
    assert said(answer, "assessment.place_too_many")
    answer = c.share_location(35.68, 139.69)  # Tokyo
    assert said(answer, "assessment.place_far")
    answer = c.say("ปากน้ำ")
    assert said(answer, "assessment.place_which")
    labels = [a["label"] for a in quick_replies(answer)]
    assert kb.places.provinces["86"].name_th in labels and len(labels) <= 13
    answer = c.press(answer, kb.places.provinces["86"].name_th)
    assert said(answer, "assessment.place_got") and asks(answer, kb, "notify")


def test_a_button_of_an_earlier_question_is_not_taken_for_this_one(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("old-button")
    first = c.postback(START)
    answer = c.press(first, label(kb, "business_stage", "idea"))
    answer = c.press(first, label(kb, "business_stage", "new"))  # scrolled up and pressed
    # The button carries the token of the state it was made in: old, so not taken.
    assert said(answer, "help.stale_button_in_flow") and asks(answer, kb, "sector")
    answer = c.press(answer, label(kb, "sector", "food"))
    assert asks(answer, kb, "sales_channels")


def test_two_users_interleaved_never_see_each_others_answers(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    alice, bob = chat("alice"), chat("bob")
    a = alice.postback(START)
    b = bob.say("ประเมินทักษะ")
    a = alice.press(a, label(kb, "business_stage", "idea"))
    assert asks(a, kb, "sector")
    b = bob.press(b, label(kb, "business_stage", "exporting"))
    assert asks(b, kb, "sector")
    a = alice.say("ย้อนกลับ")  # alice goes back; bob is untouched
    assert asks(a, kb, "business_stage")
    b = bob.press(b, label(kb, "sector", "agriculture"))
    assert asks(b, kb, "sales_channels")
    a = alice.say("1")
    assert asks(a, kb, "sector")
    alice_says = ["อื่นๆ", "หน้าร้าน", "พอใช้ได้", "เริ่มต้นธุรกิจ", "กทม", "รับ"]
    bob_says = ["ขายต่างประเทศ", "เก่งมาก", "ส่งออก", "เชียงใหม่", "ไม่รับ"]
    for mine, theirs in zip_longest(alice_says, bob_says):
        a = alice.say(mine)
        if theirs:
            b = bob.say(theirs)
    assert said(a, "assessment.result") and said(b, "assessment.result")
    [mine] = rows(alice, Assessment)
    [theirs] = rows(bob, Assessment)
    assert mine.answers["business_stage"] == "idea" and mine.answers["province"] == "10"
    assert theirs.answers["business_stage"] == "exporting" and theirs.answers["province"] == "50"
    assert mine.answers["sector"] == "all" and theirs.answers["sector"] == "agriculture"
    assert [s.line_user_id for s in rows(alice, Subscription)] == [alice.user]
    assert rows(bob, Subscription) == []


def test_history_is_kept_and_the_subscription_updated(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("twice")
    for goal in ("7", "3"):
        c.postback(START)
        for text in ("3", "1", "3", "3", goal, "เชียงใหม่", "1"):
            answer = c.say(text)
        assert said(answer, "assessment.result")
    first, second = rows(c, Assessment)
    assert first.answers["goal"] == "export" and second.answers["goal"] == "customers"
    [sub] = rows(c, Subscription)  # one row per user, updated by the latest result
    assert sub.topics[0] == second.topics[0] == "digital_marketing"
    assert "export_trade" in sub.topics  # earlier topics are kept after the new ones


# -- time-out ---------------------------------------------------------------------------------


def test_time_out_is_told_and_a_restart_offered(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("slow")
    answer = c.postback(START)
    answer = c.press(answer, label(kb, "business_stage", "new"))
    old = answer
    expire(c)
    answer = c.press(old, label(kb, "sector", "food"))  # a button from before the time-out
    assert said(answer, "assessment.timed_out") and len(answer) == 1
    answer = c.press(old, label(kb, "sector", "food"))  # pressed again: an old button
    assert said(answer, "help.stale_button_restart")
    again = quick_replies(answer)[0]  # the first button starts the assessment again
    assert again["data"] == START
    answer = c.postback(again["data"])
    assert asks(answer, kb, "business_stage")


@pytest.fixture
def short_ttl_chat(make_settings: Callable[..., Settings], fake_line: FakeLine) -> Iterator[Chat]:
    """A bot whose conversations time out after 10 s (the shortest allowed)."""
    for server in serving(make_settings(dialogue_ttl_seconds=10)):
        c = Chat(server, fake_line, user_id("short-ttl"))
        yield c
        c.close()


def test_a_real_ttl_expiry_is_reported(short_ttl_chat: Chat, kb: Knowledge) -> None:
    c = short_ttl_chat
    answer = c.postback(START)
    assert asks(answer, kb, "business_stage")
    time.sleep(10.5)
    answer = c.say("2")
    assert said(answer, "assessment.timed_out")
    assert not asks(answer, kb, "sector")


def test_a_typed_no_thanks_answers_the_notices_question(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("no-thanks")
    c.postback(START)
    for text in ("1", "1", "1", "1", "1", "ข้าม"):
        answer = c.say(text)
    assert asks(answer, kb, "notify")
    answer = c.say("ไม่ต้องครับ")
    assert said(answer, "assessment.result")
