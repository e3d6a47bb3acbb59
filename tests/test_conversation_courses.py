"""Finding a course, as a user does it in LINE: through the signed webhook to the fake
LINE API, which rejects any reply LINE would reject (the ``fake_line`` fixture fails the
test on any such request). Texts come from the reply files, never hard-coded here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from bot.content.replies import Replies
from bot.kb.loader import Knowledge
from bot.kb.queries import find_courses, online_courses
from tests.conversation import (
    Chat,
    bubbles,
    card_names,
    find_action,
    hit_names,
    quick_labels,
    said,
    save_assessment,
    texts,
    variants,
)
from tests.helpers import ServerThread


def test_topic_and_province_in_one_message(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    answer = chat("crs-one").say("อยากเรียนขายของออนไลน์ที่เชียงใหม่")
    expected = find_courses(kb, ["online_selling"], province="50")
    assert expected, "the shipped knowledge has online-selling courses for Chiang Mai"
    assert said(
        answer,
        replies,
        "courses.found_in_province",
        topic=kb.topics["online_selling"].label.th,
        province="เชียงใหม่",
        count=len(expected),
    )
    assert card_names(answer) == hit_names(expected)
    # Sample entries say so on the card, with the agency's contact.
    for bubble in bubbles(answer):
        assert said([bubble], replies, "cards.note_sample")
    assert any(
        v in quick_labels(answer)[0] for v in variants(replies, "courses.button_other_topic")
    )


def test_missing_topic_is_asked_with_buttons_then_answered_by_pressing(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    c = chat("crs-ask")
    answer = c.say("หาคอร์สเรียน")
    assert said(answer, replies, "courses.ask_topic")
    labels = quick_labels(answer)
    assert replies.text("courses.topic_label.accounting_finance") in labels
    assert len(labels) == len(kb.topics)
    answer = c.press(answer, replies.text("courses.topic_label.accounting_finance"))
    expected = find_courses(kb, ["accounting_finance"])
    assert card_names(answer) == hit_names(expected)


def test_missing_topic_answered_by_typing(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    c = chat("crs-type")
    answer = c.say("มีคอร์สอะไรบ้าง")
    assert said(answer, replies, "courses.ask_topic")
    answer = c.say("ทักษะดิจิทัล")
    expected = find_courses(kb, ["digital_skills"])
    assert expected and card_names(answer) == hit_names(expected)
    # The step is closed: the same words again are a new question, not a step answer.
    assert bubbles(c.say("หาคอร์สเรียน")) == []


def test_not_understood_is_asked_again_twice_then_buttons_and_a_way_out(
    chat: Callable[[str], Chat], replies: Replies
) -> None:
    c = chat("crs-miss")
    c.say("หาคอร์สเรียน")
    for _ in range(2):
        answer = c.say("ฟหกด ฟหกด")
        assert said(answer, replies, "courses.ask_topic_again")
    answer = c.say("ฟหกด ฟหกด")
    assert said(answer, replies, "courses.give_up")
    assert replies.text("menu.help") in quick_labels(answer)
    answer = c.press(answer, replies.text("courses.topic_label.online_selling"))
    assert bubbles(answer)


def test_nothing_fits_offers_alternatives_and_pressing_one_works(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    c = chat("crs-none")
    answer = c.say("อยากเรียนโลจิสติกส์ที่ลำปาง")
    assert not find_courses(kb, ["logistics"], province="52")
    assert said(
        answer,
        replies,
        "courses.none",
        topic=kb.topics["logistics"].label.th,
        province="ลำปาง",
    )
    assert said(answer, replies, "courses.alternatives")
    assert bubbles(answer) == []
    labels = quick_labels(answer)
    assert replies.text("courses.button_online") in labels
    related = replies.text("courses.topic_label.online_selling")
    assert related in labels  # a related topic with courses near Lampang
    # Pressing "online courses" lists what anyone can take from home.
    online = c.press(answer, replies.text("courses.button_online"))
    assert card_names(online) == hit_names(online_courses(kb))
    # Pressing the related topic searches it for the same province.
    answer = c.press(answer, related)
    expected = find_courses(kb, ["online_selling"], province="52")
    assert card_names(answer) == hit_names(expected)


def test_saved_assessment_gives_province_and_topic_order(
    chat: Callable[[str], Chat], chat_bot: ServerThread, kb: Knowledge, replies: Replies
) -> None:
    c = chat("crs-assessed")
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    save_assessment(
        chat_bot,
        c.user,
        answers={},
        stage=1,
        topics=["digital_skills"],
        province_code="20",
        created_at=old,
    )
    save_assessment(
        chat_bot,
        c.user,
        answers={"business_stage": "new", "province": "50"},
        stage=2,
        topics=["branding_packaging", "online_selling"],
        province_code="50",
    )
    answer = c.say("หาคอร์สเรียน")
    assert said(answer, replies, "courses.place_from_assessment", province="เชียงใหม่")
    labels = quick_labels(answer)
    assert labels[:2] == [
        replies.text("courses.topic_label.branding_packaging"),
        replies.text("courses.topic_label.online_selling"),
    ]
    answer = c.press(answer, labels[1])
    expected = find_courses(kb, ["online_selling"], stage=2, province="50")
    assert card_names(answer) == hit_names(expected)


def test_details_button_answers_with_everything_and_the_sample_note(
    chat: Callable[[str], Chat], kb: Knowledge, replies: Replies
) -> None:
    c = chat("crs-details")
    answer = c.say("อยากเรียนทำบัญชีรายรับรายจ่าย")
    first = bubbles(answer)[0]
    name = first["body"]["contents"][0]["text"]
    course = next(x for x in kb.courses if x.name.th == name)
    details = c.press([first], replies.text("cards.button_details"))
    assert len(details) == 1 and details[0]["type"] == "text"
    text = texts(details)[0]
    assert course.summary.th in text and kb.agencies[course.agency].name.th in text
    assert said(details, replies, "cards.note_sample")


def test_an_old_details_button_for_a_removed_entry(
    chat: Callable[[str], Chat], replies: Replies
) -> None:
    answer = chat("crs-gone").postback("action=card&id=course-removed-long-ago")
    assert said(answer, replies, "courses.details_gone")


def test_back_leaves_the_topic_question(chat: Callable[[str], Chat], replies: Replies) -> None:
    c = chat("crs-back")
    c.say("หาคอร์สเรียน")
    answer = c.say("ย้อนกลับ")
    assert said(answer, replies, "courses.back")
    assert find_action(answer, replies.text("menu.find_course"))
