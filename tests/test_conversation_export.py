"""Finding an export programme, as a user does it in LINE: market and sector (asked
when missing), the latest assessment, and the eligibility pre-screen in plain Thai.
Every reply went through the fake LINE API's validation (``fake_line`` fails the test
on any request LINE would reject)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from types import SimpleNamespace

from bot.content.cards import reason_text
from bot.content.replies import Replies
from bot.dialogue.router import Turn
from bot.dialogue.state import DialogueState
from bot.kb.loader import Knowledge
from bot.kb.queries import BusinessProfile, find_programmes
from bot.line.events import InboundEvent
from handlers import export
from tests.conversation import (
    Chat,
    bubbles,
    card_names,
    hit_names,
    joined,
    quick_labels,
    said,
    save_assessment,
    texts,
)
from tests.fakeline.validate import load_validator
from tests.helpers import ServerThread


def market_and_sector(kb: Knowledge, market: str, sector: str) -> dict[str, str]:
    """How the replies name a market and a sector (their ``market`` and ``sector``)."""
    return {"market": kb.markets[market].name.th, "sector": kb.sectors[sector].label.th}


def test_market_and_sector_in_one_message(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    answer = chat("exp-one").say("อยากส่งออกอาหารไปจีน")
    hits = find_programmes(kb, "CN", "food", BusinessProfile())
    assert hits
    assert said(
        answer,
        replies,
        "export.found",
        **market_and_sector(kb, "CN", "food"),
        count=len(hits),
    )
    assert card_names(answer) == hit_names(hits)
    # Without an assessment: what to make sure of, and an invitation to take it.
    assert said(answer, replies, "export.check_first")
    assert said(answer, replies, "export.no_assessment")
    assert replies.text("menu.start_assessment") in quick_labels(answer)
    # Every shipped programme is a sample: each card says to check with the agency.
    for bubble in bubbles(answer):
        assert said([bubble], replies, "cards.note_sample")
    assert len(answer) <= 5


def test_asks_market_then_sector_step_by_step(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    c = chat("exp-steps")
    answer = c.say("โครงการส่งออก")
    assert said(answer, replies, "export.ask_market")
    assert kb.markets["JP"].name.th in quick_labels(answer)
    answer = c.press(answer, kb.markets["JP"].name.th)
    assert said(answer, replies, "export.ask_sector")
    assert replies.text("export.sector_label.beauty") in quick_labels(answer)
    answer = c.press(answer, replies.text("export.sector_label.beauty"))
    hits = find_programmes(kb, "JP", "beauty", BusinessProfile())
    assert hits and card_names(answer) == hit_names(hits)


def test_typed_answers_and_back_while_asking(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    c = chat("exp-typed")
    c.say("อยากหาโครงการส่งออก")
    for typed, asked in [
        ("เวียดนาม", "export.ask_sector"),
        ("ย้อนกลับ", "export.ask_market"),
        ("ญี่ปุ่น", "export.ask_sector"),
    ]:
        assert said(c.say(typed), replies, asked), typed
    answer = c.say("ผ้าทอ")
    hits = find_programmes(kb, "JP", "handicraft", BusinessProfile())
    assert card_names(answer) == hit_names(hits)


def test_unknown_market_asked_again_then_a_way_out(
    chat: Callable[[str], Chat], replies: Replies
) -> None:
    c = chat("exp-miss")
    c.say("โครงการส่งออก")
    for _ in range(2):
        assert said(c.say("ฟหกด ฟหกด"), replies, "export.ask_market_again")
    answer = c.say("ฟหกด ฟหกด")
    assert said(answer, replies, "export.give_up")
    assert replies.text("menu.help") in quick_labels(answer)


def test_saved_assessment_gives_sector_and_readiness(
    chat: Callable[[str], Chat], chat_bot: ServerThread, kb: Knowledge, replies: Replies
) -> None:
    c = chat("exp-assessed")
    save_assessment(
        chat_bot,
        c.user,
        answers={"business_stage": "running", "sector": "food", "province": "50"},
        stage=3,
        topics=["export_trade"],
        province_code="50",
    )
    answer = c.say("อยากส่งออกไปจีน")  # no sector in the message: the assessment's is used
    assert said(
        answer,
        replies,
        "export.from_assessment",
        business_stage=replies.text("export.business_stage.running"),
        stage=3,
    )
    hits = find_programmes(kb, "CN", "food", BusinessProfile(stage=3))
    assert card_names(answer) == hit_names(hits)
    blocked = [h for h in hits if any(r.certain for r in h.reasons)]
    assert blocked, "stage 3 is below some programmes' readiness"
    assert said(answer, replies, "export.not_yet", count=len(blocked))
    assert said(answer, replies, "export.readiness_tip")
    # The cards of programmes that do not fit carry their reasons.
    by_name = dict(zip(card_names(answer), bubbles(answer), strict=True))
    for hit in blocked:
        card = joined([by_name[hit.programme.name.th]])
        assert replies.text("cards.reasons_title") in card
        for reason in hit.reasons:
            assert reason_text(reason, kb, replies) in card


def test_nothing_open_offers_alternatives(kb: Knowledge, replies: Replies) -> None:
    """Shipped programmes for every market and sector exist (global ones), so this path is
    driven directly with the China-only programmes left in the knowledge."""
    china_only = dataclasses.replace(
        kb, programmes=tuple(p for p in kb.programmes if p.markets == ["CN"])
    )
    services = SimpleNamespace(knowledge=china_only, replies=replies)
    event = InboundEvent.from_dict(
        {
            "type": "message",
            "timestamp": 0,
            "mode": "active",
            "webhookEventId": "x",
            "deliveryContext": {"isRedelivery": False},
            "source": {"type": "user", "userId": "U" + "0" * 32},
            "replyToken": "r",
            "message": {"id": "1", "type": "text", "text": "x"},
        }
    )
    turn = Turn(event=event, services=services, state=DialogueState())  # type: ignore[arg-type]
    asyncio.run(export.answer(turn, "VN", "handicraft", None))
    answer = [m.to_line() for m in turn.messages]
    assert said(
        answer,
        replies,
        "export.none",
        **market_and_sector(kb, "VN", "handicraft"),
    )
    labels = quick_labels(answer)
    assert replies.text("export.button_any_market") in labels
    assert replies.text("export.button_export_courses") in labels
    validator = load_validator()
    body = json.dumps({"replyToken": "t", "messages": answer}, ensure_ascii=False).encode()
    op = validator.operations["replyMessage"]
    assert validator.validate(op, {}, {}, {}, "application/json", body)[1] == []


def test_programme_details_button(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    c = chat("exp-details")
    answer = c.say("อยากส่งออกอาหารไปจีน")
    first = bubbles(answer)[0]
    name = first["body"]["contents"][0]["text"]
    programme = next(p for p in kb.programmes if p.name.th == name)
    details = c.press([first], replies.text("cards.button_details"))
    text = texts(details)[0]
    assert programme.summary.th in text
    assert said(details, replies, "cards.note_sample")
