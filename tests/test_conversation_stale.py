"""Stale buttons: a flow's button tapped from an earlier state is never acted on as new.

Through the signed webhook, in both deployments: the assessment, subscriptions, delete-my-data
and the centres' choice. Each keeps an old answer, moves on (restart, cancel, finish), taps a
button of the old answer, and checks that nothing happened, that the bot said the button is
old and showed where the person is now, and that the current buttons still work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.content.menu import go_button
from bot.dialogue.stamps import STAMP
from bot.kb.loader import Knowledge, load_replies
from bot.line.messages import LABEL_MAX, fit, postback_data
from bot.storage.db import Assessment, Subscription
from tests.conversation import Chat, all_actions, find_action, quick_replies, texts
from tests.helpers import ROOT, bot_database

R = load_replies(ROOT / "knowledge")
START = postback_data("go", i="start_assessment")
Answer = list[dict[str, Any]]


def said(answer: Answer, key: str) -> bool:
    """One of the answer's texts is reply ``key`` (any variant, any values)."""
    for variant in R.texts[key]:
        parts = re.split(r"\{[a-z_]+\}", variant)
        pattern = re.compile("(?s)" + "(.+?)".join(re.escape(p) for p in parts))
        if any(pattern.fullmatch(t) for t in texts(answer)):
            return True
    return False


def label(key: str, **params: Any) -> str:
    return fit(R.text(key, **params), LABEL_MAX)


def option(kb: Knowledge, qid: str, oid: str) -> str:
    found = kb.assessment.question(qid).option(oid)
    assert found is not None
    return found.label


def asks(answer: Answer, kb: Knowledge, qid: str) -> bool:
    a = kb.assessment
    text = R.text(
        "assessment.question", number=a.number(qid), total=len(a.ids), question=a.question(qid).text
    )
    return text in texts(answer)


def rows(c: Chat, model: Any) -> list[Any]:
    with bot_database(c.server.settings) as engine, Session(engine) as s:
        return list(s.scalars(select(model).where(model.line_user_id == c.user)))


def stamps(answer: Answer) -> set[str]:
    """The tokens on the postback buttons of an answer (quick replies and Flex)."""
    found = set()
    for action in quick_replies(answer) + all_actions(answer):
        if action.get("type") == "postback":
            data = dict(parse_qsl(action["data"]))
            if STAMP in data:
                found.add(data[STAMP])
    return found


def test_assessment_buttons_from_before_a_restart_are_old(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("stale-assessment")
    first = c.postback(START)
    assert len(stamps(first)) == 1  # the question's buttons carry the state's token
    answer = c.press(first, option(kb, "business_stage", "new"))
    assert asks(answer, kb, "sector")
    answer = c.postback(START)
    answer = c.press(answer, R.text("assessment.button_restart"))
    assert asks(answer, kb, "business_stage")
    assert stamps(answer) != stamps(first)  # a restart is a new run: new tokens

    # The same question, but from the run before the restart: not taken as an answer.
    stale = c.press(first, option(kb, "business_stage", "idea"))
    assert said(stale, "help.stale_button_in_flow")
    assert asks(stale, kb, "business_stage")  # where the person is now

    # The buttons shown now work.
    answer = c.press(stale, option(kb, "business_stage", "running"))
    assert asks(answer, kb, "sector")

    # A button of an earlier question of this run is old too.
    stale = c.press(first, option(kb, "business_stage", "new"))
    assert said(stale, "help.stale_button_in_flow") and asks(stale, kb, "sector")

    # After leaving, an old button does nothing either and offers the menu.
    c.say("ยกเลิก")
    stale = c.press(answer, option(kb, "sector", "food"))
    assert said(stale, "help.stale_button_restart")
    assert quick_replies(stale)[0]["data"] == START  # start it again, if wanted
    assert rows(c, Assessment) == []


def test_an_old_subscription_confirm_saves_nothing(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("stale-subscribe")
    answer = c.postback(go_button("menu", "subscribe").data)
    topic = kb.topics["language"].label.th
    answer = c.press(answer, label("subscribe.topic_off", topic=topic))
    answer = c.press(answer, label("subscribe.button_done"))
    answer = c.press(answer, label("subscribe.button_nationwide"))
    confirm = answer
    c.say("ยกเลิก")
    stale = c.press(confirm, label("subscribe.button_confirm"))
    assert said(stale, "help.stale_button_restart")
    assert rows(c, Subscription) == []

    # Started again: the old confirm is still old, the new one saves.
    answer = c.postback(go_button("menu", "subscribe").data)
    answer = c.press(answer, label("subscribe.topic_off", topic=topic))
    stale = c.press(confirm, label("subscribe.button_confirm"))
    assert said(stale, "help.stale_button_in_flow")
    assert rows(c, Subscription) == []
    answer = c.press(stale, label("subscribe.button_done"))
    answer = c.press(answer, label("subscribe.button_nationwide"))
    c.press(answer, label("subscribe.button_confirm"))
    [saved] = rows(c, Subscription)
    assert saved.topics == ["language"]


def test_an_old_delete_yes_erases_nothing(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("stale-delete")
    answer = c.postback(go_button("menu", "subscribe").data)
    answer = c.press(answer, label("subscribe.topic_off", topic=kb.topics["language"].label.th))
    answer = c.press(answer, label("subscribe.button_done"))
    answer = c.press(answer, label("subscribe.button_nationwide"))
    c.press(answer, label("subscribe.button_confirm"))
    question = c.say("ลบข้อมูลของฉัน")
    answer = c.press(question, label("privacy.button_no"))
    assert said(answer, "privacy.delete_cancelled")
    stale = c.press(question, label("privacy.button_yes"))
    assert said(stale, "help.stale_button_restart")
    assert len(rows(c, Subscription)) == 1

    # A new question: its own "yes" erases.
    question = c.say("ลบข้อมูลของฉัน")
    answer = c.press(question, label("privacy.button_yes"))
    assert rows(c, Subscription) == []


def test_an_old_place_choice_is_not_answered(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("stale-centres")
    choice = c.say("ศูนย์ดิจิทัลจอมทอง")  # a district in Bangkok and one in Chiang Mai
    chiang_mai = kb.places.provinces["50"].name_th
    assert find_action(choice, chiang_mai)["type"] == "postback"
    c.say("ยกเลิก")
    stale = c.press(choice, chiang_mai)
    assert said(stale, "help.stale_button_restart")
    assert not any(chiang_mai in t for t in texts(stale)[1:])

    # Asked again: the new buttons answer.
    choice = c.say("ศูนย์ดิจิทัลจอมทอง")
    answer = c.press(choice, chiang_mai)
    assert not any(said(answer, f"help.stale_button{k}") for k in ("", "_in_flow", "_restart"))
    assert any(chiang_mai in t for t in texts(answer))


def test_a_place_button_after_the_question_timed_out_says_so(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("stale-expired")
    choice = c.say("ศูนย์ดิจิทัลจอมทอง")
    settings = c.server.settings
    if settings.redis_url:  # the time-to-live runs out (the "it existed" marker stays)
        client = redis.Redis.from_url(settings.redis_url)
        client.delete(f"{settings.redis_prefix}:dlg:{c.user}")
        client.close()
    else:
        c.server.services.dialogue._states.pop(c.user)  # type: ignore[attr-defined]
    stale = c.press(choice, kb.places.provinces["50"].name_th)
    assert said(stale, "help.stale_button_expired")
    assert quick_replies(stale)[0]["data"] == go_button("x", "find_centre").data
