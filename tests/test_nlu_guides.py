"""The engine with guides: per-answer floors, multi-part messages, and the clause markers.

These run the shipped engine (intents and guides learned together) on messages written
here, not taken from any training file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.kb.loader import Knowledge
from bot.nlu import IntentEngine
from bot.nlu.calibration import DEFAULT_FLOOR, FLOOR_MAX, FLOOR_MIN, class_floors
from bot.nlu.multipart import load_markers

# -- guides learned with the intents ---------------------------------------------------------


def test_every_guide_is_a_class_of_the_engine(engine: IntentEngine, knowledge: Knowledge) -> None:
    labels = {g.label for g in knowledge.guides.guides.values()}
    assert labels <= engine.intents


def test_a_course_request_and_a_how_to_question_are_told_apart(engine: IntentEngine) -> None:
    assert engine.parse("มีคอร์สสอนเปิดร้าน Shopee ไหมครับ").best == "find_course"
    assert engine.parse("เปิดร้านใน Shopee ทำยังไงคะ").best == "guide:shopee_open_shop"


def test_a_programme_request_and_a_first_steps_question_are_told_apart(
    engine: IntentEngine,
) -> None:
    assert engine.parse("อยากส่งสินค้าไปขายที่ญี่ปุ่น มีโครงการช่วยไหม").best == "export_programme"
    assert engine.parse("อยากส่งสินค้าไปขายที่ญี่ปุ่นต้องทำยังไง").best == "guide:export_first_steps"


def test_parse_reports_the_guide_and_its_score(engine: IntentEngine) -> None:
    parse = engine.parse("จดเครื่องหมายการค้าต้องเสียค่าธรรมเนียมเท่าไหร่")
    shown = parse.to_dict()
    assert shown["guide"] == "trademark_fee" and parse.intent == "guide:trademark_fee"
    assert shown["confidence"] >= engine.floor("guide:trademark_fee")


# -- per-answer floors -------------------------------------------------------------------------


def test_each_answer_has_its_own_floor_within_the_range(engine: IntentEngine) -> None:
    floors = engine.floors
    assert set(floors) == engine.intents
    assert all(FLOOR_MIN - 1e-6 <= f <= FLOOR_MAX + 1e-6 for f in floors.values())
    assert len({round(f, 3) for f in floors.values()}) > 10  # not one global number


def test_a_class_the_model_confuses_gets_a_higher_floor_than_a_clean_one() -> None:
    rng = np.random.default_rng(0)
    n = 40
    target = np.array([0] * n + [1] * n + [2] * n)
    probs = np.full((3 * n, 3), 0.05)
    # class 0: always right and confident; class 1: half of its "wins" belong to class 2
    probs[:n, 0] = rng.uniform(0.5, 0.9, n)
    probs[n : 2 * n, 1] = rng.uniform(0.4, 0.9, n)
    probs[2 * n :, 1] = rng.uniform(0.3, 0.6, n)
    probs[2 * n :, 2] = probs[2 * n :, 1] - 0.05
    floors = class_floors(probs, target)
    assert floors[1] > floors[0]
    assert floors[2] == pytest.approx(DEFAULT_FLOOR)  # never predicted: the default


# -- multi-part messages -------------------------------------------------------------------------


def test_a_greeting_with_a_request_is_the_request(engine: IntentEngine) -> None:
    assert engine.parse("สวัสดีค่ะ สนใจคอร์สเย็บผ้าค่ะ อยู่ลำปาง").intent == "find_course"
    assert engine.parse("สวัสดีครับ อยากหาศูนย์ดิจิทัลใกล้บ้าน").intent == "find_centre"
    # a greeting to someone is still a greeting
    assert engine.parse("สวัสดีค่ะพี่แอดมิน").intent == "greet"


def test_a_negated_need_is_never_the_answer(engine: IntentEngine) -> None:
    parse = engine.parse("ไม่ได้จะส่งออกนะ อยากได้คอร์สทำการตลาดออนไลน์ในประเทศ")
    assert parse.intent == "find_course" and parse.excluded == "export_programme"
    parse = engine.parse("ยังไม่อยากลบข้อมูลครับ ขอดูก่อนว่าเก็บอะไรของผมไว้บ้าง")
    assert parse.intent == "my_profile" and parse.excluded == "delete_my_data"
    alone = engine.parse("ไม่ต้องลบข้อมูลนะ")
    assert alone.intent != "delete_my_data"


def test_negation_shaped_intents_keep_their_meaning(engine: IntentEngine) -> None:
    assert engine.parse("ไม่เอาแล้ว").intent == "cancel"
    assert engine.parse("ไม่รับแจ้งเตือนแล้วครับ ขอบคุณ").intent == "unsubscribe"
    assert "unsubscribe" in engine.negative and "cancel" in engine.negative


def test_two_requests_answer_one_and_offer_the_other_with_its_words(engine: IntentEngine) -> None:
    parse = engine.parse("หาคอร์สทำบัญชีให้หน่อย แล้วก็หาศูนย์ดิจิทัลใกล้บ้านด้วย")
    assert {parse.intent, parse.also} == {"find_course", "find_centre"}
    offered = engine.parse(parse.also_text or "")
    assert offered.intent == parse.also


def test_a_lead_in_is_not_a_second_request(engine: IntentEngine) -> None:
    for text in ("อยากทราบว่า จดทะเบียนพาณิชย์ต้องใช้เอกสารอะไรบ้าง", "สมัครสมาชิก DITP ต้องทำยังไงครับ"):
        assert engine.parse(text).also is None, text


def test_a_one_part_message_has_no_second_request(engine: IntentEngine) -> None:
    parse = engine.parse("อยากเรียนทำเพจขายของออนไลน์ครับ")
    assert parse.also is None and parse.excluded is None


def test_clause_marker_mistakes_are_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "clauses.csv"
    path.write_text("word,kind,note\nไม่ได้,negation,\n,joiner,\nครับ,particle,\n", "utf-8")
    markers, problems = load_markers(path)
    assert [(p.line, p.field) for p in problems] == [(3, "word"), (4, "kind")]
    assert markers.raw["negation"] == ("ไม่ได้",)
