"""Detours inside flows: the global intents, another question, and coming back.

Every flow the handlers declare is reached as a person would reach it (typing or pressing),
then, at its first question:

* delete my data, talking to staff, help and cancel answer at once (never "not understood");
  help and staff keep the flow waiting behind a "↩️ ทำต่อจากเดิม" button, cancel ends it,
  and a "no" to the deletion brings the flow back;
* a guide question or another capability is offered ("ดู … เลยไหม หรือจะกลับไปที่ … ต่อ")
  with its button and the resume button; pressing the other thing answers it, the resume
  button then asks the interrupted question again (same text, same buttons), and answering
  it carries the flow on from where it stopped.

Then the assessment scene of the issue (question 3 interrupted three times, finished with
every earlier answer stored), and a typed answer read by its meaning.

Each script runs in both deployments; wording is read from the reply files, never copied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, select

from bot.content.menu import MAIN_MENU
from bot.kb.guides import Guide
from bot.kb.loader import Knowledge, load_knowledge, load_replies
from bot.line.messages import postback_data
from bot.storage.db import Assessment, Handoff
from tests.conversation import Chat, bubbles, joined, quick_labels, texts
from tests.helpers import ROOT, bot_database

Message = dict[str, Any]
Answer = list[Message]

REPLIES = load_replies(ROOT / "knowledge")
KB: Knowledge = load_knowledge(ROOT / "knowledge").knowledge  # type: ignore[assignment]

RESUME = REPLIES.text("help.button_resume")
MENU_LABELS = [REPLIES.text(f"menu.{i}") for i in MAIN_MENU]

#: The user's messages (a person's words, not the bot's).
DELETE = "ลบข้อมูลของฉัน"
STAFF = "ขอคุยกับเจ้าหน้าที่"
HELP = "ช่วยด้วย ใช้ยังไง"
MENU = "เมนู"
CANCEL = "ยกเลิก"
GUIDE_QUESTION = "จดทะเบียนพาณิชย์ต้องใช้เอกสารอะไร"
ACCOUNTING_COURSES = "อยากหาคอร์สบัญชี"

#: The guide that answers GUIDE_QUESTION (knowledge/guides/business_registration.yaml).
GUIDE_ID = "commercial_registration_documents"

#: Replies that mean "I did not understand that" (the fallback, or a step asking again).
MISSES = (
    "fallback.not_understood",
    "fallback.did_you_mean",
    "fallback.out_of_scope",
    "fallback.stale_button",
    "assessment.not_understood",
    "assessment.not_understood_again",
    "assessment.place_not_understood",
    "assessment.place_not_understood_again",
    "assessment.offer_buttons",
    "assessment.gave_up",
    "courses.ask_topic_again",
    "courses.give_up",
    "export.ask_market_again",
    "export.ask_sector_again",
    "export.give_up",
    "centres.where_not_understood",
    "centres.give_up",
    "subscribe.topics_not_understood",
    "subscribe.area_not_understood",
    "subscribe.give_up",
    "unsubscribe.topics_not_understood",
    "unsubscribe.gave_up",
    "privacy.confirm_again",
)


# -- reading answers -----------------------------------------------------------------------------


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[a-z_]+\}", template)
    return re.compile("(?s)" + "(.+?)".join(re.escape(p) for p in parts))


def said(answer: Answer, key: str, **params: Any) -> bool:
    """One of the answer's texts is reply ``key``: with ``params`` exactly, else with any
    values in its placeholders."""
    if params:
        wanted = {v.format_map(params) for v in REPLIES.texts[key]}
        return any(t in wanted for t in texts(answer))
    patterns = [_pattern(v) for v in REPLIES.texts[key]]
    return any(p.fullmatch(t) for t in texts(answer) for p in patterns)


def missed(answer: Answer) -> list[str]:
    """The "not understood" replies in an answer (empty: it was understood)."""
    return [key for key in MISSES if said(answer, key)]


def answered_at_once(answer: Answer) -> None:
    assert answer, "no answer at all"
    assert missed(answer) == [], f"taken as not understood: {texts(answer)}"


def offers_resume(answer: Answer) -> bool:
    return RESUME in quick_labels(answer)


def flow_name(step: str) -> str:
    """How the bot names the flow of ``step`` ("การทำแบบประเมินทักษะ")."""
    return REPLIES.text(f"help.flow_{step.split('.', 1)[0]}")


def resumed(c: Chat, answer: Answer, step: str, asked: Answer) -> Answer:
    """Press the resume button: the bot says so and asks the interrupted question again,
    the very message it asked before (text and buttons)."""
    back = c.press(answer, RESUME)
    assert said(back, "help.resumed", flow=flow_name(step)), texts(back)
    assert back[-1] == asked[-1], f"asked {texts(back)}, before {texts(asked)}"
    assert not offers_resume(back)  # nothing waits any more
    return back


def end_hand_off(c: Chat) -> None:
    """Staff end the hand-off (as ``bot handoff end`` does): the bot answers again."""
    with bot_database(c.server.settings) as engine, engine.begin() as conn:
        conn.execute(delete(Handoff).where(Handoff.line_user_id == c.user))


def stored_assessments(c: Chat) -> list[Any]:
    with bot_database(c.server.settings) as engine, engine.connect() as conn:
        query = select(Assessment).where(Assessment.line_user_id == c.user)
        return list(conn.execute(query.order_by(Assessment.id)).all())


# -- the knowledge behind the buttons ------------------------------------------------------------


def guide() -> Guide:
    found = KB.guides.get(GUIDE_ID)
    assert found is not None, f"the guide {GUIDE_ID} is in the knowledge"
    return found


def question(qid: str) -> str:
    a = KB.assessment
    return REPLIES.text(
        "assessment.question", number=a.number(qid), total=len(a.ids), question=a.question(qid).text
    )


def asks(answer: Answer, qid: str) -> bool:
    return question(qid) in texts(answer)


def option_label(qid: str, option: str) -> str:
    found = KB.assessment.question(qid).option(option)
    assert found is not None, f"{qid} has an option {option}"
    return found.label


def topic_label(topic: str) -> str:
    """A topic's button label in the course search."""
    key = f"courses.topic_label.{topic}"
    return REPLIES.text(key) if key in REPLIES else KB.topics[topic].label.th


def subscribe_topic(topic: str) -> str:
    return REPLIES.text("subscribe.topic_off", topic=KB.topics[topic].label.th)


#: Topics the subscription scripts choose (neither is accounting, which a detour asks for).
NOTICE_TOPICS = ("online_selling", "digital_marketing")


# -- the flows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """One flow's first question, and how a person gets there and answers it."""

    step: str
    #: Reach the question as a person would; the answer that asked it.
    reach: Callable[[Chat], Answer]
    #: Answer the question (``asked``: the message that asked it, with its buttons).
    answer: Callable[[Chat, Answer], Answer]
    #: The answer shows the flow went on from this question.
    went_on: Callable[[Answer], bool]
    #: A message asking another capability here, and that capability's intent.
    other: str
    other_intent: str


def _assessment(c: Chat) -> Answer:
    answer = c.say("อยากทำแบบประเมินครับ")
    assert asks(answer, "business_stage"), texts(answer)
    return answer


def _courses(c: Chat) -> Answer:
    answer = c.say("อยากหาคอร์สเรียน")
    assert said(answer, "courses.ask_topic"), texts(answer)
    return answer


def _export_market(c: Chat) -> Answer:
    answer = c.say("อยากส่งออกสินค้า")
    assert said(answer, "export.ask_market"), texts(answer)
    return answer


def _export_sector(c: Chat) -> Answer:
    answer = c.press(_export_market(c), KB.markets["CN"].name.th)
    assert said(answer, "export.ask_sector"), texts(answer)
    return answer


def _centres_where(c: Chat) -> Answer:
    answer = c.say("ศูนย์ดิจิทัลใกล้ฉัน")
    assert said(answer, "centres.ask_where"), texts(answer)
    return answer


def _centres_which(c: Chat) -> Answer:
    answer = c.say("ศูนย์ดิจิทัลจอมทอง")  # a district in Bangkok and one in Chiang Mai
    assert said(answer, "centres.which_place"), texts(answer)
    return answer


def _subscribe_topics(c: Chat) -> Answer:
    answer = c.press(c.say(MENU), REPLIES.text("menu.subscribe"))
    assert said(answer, "subscribe.ask_topics"), texts(answer)
    return answer


def _subscribe_area(c: Chat) -> Answer:
    answer = _subscribe_topics(c)
    for topic in NOTICE_TOPICS:
        answer = c.press(answer, subscribe_topic(topic))
    answer = c.press(answer, REPLIES.text("subscribe.button_done"))
    assert said(answer, "subscribe.ask_area"), texts(answer)
    return answer


def _subscribe_confirm(c: Chat) -> Answer:
    answer = c.press(_subscribe_area(c), REPLIES.text("subscribe.button_nationwide"))
    assert said(answer, "subscribe.confirm"), texts(answer)
    return answer


def _unsubscribe_some(c: Chat) -> Answer:
    saved = c.press(_subscribe_confirm(c), REPLIES.text("subscribe.button_confirm"))
    assert said(saved, "subscribe.saved"), texts(saved)
    answer = c.say("เลิกรับแจ้งเตือน")
    assert said(answer, "unsubscribe.ask"), texts(answer)
    answer = c.press(answer, REPLIES.text("unsubscribe.button_some"))
    assert said(answer, "unsubscribe.pick"), texts(answer)
    return answer


def _delete(c: Chat) -> Answer:
    answer = c.say(DELETE)
    assert said(answer, "privacy.confirm_delete"), texts(answer)
    return answer


def _press(label: str) -> Callable[[Chat, Answer], Answer]:
    return lambda c, asked: c.press(asked, label)


def _says(key: str) -> Callable[[Answer], bool]:
    return lambda answer: said(answer, key)


def _has_cards(answer: Answer) -> bool:
    return bool(bubbles(answer))


FLOWS = [
    Flow(
        "assessment.business_stage",
        _assessment,
        _press(option_label("business_stage", "new")),
        lambda answer: asks(answer, "sector"),
        ACCOUNTING_COURSES,
        "find_course",
    ),
    Flow(
        "courses.topic",
        _courses,
        _press(topic_label("online_selling")),
        _has_cards,
        "หาศูนย์ดิจิทัลใกล้บ้าน",
        "find_centre",
    ),
    Flow(
        "export.market",
        _export_market,
        _press(KB.markets["JP"].name.th),
        _says("export.ask_sector"),
        ACCOUNTING_COURSES,
        "find_course",
    ),
    Flow(
        "export.sector",
        _export_sector,
        _press(REPLIES.text("export.sector_label.food")),
        _has_cards,
        "ศูนย์ดิจิทัลชุมชนพิษณุโลก",
        "find_centre",
    ),
    Flow(
        "centres.where",
        _centres_where,
        lambda c, asked: c.say("ชะอำ"),
        _has_cards,
        ACCOUNTING_COURSES,
        "find_course",
    ),
    Flow(
        "centres.which_place",
        _centres_which,
        _press(KB.places.provinces["50"].name_th),
        _has_cards,
        ACCOUNTING_COURSES,
        "find_course",
    ),
    Flow(
        "subscribe.topics",
        _subscribe_topics,
        _press(subscribe_topic("online_selling")),
        _says("subscribe.chosen"),
        "ศูนย์ดิจิทัลใกล้ฉัน",
        "find_centre",
    ),
    Flow(
        "subscribe.area",
        _subscribe_area,
        _press(REPLIES.text("subscribe.button_nationwide")),
        _says("subscribe.confirm"),
        "อยากส่งออกสินค้า",
        "export_programme",
    ),
    Flow(
        "subscribe.confirm",
        _subscribe_confirm,
        _press(REPLIES.text("subscribe.button_confirm")),
        _says("subscribe.saved"),
        ACCOUNTING_COURSES,
        "find_course",
    ),
    Flow(
        "subscribe.stop_some",
        _unsubscribe_some,
        _press(
            REPLIES.text("unsubscribe.topic_button", topic=KB.topics["online_selling"].label.th)
        ),
        _says("unsubscribe.removed"),
        ACCOUNTING_COURSES,
        "find_course",
    ),
    Flow(
        "privacy.confirm_delete",
        _delete,
        _press(REPLIES.text("privacy.button_no")),
        _says("privacy.delete_cancelled"),
        ACCOUNTING_COURSES,
        "find_course",
    ),
]

EVERY_FLOW = [pytest.param(flow, id=flow.step) for flow in FLOWS]


def carries_on(c: Chat, flow: Flow, asked: Answer) -> None:
    """Answer the (asked again) question: the flow goes on from there."""
    answer = flow.answer(c, asked)
    answered_at_once(answer)
    assert flow.went_on(answer), f"{flow.step} did not go on: {texts(answer)}"


def finish_other(c: Chat, answer: Answer) -> Answer:
    """The other capability asked a question of its own (its flow): answer it."""
    if said(answer, "courses.ask_topic"):
        return c.press(answer, topic_label("accounting_finance"))
    if said(answer, "centres.ask_where"):
        return c.say("ชะอำ")
    if said(answer, "export.ask_market"):
        answer = c.press(answer, KB.markets["CN"].name.th)
    if said(answer, "export.ask_sector"):
        return c.press(answer, REPLIES.text("export.sector_label.food"))
    return answer


# -- (a) delete / staff / help / cancel answer at once in every flow -----------------------------


@pytest.mark.parametrize("flow", EVERY_FLOW)
def test_delete_my_data_inside_a_flow_asks_first_and_no_brings_the_flow_back(
    chat: Callable[[str], Chat], flow: Flow
) -> None:
    c = chat(f"delete-{flow.step}")
    asked = flow.reach(c)
    answer = c.say(DELETE)
    answered_at_once(answer)
    assert said(answer, "privacy.confirm_delete"), texts(answer)
    kept = c.press(answer, REPLIES.text("privacy.button_no"))
    assert said(kept, "privacy.delete_cancelled"), texts(kept)
    if flow.step.startswith("privacy."):
        assert not offers_resume(kept)  # the deletion was the flow: nothing else waits
        return
    assert offers_resume(kept), quick_labels(kept)
    carries_on(c, flow, resumed(c, kept, flow.step, asked))


@pytest.mark.parametrize("flow", EVERY_FLOW)
def test_staff_inside_a_flow_hands_off_and_the_flow_waits(
    chat: Callable[[str], Chat], flow: Flow
) -> None:
    c = chat(f"staff-{flow.step}")
    asked = flow.reach(c)
    answer = c.say(STAFF)
    answered_at_once(answer)
    assert said(answer, "staff.handed_off"), texts(answer)
    assert offers_resume(answer), quick_labels(answer)
    end_hand_off(c)
    carries_on(c, flow, resumed(c, answer, flow.step, asked))


@pytest.mark.parametrize("flow", EVERY_FLOW)
def test_help_inside_a_flow_shows_the_menu_and_the_way_back(
    chat: Callable[[str], Chat], flow: Flow
) -> None:
    c = chat(f"help-{flow.step}")
    asked = flow.reach(c)
    for words in (HELP, MENU):
        answer = c.say(words)
        answered_at_once(answer)
        assert texts(answer) == [REPLIES.text("help.menu")], words
        labels = quick_labels(answer)
        assert labels[: len(MENU_LABELS)] == MENU_LABELS and RESUME in labels, labels
        assert len(labels) <= 13
    carries_on(c, flow, resumed(c, answer, flow.step, asked))


@pytest.mark.parametrize("flow", EVERY_FLOW)
def test_cancel_inside_a_flow_ends_it(chat: Callable[[str], Chat], flow: Flow) -> None:
    c = chat(f"cancel-{flow.step}")
    flow.reach(c)
    helped = c.say(HELP)  # a resume button from before the cancel
    assert offers_resume(helped)
    answer = c.say(CANCEL)
    answered_at_once(answer)
    assert texts(answer) == [REPLIES.text("help.cancelled", what=flow_name(flow.step))]
    assert quick_labels(answer) == MENU_LABELS  # the menu, no way back
    # The flow is gone: nothing left to cancel, and the old resume button finds nothing.
    assert texts(c.say(CANCEL)) == [REPLIES.text("help.nothing_to_cancel")]
    assert said(c.press(helped, RESUME), "help.nothing_to_resume")


# -- (b) a guide question and another capability are offered; the flow comes back ----------------


@pytest.mark.parametrize("flow", EVERY_FLOW)
def test_a_guide_question_inside_a_flow_is_offered_and_the_flow_resumes(
    chat: Callable[[str], Chat], flow: Flow
) -> None:
    c = chat(f"guide-{flow.step}")
    asked = flow.reach(c)
    offer = c.say(GUIDE_QUESTION)
    answered_at_once(offer)
    wanted = guide()
    assert said(offer, "help.detour", topic=wanted.short, flow=flow_name(flow.step)), texts(offer)
    assert quick_labels(offer) == [wanted.short, RESUME]
    answer = c.press(offer, wanted.short)
    answered_at_once(answer)
    assert wanted.title in joined(answer), texts(answer)
    assert offers_resume(answer), quick_labels(answer)
    carries_on(c, flow, resumed(c, answer, flow.step, asked))


@pytest.mark.parametrize("flow", EVERY_FLOW)
def test_another_capability_inside_a_flow_is_offered_and_the_flow_resumes(
    chat: Callable[[str], Chat], flow: Flow
) -> None:
    c = chat(f"other-{flow.step}")
    asked = flow.reach(c)
    offer = c.say(flow.other)
    answered_at_once(offer)
    label = REPLIES.text(f"menu.{flow.other_intent}")
    assert said(offer, "help.detour", topic=label, flow=flow_name(flow.step)), texts(offer)
    assert quick_labels(offer) == [label, RESUME]
    answer = c.press(offer, label)
    answered_at_once(answer)
    assert asked[-1] not in answer  # the other thing answers, not the flow's question
    answer = finish_other(c, answer)
    answered_at_once(answer)
    assert offers_resume(answer), (texts(answer), quick_labels(answer))
    carries_on(c, flow, resumed(c, answer, flow.step, asked))


def test_the_offer_can_be_ignored_and_counts_no_miss(chat: Callable[[str], Chat]) -> None:
    c = chat("ignores-the-offer")
    asked = _assessment(c)
    offer = c.say(ACCOUNTING_COURSES)
    assert said(offer, "help.detour")
    # The question is still open, and the offer was not a miss: the first unclear answer
    # gets the first "not understood", not the second.
    answer = c.say("asdfgh")
    assert said(answer, "assessment.not_understood") and asks(answer, "business_stage")
    answer = c.press(asked, option_label("business_stage", "idea"))
    assert asks(answer, "sector")


# -- (c) the issue: question 3 of the assessment interrupted three times -------------------------


def test_assessment_question_3_survives_delete_staff_and_a_course_search(
    chat: Callable[[str], Chat],
) -> None:
    c = chat("issue-q3")
    answer = _assessment(c)
    answer = c.press(answer, option_label("business_stage", "running"))
    answer = c.press(answer, option_label("sector", "food"))
    assert asks(answer, "sales_channels")
    q3 = answer
    step = "assessment.sales_channels"

    # "ลบข้อมูลของฉัน": asked first; "no" keeps everything and the assessment waits.
    answer = c.say(DELETE)
    answered_at_once(answer)
    assert said(answer, "privacy.confirm_delete")
    answer = c.press(answer, REPLIES.text("privacy.button_no"))
    assert said(answer, "privacy.delete_cancelled") and offers_resume(answer)
    resumed(c, answer, step, q3)

    # "ขอคุยกับเจ้าหน้าที่": handed to staff at once; after staff are done, back to question 3.
    answer = c.say(STAFF)
    answered_at_once(answer)
    assert said(answer, "staff.handed_off") and offers_resume(answer)
    end_hand_off(c)
    resumed(c, answer, step, q3)

    # "อยากหาคอร์สบัญชี": offered with the way back; the courses are shown, then question 3.
    offer = c.say(ACCOUNTING_COURSES)
    answered_at_once(offer)
    courses = REPLIES.text("menu.find_course")
    assert said(offer, "help.detour", topic=courses, flow=flow_name(step))
    assert quick_labels(offer) == [courses, RESUME]
    answer = finish_other(c, c.press(offer, courses))
    assert bubbles(answer) and offers_resume(answer), texts(answer)
    again = resumed(c, answer, step, q3)

    # Question 3 answered: on to question 4, and the assessment finishes with all seven.
    answer = c.press(again, option_label("sales_channels", "social"))
    answer = c.press(answer, REPLIES.text("assessment.button_done"))
    assert asks(answer, "digital_skill"), texts(answer)
    answer = c.press(answer, option_label("digital_skill", "basic"))
    answer = c.press(answer, option_label("goal", "money"))
    assert asks(answer, "province")
    answer = c.say("เชียงใหม่")
    assert asks(answer, "notify")
    answer = c.press(answer, option_label("notify", "no"))
    assert said(answer, "assessment.result"), texts(answer)

    [saved] = stored_assessments(c)
    assert saved.answers == {
        "business_stage": "running",
        "sector": "food",
        "sales_channels": ["social"],
        "digital_skill": "basic",
        "goal": "money",
        "province": "50",
        "notify": "no",
    }


def test_a_guide_question_at_every_assessment_question_is_offered_not_taken_as_the_answer(
    chat: Callable[[str], Chat],
) -> None:
    c = chat("guide-every-question")
    asked = _assessment(c)
    wanted = guide()
    flow = flow_name("assessment.business_stage")
    picks: dict[str, Any] = {}
    for qid in KB.assessment.ids:
        step = f"assessment.{qid}"
        assert asks(asked, qid), texts(asked)
        offer = c.say(GUIDE_QUESTION)
        answered_at_once(offer)
        assert said(offer, "help.detour", topic=wanted.short, flow=flow), (qid, texts(offer))
        assert quick_labels(offer) == [wanted.short, RESUME], qid
        again = resumed(c, offer, step, asked)
        q = KB.assessment.question(qid)
        if q.kind == "place":
            asked = c.say("เชียงใหม่")
            picks[qid] = "50"
        elif q.kind == "multi":
            first = next(o for o in q.options if not o.exclusive)
            answer = c.press(again, first.label)
            asked = c.press(answer, REPLIES.text("assessment.button_done"))
            picks[qid] = [first.id]
        else:
            option = q.options[-1] if qid == "notify" else q.options[0]
            asked = c.press(again, option.label)
            picks[qid] = option.id
    assert said(asked, "assessment.result"), texts(asked)
    [saved] = stored_assessments(c)
    assert saved.answers == picks


def test_course_button_of_the_offer_answers_what_was_asked(chat: Callable[[str], Chat]) -> None:
    """Typed "อยากหาคอร์สบัญชี" at question 3, then the offer's course button: the courses
    on accounting the person asked for (not "which topic?" again)."""
    c = chat("issue-q3-courses")
    c.postback(postback_data("go", i="start_assessment"))
    c.say("2")
    answer = c.say("1")
    assert asks(answer, "sales_channels")
    offer = c.say(ACCOUNTING_COURSES)
    answer = c.press(offer, REPLIES.text("menu.find_course"))
    accounting = KB.topics["accounting_finance"].label.th
    count = len(bubbles(answer))
    assert count and said(answer, "courses.found", topic=accounting, count=count), texts(answer)
    assert offers_resume(answer)


# -- (d) a typed answer read by its meaning ------------------------------------------------------


def test_a_typed_digital_skill_is_read_by_its_meaning(chat: Callable[[str], Chat]) -> None:
    skill = KB.assessment.question("digital_skill")
    fluent = next((o for o in skill.options if o.label == "โพสต์ขายของได้คล่อง"), None)
    assert fluent is not None, "the digital-skills question has the option the issue names"
    c = chat("by-meaning")
    _assessment(c)
    for typed, next_question in [
        ("เริ่มมาไม่ถึงปี", "sector"),
        ("ขายเสื้อผ้า", "sales_channels"),
        ("ขายในเฟซ", "digital_skill"),
    ]:
        assert asks(c.say(typed), next_question), typed
    answer = c.say("พอใช้ได้ โพสต์ขายเป็น")
    answered_at_once(answer)
    assert asks(answer, "goal"), texts(answer)
    for typed in ("อยากขายออนไลน์", "ข้าม"):
        answer = c.say(typed)
    answer = c.say("ไม่ต้องครับ")
    assert said(answer, "assessment.result"), texts(answer)
    [saved] = stored_assessments(c)
    assert saved.answers["digital_skill"] == fluent.id
