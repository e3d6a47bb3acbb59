"""LINE conventions a person notices: a Flex message's altText names what it shows.

LINE shows the altText in the chat list and in notifications, and screen readers read it
out: "คอร์สแนะนำ 3 รายการ" alone says nothing, so it names the cards. Checked through the
signed webhook (a course search, the assessment's result) and on a notice's digest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.kb.loader import Knowledge, load_replies
from bot.line.messages import postback_data
from bot.notices.message import digest_messages
from tests.conversation import Chat
from tests.helpers import ROOT

R = load_replies(ROOT / "knowledge")


def flex_messages(answer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in answer if m.get("type") == "flex"]


def titles(message: dict[str, Any]) -> list[str]:
    return [str(b["body"]["contents"][0]["text"]) for b in message["contents"]["contents"]]


def names_its_cards(message: dict[str, Any]) -> bool:
    """Every card's name is in the altText, or as many as fit before it is cut ("…")."""
    alt = str(message["altText"])
    named = [t for t in titles(message) if t in alt]
    if not named or named != titles(message)[: len(named)]:
        return False
    return len(named) == len(titles(message)) or alt.endswith("…")


def test_course_and_result_cards_are_named_in_the_alt_text(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("alt-text")
    [cards] = flex_messages(c.say("อยากเรียนขายของออนไลน์"))
    assert names_its_cards(cards), cards["altText"]

    c.postback(postback_data("go", i="start_assessment"))
    for text in ("2", "1", "3", "3", "3", "ข้าม"):
        c.say(text)
    [result] = flex_messages(c.say("2"))
    assert names_its_cards(result), result["altText"]


def test_a_notice_names_its_new_courses_in_the_alt_text(kb: Knowledge) -> None:
    courses = list(kb.courses[:3])
    _intro, cards = (m.to_line() for m in digest_messages(courses, kb, R))
    assert names_its_cards(cards)
    assert all(c.name.th in cards["altText"] for c in courses)
