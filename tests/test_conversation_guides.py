"""Guides through the signed webhook, in both deployments: a sourced answer to a common
question with its next steps and 👍/👎, the counts operators read with ``bot guides stats``,
the provincial office when the message names a province, messages with more than one part,
"did you mean" with guides, and guide buttons from old messages.

Wording is read from the reply files and the guides from the knowledge, never hard-coded;
the questions below are this file's own (none is one of a guide's examples).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.content.menu import MAIN_MENU
from bot.content.replies import Replies
from bot.kb.guides import Guide
from bot.kb.loader import Knowledge, today
from bot.kb.queries import contact_agencies, find_courses, find_programmes, thai_date
from bot.kb.schemas import Office
from bot.line.messages import LABEL_MAX, fit, postback_data
from bot.storage.db import Assessment, GuideStat, Unanswered
from tests.conversation import (
    Chat,
    card_names,
    hit_names,
    quick_labels,
    said,
    save_assessment,
    says_exactly,
    texts,
)
from tests.helpers import ROOT, ServerThread, bot_database, run_bot_with

Answer = list[dict[str, Any]]

#: One theme file per parameter: a new file fails here until it has a question below.
THEMES = sorted(p.stem for p in (ROOT / "knowledge" / "guides").glob("*.yaml"))

#: theme -> (guide, a question in this file's own words that the engine reads as it).
QUESTIONS: dict[str, tuple[str, str]] = {
    "business_registration": (
        "commercial_registration_documents",
        "จะไปจดทะเบียนพาณิชย์ ต้องเตรียมเอกสารอะไรไปบ้างครับ",
    ),
    "careers_training": (
        "dsd_free_training",
        "อยากเรียนวิชาชีพกับกรมพัฒนาฝีมือแรงงาน เสียเงินไหมคะ",
    ),
    "complaints": (
        "online_fraud_1166",
        "สั่งของในเน็ตแล้วโดนหลอก ไม่ได้ของ จะแจ้งความที่ไหนได้บ้าง",
    ),
    "digital_centres": ("digital_centre_cost", "ไปใช้คอมที่ศูนย์ดิจิทัลชุมชนต้องจ่ายตังค์ไหม"),
    "export_first_steps": ("certificate_of_origin", "จะขอใบ C/O สำหรับส่งสินค้าไปจีน ยื่นที่ไหนครับ"),
    "food_drug_licences": (
        "fda_cosmetic_notification",
        "อยากทำครีมทาผิวขายเป็นแบรนด์ของตัวเอง ต้องจดแจ้งอะไรบ้าง",
    ),
    "loans_funding": ("tcg_guarantee", "ไม่มีที่ดินหรือบ้านไปค้ำประกัน จะกู้เงินทำร้านได้ไหม"),
    "otop_community": (
        "community_enterprise_registration",
        "รวมกลุ่มแม่บ้านทำขนม อยากจดเป็นวิสาหกิจชุมชน ต้องใช้สมาชิกกี่คน",
    ),
    "selling_online": ("line_oa_setup", "อยากทำไลน์ร้านค้าแบบ LINE OA ต่างจากไลน์ธรรมดายังไง"),
    "standards": ("halal_certification", "อยากได้ตราฮาลาลติดสินค้า ต้องไปขอที่ไหน"),
    "tax_accounting": ("vat_registration_threshold", "รายได้เท่าไหร่ถึงต้องจด VAT คะ"),
    "trademarks_ip": (
        "trademark_renewal",
        "เครื่องหมายการค้าของร้านจะหมดอายุปีหน้า ต่ออายุที่ไหนคะ",
    ),
}

#: A registration question naming a province, in two places: one with a DBD office in
#: knowledge/offices.yaml (Khon Kaen), one without (Lampang). Engine: company_min_founders.
FOUNDERS_IN = "จะตั้งบริษัทที่{province} ต้องมีผู้ถือหุ้นกี่คน"
FOUNDERS = "company_min_founders"

#: Close but unsure: intent None, candidates online_selling_start 0.32,
#: ecommerce_registration 0.30, online_seller_income_tax 0.23 (``bot nlu parse``).
UNSURE = "ขายของออนไลน์ต้องจดอะไรไหม"
UNSURE_GUIDES = ["online_selling_start", "ecommerce_registration", "online_seller_income_tax"]


# -- helpers -------------------------------------------------------------------------------


def menu_labels(replies: Replies) -> list[str]:
    return [replies.text(f"menu.{i}") for i in MAIN_MENU]


def agency_name(kb: Knowledge, guide: Guide) -> str:
    agency = kb.agencies.get(guide.agency)
    return agency.name.th if agency else guide.agency


def only_text(answer: Answer) -> str:
    """The answer is one text message: its text."""
    assert [m["type"] for m in answer] == ["text"], answer
    text: str = answer[0]["text"]
    return text


def shows_guide(answer: Answer, kb: Knowledge, replies: Replies, guide: Guide) -> str:
    """Assert the answer is ``guide``'s: title and answer, source line, feedback, 👍/👎."""
    text = only_text(answer)
    assert replies.text("guides.answer", title=guide.title, answer=guide.answer.strip()) in text
    source = replies.text(
        "guides.source",
        agency=agency_name(kb, guide),
        checked_on=thai_date(guide.provenance.checked_on),
    )
    assert source in text
    assert replies.text("guides.ask_feedback") in text
    labels = quick_labels(answer)
    assert replies.text("guides.button_helpful") in labels
    assert replies.text("guides.button_unhelpful") in labels
    return text


def also_prefix(replies: Replies) -> str:
    """How the button offering a second request starts (its reply without the label)."""
    return replies.text("guides.button_also", label="")


def also_label(replies: Replies, label: str) -> str:
    """The label of the button offering a second request, as LINE shows it."""
    return fit(replies.text("guides.button_also", label=label), LABEL_MAX)


def office_contact(office: Office) -> str:
    reach = office.contact
    bits = [
        reach.phone if reach else None,
        reach.url if reach else None,
        reach.address.th if reach and reach.address else None,
    ]
    return " ".join(b for b in bits if b)


def guide_stats(server: ServerThread) -> list[dict[str, Any]]:
    with bot_database(server.settings) as engine, engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(GuideStat.__table__)).mappings()]


def stats_of(server: ServerThread, guide_id: str) -> dict[str, int]:
    """The counters of one guide summed over its days (tests run within a day or two)."""
    totals = {"shown": 0, "offered": 0, "helpful": 0, "unhelpful": 0}
    for row in guide_stats(server):
        if row["guide_id"] == guide_id:
            for k in totals:
                totals[k] += row[k]
    return totals


def unanswered(server: ServerThread) -> list[Unanswered]:
    with bot_database(server.settings) as engine, engine.connect() as conn:
        rows = conn.execute(select(Unanswered).order_by(Unanswered.id)).all()
    return [Unanswered(**row._mapping) for row in rows]


def assessments_of(server: ServerThread, user: str) -> int:
    with bot_database(server.settings) as engine, Session(engine) as s:
        return len(s.scalars(select(Assessment).where(Assessment.line_user_id == user)).all())


# -- 1. one conversation per theme -----------------------------------------------------------


def test_every_theme_question_is_new_wording_for_its_guide(kb: Knowledge) -> None:
    """The questions below are not the guides' own examples, and each belongs to its theme."""
    assert set(QUESTIONS) == set(THEMES), "write a question for each theme file"
    for theme, (guide_id, question) in QUESTIONS.items():
        guide = kb.guides.get(guide_id)
        assert guide is not None, guide_id
        assert kb.guides.themes[guide_id] == theme
        assert question not in guide.examples


@pytest.mark.parametrize("theme", THEMES)
def test_a_question_of_each_theme_gets_its_guide(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies, theme: str
) -> None:
    assert theme in QUESTIONS, f"no question for knowledge/guides/{theme}.yaml"
    guide_id, question = QUESTIONS[theme]
    guide = kb.guides.get(guide_id)
    assert guide is not None
    answer = chat(f"theme-{theme}").say(question)
    text = shows_guide(answer, kb, replies, guide)
    unverified = replies.text("guides.unverified", agency=agency_name(kb, guide))
    assert (unverified in text) == (not guide.verified)


# -- 2. details and contact ------------------------------------------------------------------


def test_details_show_the_longer_answer_and_sources_and_contact_the_agency(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    guide_id, question = QUESTIONS["business_registration"]
    guide = kb.guides.get(guide_id)
    assert guide is not None and guide.details
    c = chat("details")
    answer = c.say(question)
    shows_guide(answer, kb, replies, guide)

    details = c.press(answer, replies.text("guides.button_details"))
    text = only_text(details)
    assert text == replies.text(
        "guides.details",
        title=guide.title,
        details=guide.details.strip(),
        sources="\n".join(guide.provenance.source_urls),
        review_by=thai_date(guide.provenance.review_by),
    )
    for url in guide.provenance.source_urls:
        assert url in text
    labels = quick_labels(details)
    assert replies.text("guides.button_details") not in labels  # already open
    assert replies.text("guides.button_helpful") in labels
    assert replies.text("guides.button_unhelpful") in labels

    contact = c.press(answer, replies.text("guides.button_contact"))
    text = only_text(contact)
    assert text.startswith(replies.text("guides.contact", contacts=""))
    reached = [kb.agencies[code] for code in contact_agencies(kb, guide.agency)]
    assert reached, "the guide's agency has a contact in agencies.yaml"
    for agency in reached:
        assert agency.name.th in text
        if agency.contact and agency.contact.phone:
            assert agency.contact.phone in text
        if agency.url:
            assert agency.url in text
    assert quick_labels(contact) == menu_labels(replies)

    another = c.press(answer, replies.text("guides.button_other_question"))
    assert texts(another) == [replies.text("guides.ask_another")]


def test_export_programmes_and_a_related_guide_from_the_buttons(
    chat: Callable[[str], Chat], chat_bot: ServerThread, kb: Knowledge, replies: Replies
) -> None:
    guide_id, question = QUESTIONS["standards"]
    guide = kb.guides.get(guide_id)
    assert guide is not None and guide.related.markets and guide.related.sectors
    c = chat("next-steps")
    answer = c.say(question)
    shows_guide(answer, kb, replies, guide)

    # Export programmes for the guide's market and sector, without asking for them again.
    market, sector = guide.related.markets[0], guide.related.sectors[0]
    programmes = c.press(answer, replies.text("guides.button_programmes"))
    expected = find_programmes(kb, market, sector)
    assert not said(programmes, replies, "export.ask_market")
    assert not said(programmes, replies, "export.ask_sector")
    if expected:
        assert card_names(programmes) == hit_names(expected)
    else:
        assert said(
            programmes,
            replies,
            "export.none",
            market=kb.markets[market].name.th,
            sector=kb.sectors[sector].label.th,
        )

    # A related guide is one press away, and counted as shown.
    related = kb.guides.get(guide.related.guides[0])
    assert related is not None
    shows_guide(c.press(answer, related.short), kb, replies, related)
    assert stats_of(chat_bot, related.id)["shown"] == 1
    assert stats_of(chat_bot, guide.id)["shown"] == 1


# -- 3. 👍 / 👎 counted per guide, never per person -------------------------------------------


def test_feedback_is_counted_per_guide_without_user_and_shown_by_guides_stats(
    chat: Callable[[str], Chat], chat_bot: ServerThread, kb: Knowledge, replies: Replies
) -> None:
    guide_id, question = QUESTIONS["tax_accounting"]
    guide = kb.guides.get(guide_id)
    assert guide is not None
    first_day = today()
    alice, bob = chat("fb-alice"), chat("fb-bob")

    answer = alice.say(question)
    shows_guide(answer, kb, replies, guide)
    up = alice.press(answer, replies.text("guides.button_helpful"))
    assert texts(up) == [replies.text("guides.thanks_helpful")]
    assert quick_labels(up) == menu_labels(replies)
    down = alice.press(answer, replies.text("guides.button_unhelpful"))
    assert texts(down) == [replies.text("guides.thanks_unhelpful")]
    assert quick_labels(down) == [
        replies.text("guides.button_contact"),
        replies.text("menu.contact_staff"),
        replies.text("guides.button_other_question"),
    ]
    bob_answer = bob.say(question)
    bob.press(bob_answer, replies.text("guides.button_helpful"))

    assert stats_of(chat_bot, guide_id) == {"shown": 2, "offered": 0, "helpful": 2, "unhelpful": 1}
    rows = guide_stats(chat_bot)
    assert {r["guide_id"] for r in rows} == {guide_id}  # nothing counted for other guides
    assert {r["day"] for r in rows} <= {first_day, today()}
    assert set(GuideStat.__table__.columns.keys()) == {
        "guide_id",
        "day",
        "shown",
        "offered",
        "helpful",
        "unhelpful",
    }
    dumped = json.dumps(rows, default=str, ensure_ascii=False)
    assert alice.user not in dumped and bob.user not in dumped

    listing = run_bot_with(chat_bot.settings, "guides", "stats")
    assert listing.returncode == 0, listing.stderr
    header, *lines = listing.stdout.splitlines()
    (line,) = [ln for ln in lines if ln.split()[0] == guide_id]
    shown = dict(zip(header.split()[1:], line.split()[1:], strict=True))
    assert shown == {"SHOWN": "2", "👍": "2", "👎": "1", "OFFERED": "0"}
    assert alice.user not in listing.stdout and bob.user not in listing.stdout


# -- 4. the province named in the question ---------------------------------------------------


def test_a_province_with_an_office_gets_that_office_here_and_behind_the_buttons(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    guide = kb.guides.get(FOUNDERS)
    assert guide is not None and guide.local_offices
    code = "40"
    office = next(
        (kb.offices[(a, code)] for a in guide.local_offices if (a, code) in kb.offices), None
    )
    assert office is not None, "knowledge/offices.yaml has an office in Khon Kaen"
    province = kb.places.provinces[code].name_th
    c = chat("office-kk")
    answer = c.say(FOUNDERS_IN.format(province=province))
    text = shows_guide(answer, kb, replies, guide)
    local = replies.text(
        "guides.local_office",
        province=province,
        office=office.name.th,
        contact=office_contact(office),
    )
    assert local in text
    assert replies.text("guides.no_local_office", province=province) not in text

    # The agency contact keeps the province: the office first, then the agency.
    contact = only_text(c.press(answer, replies.text("guides.button_contact")))
    assert local in contact
    assert kb.agencies[guide.agency].name.th in contact
    # The related courses are searched for the same province.
    courses = c.press(answer, replies.text("guides.button_courses"))
    expected = find_courses(kb, [t for t in guide.related.topics if t in kb.topics], province=code)
    assert expected and card_names(courses) == hit_names(expected)


def test_a_province_without_an_office_says_so_and_points_to_the_agency(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    guide = kb.guides.get(FOUNDERS)
    assert guide is not None
    code = "52"
    assert not any((a, code) in kb.offices for a in guide.local_offices)
    province = kb.places.provinces[code].name_th
    c = chat("office-lp")
    answer = c.say(FOUNDERS_IN.format(province=province))
    text = shows_guide(answer, kb, replies, guide)
    assert replies.text("guides.no_local_office", province=province) in text
    assert not any(o.name.th in text for o in kb.offices.values())
    contact = only_text(c.press(answer, replies.text("guides.button_contact")))
    assert kb.agencies[guide.agency].name.th in contact


# -- 5. messages with more than one part -----------------------------------------------------


def test_greeting_and_a_request_is_answered_as_the_request(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    c = chat("multi-hello")
    answer = c.say("สวัสดีค่ะ สนใจคอร์สเย็บผ้าค่ะ อยู่ลำปาง")
    assert not said(answer, replies, "greeting.hello")
    assert said(answer, replies, "courses.ask_topic")
    # The province of the message is kept: a topic is searched near Lampang.
    pressed = c.press(answer, replies.text("courses.topic_label.online_selling"))
    expected = find_courses(kb, ["online_selling"], province="52")
    assert expected and card_names(pressed) == hit_names(expected)


def test_a_negated_need_is_not_answered_the_real_one_is(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    answer = chat("multi-not-export").say("ไม่ได้จะส่งออกนะ อยากได้คอร์สทำการตลาดออนไลน์ในประเทศ")
    text = "\n".join(texts(answer))
    # Courses, not export programmes.
    assert not said(answer, replies, "export.ask_market")
    programmes = {p.name.th for p in kb.programmes}
    assert card_names(answer) and not programmes & set(card_names(answer))
    expected = find_courses(kb, ["digital_marketing"])
    assert expected
    assert said(
        answer,
        replies,
        "courses.found",
        topic=kb.topics["digital_marketing"].label.th,
        count=len(expected),
    ), text
    # The need the user said they do NOT have is not searched either.
    assert kb.topics["export_trade"].label.th not in text
    assert card_names(answer) == hit_names(expected)


def test_not_yet_deleting_shows_the_profile_and_deletes_nothing(
    chat: Callable[[str], Chat], chat_bot: ServerThread, replies: Replies
) -> None:
    c = chat("multi-profile")
    save_assessment(
        chat_bot,
        c.user,
        answers={"business_stage": "running", "province": "76"},
        stage=3,
        topics=["online_selling"],
        province_code="76",
    )
    answer = c.say("ยังไม่อยากลบข้อมูลครับ ขอดูก่อนว่าเก็บอะไรของผมไว้บ้าง")
    text = only_text(answer)
    headings = [v.split("{")[0].strip() for v in replies.texts["privacy.profile"]]
    assert any(h and h in text for h in headings), text
    assert not said(answer, replies, "privacy.confirm_delete")
    assert replies.text("privacy.button_yes") not in quick_labels(answer)
    assert assessments_of(chat_bot, c.user) == 1


def test_two_requests_answer_the_first_and_offer_the_second(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    guide_id, _ = QUESTIONS["business_registration"]
    guide = kb.guides.get(guide_id)
    assert guide is not None
    c = chat("multi-two")
    answer = c.say("จะไปจดทะเบียนพาณิชย์ต้องเตรียมเอกสารอะไรบ้างครับ แล้วก็ศูนย์ดิจิทัลชุมชนใกล้บ้านอยู่ตรงไหน")
    shows_guide(answer, kb, replies, guide)
    offer = also_label(replies, replies.text("menu.find_centre"))
    assert quick_labels(answer)[0] == offer
    pressed = c.press(answer, offer)
    assert said(pressed, replies, "centres.ask_where")


def test_the_offered_second_request_keeps_its_place(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    """Pressing the offered second request answers what typing it alone would."""
    second = "หาศูนย์ดิจิทัลใกล้บ้านที่ขอนแก่นหน่อย"
    typed = chat("multi-typed").say(second)
    assert card_names(typed), "typing the second request alone lists centres in Khon Kaen"
    c = chat("multi-place")
    answer = c.say(f"จดทะเบียนพาณิชย์ต้องใช้เอกสารอะไร แล้วก็{second}")
    offer = also_label(replies, replies.text("menu.find_centre"))
    assert quick_labels(answer)[0] == offer
    pressed = c.press(answer, offer)
    assert card_names(pressed) == card_names(typed), texts(pressed)


@pytest.mark.parametrize(
    ("guide_id", "question"),
    [
        ("ditp_membership", "สมัครสมาชิก DITP ต้องทำยังไงครับ"),
        ("otop_registration", "อยู่เชียงใหม่ อยากลงทะเบียนผู้ผลิต OTOP ใครลงได้บ้าง"),
    ],
    ids=["ditp_membership", "otop_registration"],
)
def test_one_question_with_a_how_or_who_ending_offers_no_second_request(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies, guide_id: str, question: str
) -> None:
    """ "... ต้องทำยังไงครับ" / "... ใครลงได้บ้าง" ends one question; it asks for nothing else."""
    guide = kb.guides.get(guide_id)
    assert guide is not None
    answer = chat(f"one-question-{guide_id}").say(question)
    shows_guide(answer, kb, replies, guide)
    labels = quick_labels(answer)
    assert not any(lb.startswith(also_prefix(replies)) for lb in labels), labels


# -- 6. "did you mean" with guides -----------------------------------------------------------


def test_did_you_mean_offers_guides_counts_them_and_keeps_the_best_guide(
    chat: Callable[[str], Chat], chat_bot: ServerThread, kb: Knowledge, replies: Replies
) -> None:
    parse = chat_bot.services.nlu.parse(UNSURE)
    assert parse.intent is None and parse.uncertain
    assert [c.intent for c in parse.candidates][:3] == [f"guide:{g}" for g in UNSURE_GUIDES]
    guides = [kb.guides.get(g) for g in UNSURE_GUIDES]
    shorts = [g.short for g in guides if g is not None]
    assert len(shorts) == 3

    c = chat("unsure-guide")
    answer = c.say(UNSURE)
    options = ", ".join(f"“{s}”" for s in shorts)
    assert says_exactly(answer, replies, "fallback.did_you_mean", options=options)
    assert quick_labels(answer) == [*shorts, replies.text("menu.help")]
    for guide_id in UNSURE_GUIDES:
        assert stats_of(chat_bot, guide_id)["offered"] == 1
        assert stats_of(chat_bot, guide_id)["shown"] == 0

    picked = guides[1]
    assert picked is not None
    pressed = c.press(answer, picked.short)
    shows_guide(pressed, kb, replies, picked)
    assert stats_of(chat_bot, picked.id) == {"shown": 1, "offered": 1, "helpful": 0, "unhelpful": 0}

    (row,) = unanswered(chat_bot)
    assert row.text == UNSURE
    assert row.best_guide == UNSURE_GUIDES[0]
    listing = run_bot_with(chat_bot.settings, "unanswered")
    assert listing.returncode == 0, listing.stderr
    (line,) = [ln for ln in listing.stdout.splitlines() if UNSURE in ln]
    assert UNSURE_GUIDES[0] in line
    assert c.user not in listing.stdout


# -- 7. guide buttons from old messages ------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("go", {"i": "guide:no_such_guide"}),
        ("guide_fb", {"id": "no_such_guide", "v": "up"}),
        ("guide_fb", {"id": "no_such_guide", "v": "down"}),
        ("guide_more", {"id": "no_such_guide"}),
        ("guide_contact", {"id": "no_such_guide", "p": "40"}),
    ],
)
def test_a_button_of_a_removed_guide_says_it_is_gone(
    chat: Callable[[str], Chat],
    chat_bot: ServerThread,
    replies: Replies,
    action: str,
    params: dict[str, str],
) -> None:
    answer = chat(f"gone-{action}-{params.get('v', '')}").postback(postback_data(action, **params))
    assert texts(answer) == [replies.text("guides.gone")]
    assert quick_labels(answer) == menu_labels(replies)
    assert guide_stats(chat_bot) == []  # nothing counted for a guide that is not there
