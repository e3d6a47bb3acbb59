"""The skills assessment without LINE: its file, reading typed answers, scoring, ranking.

Broken edits of ``knowledge/assessment.yaml`` and ``intents/answers/`` are reported with
file, line and field, and a running bot keeps its previous snapshot.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from bot.assessment.scoring import (
    AnswerMatcher,
    Match,
    PlaceAnswer,
    Result,
    match_place,
    rank,
    score,
    similarity,
)
from bot.kb.assessment_schema import DONE, QUESTION_IDS, SKIP, AssessmentDef
from bot.kb.loader import Knowledge, load_knowledge
from bot.kb.queries import BusinessProfile, find_courses, find_programmes, nearest_centres
from bot.kb.store import KnowledgeStore
from bot.line.messages import LABEL_MAX, QUICK_REPLY_MAX, line_length
from bot.nlu import IntentEngine
from tests.helpers import ROOT

ANSWERS = Path("answers") / "assessment.yaml"


@pytest.fixture(scope="module")
def assessment(knowledge: Knowledge) -> AssessmentDef:
    return knowledge.assessment


@pytest.fixture(scope="module")
def matcher(assessment: AssessmentDef, engine: IntentEngine) -> AnswerMatcher:
    return AnswerMatcher(assessment, lambda text: engine.words(text)[1])


def read(
    matcher: AnswerMatcher, engine: IntentEngine, question: str, text: str
) -> tuple[tuple[str, ...], str | None]:
    """What the bot reads from a typed answer, with the intent engine's entities."""
    parse = engine.parse(text)
    found = matcher.match(
        matcher.assessment.question(question), text, [(e.type, e.value) for e in parse.entities]
    )
    return found.options, found.special


# -- the shipped file ------------------------------------------------------------------------


def test_shipped_assessment_has_the_contracted_questions_and_fits_line(
    knowledge: Knowledge, assessment: AssessmentDef
) -> None:
    assert assessment.ids == QUESTION_IDS
    assert 5 <= len(assessment.questions) <= 8
    assert {o.id for o in assessment.question("business_stage").options} == {
        "idea",
        "new",
        "running",
        "exporting",
    }
    assert {o.id for o in assessment.question("notify").options} == {"yes", "no"}
    assert {o.id for o in assessment.question("sector").options} <= set(knowledge.sectors)
    assert assessment.question("province").kind == "place"
    for q in assessment.questions:
        assert len(q.options) + 3 <= QUICK_REPLY_MAX  # room for back, done and exit
        for option in q.options:
            assert line_length(option.label) <= LABEL_MAX, option.label
            assert set(option.needs) | set(option.strong) <= set(knowledge.topics)
    assert [s.stage for s in assessment.stages] == [1, 2, 3, 4, 5]
    assert knowledge.counts["assessment_questions"] == 7


def test_answer_phrases_are_loaded_for_every_question_with_options(
    assessment: AssessmentDef,
) -> None:
    phrases = assessment.phrases.options
    for q in assessment.questions:
        if q.kind == "place":
            assert phrases[q.id][SKIP]
            continue
        for option in q.options:
            assert phrases[q.id].get(option.id), f"{q.id}.{option.id} has no phrases"
    assert phrases["sales_channels"][DONE]
    assert "ครับ" in assessment.phrases.ignore and "ไม่" in assessment.phrases.negations


# -- broken files ----------------------------------------------------------------------------


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Private copies of the knowledge and intents folders to break."""
    kb = tmp_path / "knowledge"
    intents = tmp_path / "intents"
    shutil.copytree(ROOT / "knowledge", kb)
    shutil.copytree(ROOT / "intents", intents)
    return kb, intents


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the first ``old``; the 1-based line it was on."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return line


def _problems(kb: Path, intents: Path) -> list[str]:
    result = load_knowledge(kb, also=(intents,))
    assert result.knowledge is None, "expected the folder to be refused"
    return [str(p) for p in result.problems]


def test_too_long_label_names_file_line_and_field(folders: tuple[Path, Path]) -> None:
    kb, intents = folders
    path = kb / "assessment.yaml"
    line = _edit(path, 'label: "เฟซบุ๊ก/ไลน์"', 'label: "เฟซบุ๊ก ไลน์ อินสตาแกรม ติ๊กต็อก"')
    assert any(
        p.startswith(f"{path}:{line}: sales_channels.social.label: ") and "at most 20" in p
        for p in _problems(kb, intents)
    )


def test_unknown_topic_sector_and_bad_stage_range(folders: tuple[Path, Path]) -> None:
    kb, intents = folders
    path = kb / "assessment.yaml"
    range_line = _edit(
        path, "        min_stage: 4\n", "        min_stage: 4\n        max_stage: 2\n"
    )
    topic_line = _edit(
        path,
        "needs: [business_start, digital_skills, online_selling]",
        "needs: [business_start, digital_skill, online_selling]",
    )
    sector_line = _edit(path, "      - id: agriculture\n", "      - id: farming\n")
    problems = _problems(kb, intents)
    assert (
        f"{path}:{topic_line}: business_stage.idea.needs[1]: unknown topic 'digital_skill'; "
        "use one of the ids in topics.yaml"
    ) in problems
    assert any(
        p.startswith(f"{path}:{sector_line}: sector.farming.id: 'farming' is not a sector id")
        for p in problems
    )
    assert any(
        p.startswith(f"{path}:{range_line - 3}: business_stage.exporting: ")
        and "min_stage is larger than max_stage" in p
        for p in problems
    )


def test_missing_question_and_renamed_fixed_option(folders: tuple[Path, Path]) -> None:
    kb, intents = folders
    path = kb / "assessment.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  - id: notify")
    path.write_text(text[:start], encoding="utf-8")
    line = _edit(path, "      - id: exporting\n", "      - id: export\n")
    problems = _problems(kb, intents)
    assert any(p.endswith("questions: 'notify' is missing") for p in problems)
    assert any(
        p.startswith(f"{path}:")
        and "business_stage.options: the options of 'business_stage' "
        "must have exactly the ids: exporting, idea, new, running"
        in p
        for p in problems
    ), problems
    assert line > 1


def test_too_many_options_for_line_quick_replies(folders: tuple[Path, Path]) -> None:
    kb, intents = folders
    path = kb / "assessment.yaml"
    extra = "".join(f'      - id: extra{i}\n        label: "อื่น {i}"\n' for i in range(4))
    line = _edit(path, "      - id: skills\n", extra + "      - id: skills\n")
    goal_line = path.read_text(encoding="utf-8").splitlines().index("  - id: goal") + 1
    assert any(
        p.startswith(f"{path}:{goal_line}: goal: 12 options: at most 11 fit")
        for p in _problems(kb, intents)
    )
    assert line > goal_line


def test_stage_ladder_must_rise(folders: tuple[Path, Path]) -> None:
    kb, intents = folders
    path = kb / "assessment.yaml"
    line = _edit(path, "    min_points: 6\n", "    min_points: 2\n")
    assert (
        f"{path}:{line}: stages[2].min_points: stage 3 needs more points than stage 2 (3)"
        in _problems(kb, intents)
    )


def test_answer_phrase_for_an_unknown_option_or_under_two_options(
    folders: tuple[Path, Path],
) -> None:
    kb, intents = folders
    path = intents / ANSWERS
    unknown = _edit(path, "    exporting:\n", "    exported:\n")
    twice = _edit(path, "      - ไลน์กลุ่ม\n", "      - ไลน์กลุ่ม\n      - หน้าร้าน\n") + 1
    problems = _problems(kb, intents)
    assert any(
        p.startswith(f"{path}:{unknown}: answers.business_stage.exported: unknown option")
        for p in problems
    )
    assert any(
        p.startswith(f"{path}:{twice}: answers.sales_channels.social: 'หน้าร้าน' is also an answer")
        for p in problems
    ), problems


def test_yaml_syntax_error_in_the_assessment(folders: tuple[Path, Path]) -> None:
    kb, intents = folders
    path = kb / "assessment.yaml"
    line = _edit(path, "  show_topics: 3\n", "  show_topics: [3\n")
    assert any(
        p.startswith(f"{path}:") and "YAML syntax error" in p for p in _problems(kb, intents)
    )
    assert line > 1


def test_a_broken_assessment_keeps_the_previous_snapshot(folders: tuple[Path, Path]) -> None:
    kb, intents = folders
    store = KnowledgeStore(kb, also=(intents,))
    before = store.load_initial()
    _edit(kb / "assessment.yaml", "    weight: 3\n", "    weight: lots\n")
    outcome = asyncio.run(store.reload())
    assert not outcome.ok
    assert any("goal.weight" in str(p) for p in outcome.problems)
    assert store.current is before  # users keep the last good questions
    shutil.copy(ROOT / "knowledge" / "assessment.yaml", kb / "assessment.yaml")
    _edit(kb / "assessment.yaml", 'label: "รับแจ้งเตือน"', 'label: "รับข่าวคอร์สใหม่"')
    assert asyncio.run(store.reload()).ok
    notify = store.current.assessment.question("notify")
    assert notify.options[0].label == "รับข่าวคอร์สใหม่"


# -- reading typed answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        ("business_stage", "ยังเป็นแค่ไอเดีย", ("idea",)),
        ("business_stage", "2", ("new",)),
        ("business_stage", "๓", ("running",)),
        ("business_stage", "ข้อ 4 ครับ", ("exporting",)),
        ("business_stage", "เพิ่งเปิดร้านได้สองเดือน", ("new",)),
        ("business_stage", "ทำมา 5 ปีแล้วค่ะ", ("running",)),
        ("business_stage", "ยังไม่ได้เริ่มเลย", ("idea",)),
        ("business_stage", "ส่งออกอยู่แล้ว", ("exporting",)),
        ("sector", "ขายผ้าทอ", ("handicraft",)),
        ("sector", "ทำร้านกาแฟ", ("restaurant",)),
        ("sector", "ทุเรียน", ("agriculture",)),
        ("sector", "อื่นๆ", ("all",)),
        ("sales_channels", "ขายในเฟซบุ๊กอยู่แล้ว", ("social",)),
        ("sales_channels", "ขาย ใน เฟซบุ๊ก อยู่ แล้ว ครับ 😊", ("social",)),
        ("sales_channels", "ขายในเฟสบุค", ("social",)),
        ("sales_channels", "ยังไม่เคยขายออนไลน์", ("none",)),
        ("sales_channels", "ยังไม่ได้ขายเลยค่ะ", ("none",)),
        ("sales_channels", "ไม่ได้ขายในเฟซ", ("none",)),
        ("sales_channels", "ขายหน้าร้านกับเฟซบุ๊ก", ("shopfront", "social")),
        ("sales_channels", "ขายผ่านไลน์กับติ๊กต็อก", ("social", "marketplace")),
        ("sales_channels", "ขายหน้าร้าน แต่ยังไม่ขายออนไลน์", ("shopfront",)),
        ("sales_channels", "shopee lazada", ("marketplace",)),
        ("sales_channels", "2, 3", ("shopfront", "social")),
        ("sales_channels", "1 3", ("social",)),
        ("digital_skill", "ใช้ไม่ค่อยเป็น", ("none",)),
        ("digital_skill", "ใช้ไลน์ได้", ("basic",)),
        ("digital_skill", "เก่งมากกกก", ("expert",)),
        ("goal", "อยากขายออนไลน์", ("sell_online",)),
        ("goal", "อยากส่งออกไปจีน", ("export",)),
        ("goal", "ทำบัญชีไม่เป็น", ("money",)),
        ("notify", "รับครับ", ("yes",)),
        ("notify", "ไม่ต้องครับ", ("no",)),
        ("notify", "ไม่เอา", ("no",)),
        ("notify", "ok", ("yes",)),
    ],
)
def test_typed_answers_are_read(
    matcher: AnswerMatcher,
    engine: IntentEngine,
    question: str,
    text: str,
    expected: tuple[str, ...],
) -> None:
    assert read(matcher, engine, question, text) == (expected, None)


@pytest.mark.parametrize(
    ("question", "text"),
    [
        ("business_stage", "asdfgh"),
        ("business_stage", "9"),
        ("business_stage", "1 2"),
        ("sector", "🙂🙂"),
        ("digital_skill", "วันนี้ฝนตก"),
        ("notify", "ฝนตกหนัก"),
    ],
)
def test_nonsense_and_wrong_numbers_are_not_answers(
    matcher: AnswerMatcher, engine: IntentEngine, question: str, text: str
) -> None:
    assert read(matcher, engine, question, text) == ((), None)


def test_that_is_all_and_skip(matcher: AnswerMatcher, engine: IntentEngine) -> None:
    assert read(matcher, engine, "sales_channels", "แค่นี้ครับ") == ((), DONE)
    assert read(matcher, engine, "province", "ข้ามไปเลยครับ") == ((), SKIP)
    assert read(matcher, engine, "province", "อยู่โคราช") == ((), None)


def test_a_negated_phrase_never_reads_as_the_positive_one(matcher: AnswerMatcher) -> None:
    """The trap in the issue: "ยังไม่เคยขายออนไลน์" contains "ขายออนไลน์"."""
    q = matcher.assessment.question("sales_channels")
    scores = matcher.scores(q, "ยังไม่เคยขายออนไลน์")
    assert scores["none"] == 100
    assert all(s < 75 for o, s in scores.items() if o != "none")
    plain = matcher.prepare("ขายออนไลน์")
    negated = matcher.prepare("ยังไม่เคยขายออนไลน์")
    assert negated.negated and not plain.negated
    # A phrase inside a word does not count ("ไลน์" is inside "ออนไลน์", not the LINE app).
    assert similarity(matcher.prepare("ขายออนไลน์"), matcher.prepare("ไลน์")) < 75


def test_match_is_false_when_nothing_was_read() -> None:
    assert not Match()
    assert Match(("idea",))
    assert Match(special=DONE)


def test_places_typed_in_a_sentence(knowledge: Knowledge, engine: IntentEngine) -> None:
    def place(text: str) -> PlaceAnswer:
        parse = engine.parse(text)
        entities = [
            (e.value, e.candidates)
            for e in parse.entities
            if e.type in ("province", "district", "subdistrict")
        ]
        return match_place(text, entities, knowledge.places)

    assert place("อยู่โคราช").province == "30"
    assert place("เชียงใหม่ค่ะ").province == "50"
    assert place("กทม").province == "10"
    assert place("ชะอำ").province == "76"  # a district gives its province
    shared = place("ปากน้ำ")
    assert shared.province is None and {"11", "86"} <= set(shared.choices)
    assert place("asdfgh") == PlaceAnswer()


# -- scoring ---------------------------------------------------------------------------------


def _stages(knowledge: Knowledge) -> dict[str, int | None]:
    return {t: topic.stage for t, topic in knowledge.topics.items()}


def test_a_beginner_is_stage_1_and_needs_the_basics(
    knowledge: Knowledge, assessment: AssessmentDef
) -> None:
    answers = {
        "business_stage": "idea",
        "sector": "handicraft",
        "sales_channels": ["none"],
        "digital_skill": "none",
        "goal": "sell_online",
        "province": "30",
        "notify": "no",
    }
    result = score(assessment, answers, _stages(knowledge))
    assert result.stage == 1 and result.points == 0
    assert result.topics[0] == "online_selling"  # the goal weighs most
    assert "digital_skills" in result.topics[:3]
    assert result.suggest_centre and not result.export_ready
    assert result.strengths == ()


def test_an_exporter_is_ready_for_programmes(
    knowledge: Knowledge, assessment: AssessmentDef
) -> None:
    answers = {
        "business_stage": "exporting",
        "sector": "food",
        "sales_channels": ["abroad", "marketplace"],
        "digital_skill": "good",
        "goal": "export",
        "province": None,
        "notify": "yes",
    }
    result = score(assessment, answers, _stages(knowledge))
    assert result.stage == 5 and result.points == 7 + 4 + 2
    assert result.topics[0] == "export_trade"
    assert result.export_ready and not result.suggest_centre
    assert "online_selling" in result.strengths and "business_start" in result.strengths


def test_stage_limits_clamp_the_points(knowledge: Knowledge, assessment: AssessmentDef) -> None:
    # An idea cannot be above stage 2, whatever the other answers add up to.
    idea = {"business_stage": "idea", "sales_channels": ["website"], "digital_skill": "expert"}
    assert score(assessment, idea, _stages(knowledge)).stage == 2
    # Exporting is at least stage 4 even with few points elsewhere.
    exporting = {"business_stage": "exporting", "digital_skill": "none"}
    assert score(assessment, exporting, _stages(knowledge)).stage == 4


def test_a_multi_answer_counts_its_best_channel(
    knowledge: Knowledge, assessment: AssessmentDef
) -> None:
    one = score(
        assessment, {"business_stage": "new", "sales_channels": ["website"]}, _stages(knowledge)
    )
    two = score(
        assessment,
        {"business_stage": "new", "sales_channels": ["website", "marketplace", "social"]},
        _stages(knowledge),
    )
    assert one.points == two.points == 2 + 3


# -- ranking the recommendations -------------------------------------------------------------


def _picks(knowledge: Knowledge, result: Result, province: str | None, sector: str | None):  # type: ignore[no-untyped-def]
    courses = find_courses(knowledge, result.topics, stage=result.stage, province=province)
    programmes = find_programmes(
        knowledge, sector=sector, profile=BusinessProfile(stage=result.stage)
    )
    point = knowledge.places.provinces[province] if province else None
    near = nearest_centres(knowledge, point.lat, point.lng, k=1) if point else []
    return rank(knowledge.assessment, result, courses, programmes, near[0] if near else None)


def test_low_skills_put_the_nearest_centre_first_and_no_programmes(
    knowledge: Knowledge, assessment: AssessmentDef
) -> None:
    answers = {"business_stage": "idea", "digital_skill": "none", "goal": "skills"}
    result = score(assessment, answers, _stages(knowledge))
    picks = _picks(knowledge, result, "30", "food")
    assert picks[0].kind == "centre" and picks[0].item.province_code == "30"
    assert {p.kind for p in picks} == {"centre", "course"}
    assert len(picks) <= 10
    first_course = next(p for p in picks if p.kind == "course")
    assert first_course.topic == "digital_skills"  # the most needed topic leads


def test_ready_exporters_get_programmes_with_their_pre_screen_reasons(
    knowledge: Knowledge, assessment: AssessmentDef
) -> None:
    answers = {
        "business_stage": "exporting",
        "sales_channels": ["abroad"],
        "digital_skill": "expert",
        "goal": "export",
    }
    result = score(assessment, answers, _stages(knowledge))
    picks = _picks(knowledge, result, None, "food")
    programmes = [p for p in picks if p.kind == "programme"]
    assert 1 <= len(programmes) <= assessment.scoring.max_programmes
    assert not any(p.kind == "centre" for p in picks)
    # The pre-screen's reasons travel with each programme (to be shown on its card).
    assert any(p.item.reasons for p in programmes)
    fits = [p.fit for p in programmes]
    assert fits == sorted(fits, reverse=True)
    assert len(picks) <= 10


def test_a_goal_of_export_shows_programmes_before_the_stage_allows(
    knowledge: Knowledge, assessment: AssessmentDef
) -> None:
    answers = {"business_stage": "new", "goal": "export", "digital_skill": "good"}
    result = score(assessment, answers, _stages(knowledge))
    assert result.stage < assessment.scoring.programmes_from_stage and result.export_ready
    picks = _picks(knowledge, result, None, None)
    programmes = [p for p in picks if p.kind == "programme"]
    assert programmes
    # Not ready yet: the pre-screen says the readiness is too low, and that is kept.
    assert all(any(r.code == "readiness_low" for r in p.item.reasons) for p in programmes)
