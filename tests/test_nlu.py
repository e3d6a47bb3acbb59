"""The Thai intent engine: normalisation, intents, out-of-scope, entities, CLI, determinism."""

from __future__ import annotations

import base64
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.kb.loader import Knowledge
from bot.nlu import (
    REQUIRED_INTENTS,
    Candidate,
    IntentEngine,
    IntentFileError,
    Parse,
    build_engine,
    normalise,
    read_intents,
)
from bot.nlu import engine as engine_module
from bot.nlu.text import Spelling, SpellingRule, Tokeniser
from tests.helpers import ROOT, environment, run_command

#: Phrasings written for these tests; none is an example in intents/ (checked below).
UNSEEN = {
    "greet": ["สวัสดีค่ะพี่แอดมิน", "หวัดดีครับบบ วันนี้", "ดีจ้าาา บอท"],
    "help": ["บอทนี้ใช้ทำอะไรได้บ้างคะ", "มีเมนูอะไรให้เลือกบ้าง", "ช่วยบอกวิธีใช้งานหน่อย"],
    "start_assessment": [
        "อยากลองทำแบบประเมินทักษะดูค่ะ",
        "ขอทำแบบทดสอบความพร้อมธุรกิจ",
        "ประเมินให้หน่อยว่าควรเรียนอะไรดี",
    ],
    "find_course": [
        "มีคอร์สสอนขายของออนไลน์ฟรีไหมคะ",
        "อยากเรียนทำบัญชีร้านค้า มีอบรมไหม",
        "หาหลักสูตรการตลาดออนไลน์ให้หน่อย",
    ],
    "export_programme": [
        "อยากส่งสินค้าไปขายที่ญี่ปุ่น มีโครงการช่วยไหม",
        "มีโครงการช่วยผู้ส่งออกรายใหม่ไหม",
        "อยากไปออกงานแฟร์ต่างประเทศ",
    ],
    "find_centre": [
        "ศูนย์ดิจิทัลชุมชนที่ใกล้ที่สุดอยู่ไหน",
        "แถวบ้านมีศูนย์ดิจิทัลไหมคะ",
        "หาที่ใช้คอมฟรีใกล้ๆ",
    ],
    "subscribe": [
        "อยากรับข่าวคอร์สใหม่ทุกครั้ง",
        "ติดตามหัวข้อขายออนไลน์ให้หน่อย",
        "มีคอร์สใหม่แจ้งเตือนด้วยนะ",
    ],
    "unsubscribe": [
        "เลิกส่งแจ้งเตือนมาได้แล้ว",
        "ไม่อยากรับข่าวคอร์สแล้วค่ะ",
        "ยกเลิกติดตามหัวข้อทั้งหมด",
    ],
    "my_profile": [
        "ขอดูข้อมูลของฉันที่บอทเก็บไว้",
        "ผลประเมินของผมเป็นยังไงบ้าง",
        "ดูหัวข้อที่ฉันติดตามอยู่",
    ],
    "delete_my_data": [
        "ลบข้อมูลส่วนตัวของฉันทั้งหมด",
        "ไม่อยากให้เก็บข้อมูลผมแล้ว ลบเลย",
        "ขอลบประวัติของฉันตาม pdpa",
    ],
    "contact_staff": [
        "ขอคุยกับเจ้าหน้าที่ตัวจริงหน่อย",
        "มีเบอร์โทรติดต่อเจ้าหน้าที่ไหม",
        "อยากร้องเรียนต้องติดต่อใคร",
    ],
    "thanks": ["ขอบคุณมากๆเลยค่ะ", "ขอบใจนะบอท", "thank u krub"],
    "goodbye": ["ไปก่อนนะ บาย", "แล้วเจอกันใหม่ค่ะ", "bye na"],
    "cancel": ["ยกเลิกก่อน", "พอแค่นี้ ไม่ทำต่อแล้ว", "หยุดก่อนนะ"],
}
OUT_OF_SCOPE = [
    "ผลบอลเมื่อคืนเป็นไง",
    "ช่วยทำการบ้านเลขให้หน่อย",
    "หวยงวดหน้าออกอะไร",
    "ราคาทองวันนี้เท่าไหร่",
    "เล่าเรื่องผีให้ฟังหน่อย",
]


# -- normalisation and words ----------------------------------------------------------------


def test_normalise_folds_what_never_carries_meaning() -> None:
    assert normalise("ＨＥＬＬＯ　ครับ") == "hello ครับ"  # full-width forms, ideographic space
    assert normalise("สวัส\u200bดี") == "สวัสดี"  # zero-width space
    assert normalise("๑๒๓ บาท") == "123 บาท"  # Thai digits
    assert normalise("มากกกกก") == "มาก"  # repeated letters
    assert normalise("ค่าาาาา") == "ค่า"
    assert normalise("ขอออกบูธ") == "ขอออกบูธ"  # ขอ|ออก: three อ are two words meeting
    assert normalise("ขออออออ") == "ขอ"
    assert normalise("1000 บาท 555") == "1000 บาท 555"  # digits are never collapsed
    assert normalise("เเก่น") == normalise("แก่น") or "เเ" not in normalise("เเก่น")


def test_spelling_rules_apply_inside_text_or_to_whole_words_only() -> None:
    table = Spelling(
        (
            SpellingRule("คับ", "ครับ", whole_word=True, line=2),
            SpellingRule("ดิจิตอล", "ดิจิทัล", whole_word=False, line=3),
        )
    )
    assert table.apply_inside("ศูนย์ดิจิตอลชุมชน") == "ศูนย์ดิจิทัลชุมชน"
    assert table.apply_words(["บังคับ", "คับ"]) == ["บังคับ", "ครับ"]


def test_tokeniser_keeps_domain_words_whole_and_drops_punctuation() -> None:
    plain = Tokeniser()
    domain = Tokeniser({"ยิงแอด"})
    assert "ยิงแอด" not in plain("อยากเรียนยิงแอดครับ!!")
    assert domain("อยากเรียนยิงแอดครับ!!") == ["อยาก", "เรียน", "ยิงแอด", "ครับ"]
    assert domain("shopee กับ lazada 🙏") == ["shopee", "กับ", "lazada", "🙏"]


# -- intents --------------------------------------------------------------------------------


def test_test_phrases_are_unseen() -> None:
    examples = {normalise(e.text) for e in read_intents(ROOT / "intents").examples}
    for phrases in [*UNSEEN.values(), OUT_OF_SCOPE]:
        for phrase in phrases:
            assert normalise(phrase) not in examples, phrase


def test_every_required_intent_exists(engine: IntentEngine) -> None:
    assert engine.intents >= REQUIRED_INTENTS
    assert set(UNSEEN) | {"out_of_scope"} == REQUIRED_INTENTS


@pytest.mark.parametrize("intent", sorted(UNSEEN))
def test_unseen_phrasings_get_their_intent(engine: IntentEngine, intent: str) -> None:
    wrong = [
        (text, parse.best, parse.confidence)
        for text in UNSEEN[intent]
        if (parse := engine.parse(text)).best != intent
    ]
    assert not wrong, wrong


def test_out_of_scope_messages_are_not_answered_as_in_scope(engine: IntentEngine) -> None:
    for text in [*OUT_OF_SCOPE, "asdfghjkl", "????", "🐸🐸🐸"]:
        parse = engine.parse(text)
        assert parse.intent in (None, "out_of_scope"), (text, parse.candidates)


def test_confidence_and_candidates_are_well_formed(engine: IntentEngine) -> None:
    parse = engine.parse("อยากเรียนขายของออนไลน์ค่ะ")
    assert parse.intent == "find_course" and 0.5 <= parse.confidence <= 1.0
    assert parse.candidates[0] == Candidate("find_course", parse.confidence)
    confidences = [c.confidence for c in parse.candidates]
    assert confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1.0001
    assert not parse.uncertain


def test_uncertain_when_the_top_two_are_close() -> None:
    close = Parse("x", "x", None, 0.45, (Candidate("subscribe", 0.45), Candidate("cancel", 0.4)))
    assert close.uncertain and close.best == "subscribe"
    assert not Parse("x", "x", "greet", 0.9).uncertain  # the router tests build it this way
    assert not Parse("x", "x", None, 0.1).uncertain


def test_same_input_same_output(engine: IntentEngine, knowledge: Knowledge) -> None:
    text = "มีคอร์ส shopee แถวเชียงไหม่ไหมคะ"
    first = engine.parse(text)
    assert all(engine.parse(text) == first for _ in range(3))
    engine_module._MEMO.clear()
    again = build_engine(ROOT / "intents", knowledge, None)
    assert again.parse(text) == first


# -- entities -------------------------------------------------------------------------------


def _values(parse: Parse, type_: str) -> list[str]:
    return [e.value for e in parse.entities_of(type_)]


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("อยากขายของใน shopee", "online_selling"),
        ("ขายใน lazada ยังไง", "online_selling"),
        ("มีคอร์ส tiktok shop ไหม", "online_selling"),
        ("อยากเรียนไลฟ์สดขายของ", "online_selling"),
        ("สอนยิงแอดหน่อย", "digital_marketing"),
        ("อยากทำเพจร้าน", "digital_marketing"),
        ("อยากขายของใน shoppee", "online_selling"),  # typo
    ],
)
def test_topics(engine: IntentEngine, text: str, topic: str) -> None:
    assert topic in _values(engine.parse(text), "topic")


@pytest.mark.parametrize(
    ("text", "province"),
    [
        ("มีคอร์สที่เชียงไหม่ไหม", "50"),  # misspelt
        ("อยู่กทม ครับ", "10"),  # abbreviation
        ("ศูนย์แถวโคราช", "30"),
        ("อยู่อุบลค่ะ", "34"),
        ("สุราษฎร์มีอบรมไหม", "84"),
        ("คนอยุธยาค่ะ", "14"),
        ("เรียนที่เชียงรายได้ไหม", "57"),
    ],
)
def test_provinces(engine: IntentEngine, text: str, province: str) -> None:
    assert province in _values(engine.parse(text), "province")


def test_district_implies_its_province(engine: IntentEngine) -> None:
    parse = engine.parse("ศูนย์ดิจิทัลที่หาดใหญ่อยู่ไหน")
    assert parse.entity("district") is not None and _values(parse, "district") == ["9011"]
    assert _values(parse, "province") == ["90"]


def test_shared_place_name_reports_every_candidate(engine: IntentEngine) -> None:
    parse = engine.parse("หนองบัวมีศูนย์ไหม")
    places = [e for e in parse.entities if e.type in ("province", "district", "subdistrict")]
    assert places and all(e.ambiguous for e in places)
    codes = set(places[0].candidates)
    assert "6004" in codes and len(codes) > 5


@pytest.mark.parametrize(
    ("text", "market"),
    [
        ("อยากส่งออกไปจีน", "CN"),
        ("ขายไปญี่ปุ่นได้ไหม", "JP"),
        ("ส่งไปอเมริกา", "US"),
        ("ตลาดสหรัฐน่าสนใจไหม", "US"),
        ("อยากไปยุโรป", "EU"),
        ("ตลาดอาเซียน", "ASEAN"),
        ("ส่งไปตะวันออกกลาง", "MIDDLE_EAST"),
    ],
)
def test_markets(engine: IntentEngine, text: str, market: str) -> None:
    assert market in _values(engine.parse(text), "market")


def test_sectors_and_no_entities_in_plain_chat(engine: IntentEngine) -> None:
    assert _values(engine.parse("ขายทุเรียนไปจีน"), "sector") == ["agriculture"]
    assert engine.parse("ขอบคุณครับ").entities == ()


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("แม่ค้าต้องเสียภาษีไหม", "accounting_finance"),  # inside one word: เสียภาษี
        ("อยากเปิดร้านกาแฟ", "business_start"),  # across words: เปิด|ร้านกาแฟ
        ("ทำสบู่ขาย อยากได้มาตรฐาน", "product_development"),  # ได้มาตรฐาน
        ("อยากขายผ้าทอออนไลน์", "online_selling"),  # gapped: ขาย ... ออนไลน์
        ("สอนถ่ายวิดีโอสินค้าหน่อย", "digital_marketing"),
    ],
)
def test_topics_inside_and_across_words(engine: IntentEngine, text: str, topic: str) -> None:
    assert topic in _values(engine.parse(text), "topic")


def test_a_topic_inside_a_word_keeps_the_sector_it_overlaps(engine: IntentEngine) -> None:
    parse = engine.parse("อยากเปิดร้านกาแฟ")
    assert _values(parse, "sector") == ["restaurant"]


@pytest.mark.parametrize(
    "text",
    [
        "ขอดูบัญชีของฉัน",  # a user account, not accounting
        "ลบบัญชีผู้ใช้ของผมด้วย",
        "ต่อภาษีรถยนต์ที่ไหน",  # a car tax
        "ศูนย์ดิจิทัลชุมชนที่ขอนแก่น",  # the centres' name, not the digital-skills topic
        "อยากใช้อินเทอร์เน็ตฟรี",  # access, not a course
    ],
)
def test_phrases_that_only_look_like_a_topic(engine: IntentEngine, text: str) -> None:
    assert _values(engine.parse(text), "topic") == []


def test_entity_dev_set_recall_and_precision(engine: IntentEngine) -> None:
    """Our own entity set (benchmarks/data/entity_dev.csv): recall and few false topics."""
    import csv

    path = ROOT / "benchmarks" / "data" / "entity_dev.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    types = {
        "topic": ("topic",),
        "place": ("province", "district", "subdistrict"),
        "market": ("market",),
        "sector": ("sector",),
    }
    found = expected = extra_topics = 0
    for row in rows:
        parse = engine.parse(row["text"])
        for column, kinds in types.items():
            gold = {v for v in row[column].split(";") if v}
            got = {e.value for e in parse.entities if e.type in kinds}
            got |= {c for e in parse.entities if e.type in kinds for c in e.candidates}
            expected += len(gold)
            found += len(gold & got)
            if column == "topic":
                extra_topics += len(got - gold)
    assert len(rows) >= 150
    assert found / expected >= 0.95
    assert extra_topics <= 0.05 * len(rows)


# -- the classifier ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 4])
def test_the_model_scores_what_linear_svc_decides(n_classes: int) -> None:
    """The NumPy model serves LinearSVC's decision values: one SVM per view, summed."""
    import numpy as np
    from sklearn.svm import LinearSVC

    from bot.nlu import model

    rng = np.random.default_rng(0)
    labels = [f"c{k}" for k in rng.integers(0, n_classes, 240)]
    docs = [
        [f"w{(int(label[1:]) + 4 * int(rng.integers(0, 6))) % 40}" for _ in range(3)]
        + [f"w{int(i)}" for i in rng.integers(0, 40, int(rng.integers(0, 3)))]
        for label in labels
    ]
    # power 1 and no catch-all class: the class weights are scikit-learn's "balanced"
    settings = model.ModelSettings(class_weight_power=1.0)
    served = model.train(docs, labels, settings)
    y = np.array([served.classes.index(label) for label in labels])
    expected = sum(
        LinearSVC(C=1.0, class_weight="balanced", tol=1e-6, max_iter=100_000)
        .fit(view, y)
        .decision_function(view)
        for view in model._vectorise(docs, settings).views
    )
    if n_classes == 2:  # one decision value d: the model holds (-d, +d)
        expected = np.stack([-expected, expected], axis=1)
    got = np.stack([served.scores(model.features(doc, settings)) for doc in docs])
    assert got.shape == (len(docs), n_classes)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert (got.argmax(1) == y).mean() > 0.9  # and it has learned something


def _two_intents(tmp_path: Path) -> tuple[Path, Path]:
    """An intents folder of two small intents and where to cache their engine, with none
    kept in memory: the next ``build_engine`` trains, or loads the cache."""
    folder = tmp_path / "intents"
    folder.mkdir()
    (folder / "x.yaml").write_text(
        "intents:\n"
        "  greet:\n    examples: [สวัสดี, หวัดดี, ดีครับ, hello, hi]\n"
        "  thanks:\n    examples: [ขอบคุณ, ขอบใจ, thanks, ขอบคุณมาก, thx]\n",
        encoding="utf-8",
    )
    engine_module._MEMO.clear()
    return folder, tmp_path / "cache"


def _engine_in_fresh_process(folder: Path, cache: Path) -> dict[str, Any]:
    """Build the engine as a bot process starts (with a cache folder) in a new interpreter:
    where it came from, whether scikit-learn got loaded, and how it reads a greeting."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from bot.nlu import build_engine\n"
        f"e = build_engine(Path({str(folder)!r}), None, Path({str(cache)!r}), "
        "required=frozenset())\n"
        "print(json.dumps({'source': e.info['source'], 'sklearn': 'sklearn' in sys.modules, "
        "'parse': e.parse('สวัสดีจ้า').to_dict()}))\n"
    )
    out = run_command([sys.executable, "-c", code], timeout=120, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_loading_from_the_cache_needs_no_scikit_learn(tmp_path: Path) -> None:
    """Training uses scikit-learn; start-up from the cache must not import it (~0.6 s)."""
    folder, cache = _two_intents(tmp_path)
    trained = build_engine(folder, None, cache, required=frozenset())
    assert trained.info["source"] == "trained"
    loaded = _engine_in_fresh_process(folder, cache)
    assert loaded["source"] == "cache"
    assert loaded["sklearn"] is False, "loading the cached engine imported scikit-learn"
    assert loaded["parse"] == trained.parse("สวัสดีจ้า").to_dict()


def test_a_serving_process_that_trains_keeps_no_scikit_learn(tmp_path: Path) -> None:
    """A bot process without a cache trains in a child process: scikit-learn's ~75 MB never
    stay in the process that serves, and the engine it gets back reads messages the same."""
    folder, cache = _two_intents(tmp_path)
    served = _engine_in_fresh_process(folder, cache)
    assert served["source"] == "trained"
    assert served["sklearn"] is False, "training at start-up left scikit-learn in the process"
    here = build_engine(folder, None, None, required=frozenset())  # trained in this process
    assert served["parse"] == here.parse("สวัสดีจ้า").to_dict()


def test_feature_index_finds_every_name_and_only_them(engine: IntentEngine) -> None:
    """The served vocabulary (hashes and a blob, not a dict) answers as a dict of its names
    would, and a copy pickled by a process with another hash salt (a model trained in a
    child) still finds them."""
    from bot.nlu.model import FeatureIndex, features

    index = engine.model.vocab
    names = list(index)
    assert len(names) == len(index) > 10_000
    as_dict = {name: row for row, name in enumerate(names)}
    feats = list(dict.fromkeys(features(engine.words("อยากเรียนไลฟ์สดขายของ ส่งออกญี่ปุ่น")[1])))
    unknown = ["w:ไม่มีคำนี้แน่นอน", "s:qqqq", "", "b:^ zzz"]
    asked = feats + unknown + names[:50] + names[-50:]
    expected = [as_dict.get(f, -1) for f in asked]
    assert index.rows(asked, len(asked)).tolist() == expected
    assert any(row >= 0 for row in expected[: len(feats)]) and expected[len(feats)] == -1
    code = (
        "import base64, pickle, sys\n"
        "from bot.nlu.model import FeatureIndex\n"
        "names = sys.stdin.read().split('\\n')\n"
        "print(base64.b64encode(pickle.dumps(FeatureIndex.of(names))).decode())\n"
    )
    small = names[:2000]
    done = run_command(
        [sys.executable, "-c", code],
        stdin="\n".join(small),
        env=environment(PYTHONHASHSEED="12345"),
        check=True,
    )
    again = pickle.loads(base64.b64decode(done.stdout))
    assert isinstance(again, FeatureIndex)
    assert again.rows(small + unknown, len(small) + 4).tolist() == list(range(2000)) + [-1] * 4


def test_model_round_trips_through_arrays(engine: IntentEngine) -> None:
    from bot.nlu.model import LinearModel, features

    model = engine.model
    arrays = model.to_arrays()
    again = LinearModel.from_arrays(arrays)
    feats = features(engine.words("อยากเรียนไลฟ์สดขายของ")[1])
    assert (again.scores(feats) == model.scores(feats)).all()
    assert again.temperature == model.temperature


def test_sparse_weights_score_like_the_dense_matrix(engine: IntentEngine) -> None:
    """The served model keeps the common features' rows whole and only the non-zero weights
    of the rest (about a third of the memory); every message scores as the full matrix
    would score it."""
    from bot.nlu.model import features

    model = engine.model
    dense = model.weights.to_dense()
    assert model.weights.stored_cells < 0.5 * dense.size
    assert len(model.weights.dense) and len(model.weights.values)  # both parts in use
    for text in ("อยากเรียนไลฟ์สดขายของ", "ศูนย์ดิจิทัลชุมชนใกล้บ้าน", "ส่งออกไปญี่ปุ่นยังไง", "555"):
        feats = features(engine.words(text)[1])
        index, values = model.vector(feats)
        expected = values.astype(np.float64) @ dense[index] + model.bias
        assert np.allclose(model.scores(feats), expected, rtol=1e-5, atol=1e-5)


def test_damaged_weight_rows_are_refused(engine: IntentEngine) -> None:
    """A cache file whose weight rows do not add up is refused (and retrained), not served."""
    from bot.nlu.model import LinearModel

    good = engine.model.to_arrays()
    rows = good["weight_rows"].copy()
    rows[-1] += 5
    signed = good["weight_classes"].astype(np.int16)
    signed[0] = -1
    for name, damaged in (
        ("weight_rows", rows),  # the rows end past the stored cells
        ("weight_classes", signed),  # a class number below zero
        ("weight_values", good["weight_values"].reshape(-1, 1)),  # the wrong shape
        ("vocab_ends", good["vocab_ends"][:-1]),  # the names end before their bytes do
        ("vocab_ends", good["vocab_ends"][::-1]),  # offsets out of order
    ):
        with pytest.raises(ValueError):
            LinearModel.from_arrays(dict(good, **{name: damaged}))


# -- files, cache, command line --------------------------------------------------------------


def test_intent_file_problems_name_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "intents:\n  greet:\n    examples:\n      - สวัสดี\n      - หวัดดี\n", encoding="utf-8"
    )
    (tmp_path / "b.yaml").write_text(
        "intents:\n  thanks:\n    examples:\n      - ขอบคุณ\n      - สวัสดี\n  Bad:\n    x: 1\n",
        encoding="utf-8",
    )
    with pytest.raises(IntentFileError) as caught:
        build_engine(tmp_path, None, None, required=frozenset())
    lines = [str(p) for p in caught.value.problems]
    assert any(
        line.startswith(f"{tmp_path / 'b.yaml'}:5: intents.thanks.examples[1]:") for line in lines
    )
    assert any("a.yaml:4" in line for line in lines)
    assert any("intents.Bad" in line for line in lines)


def test_cache_is_used_and_a_broken_one_is_retrained(tmp_path: Path) -> None:
    folder, cache = _two_intents(tmp_path)
    first = build_engine(folder, None, cache, required=frozenset())
    assert first.info["source"] == "trained"
    engine_module._MEMO.clear()
    second = build_engine(folder, None, cache, required=frozenset())
    assert second.info["source"] == "cache"
    for path in cache.glob("engine-*.npz"):
        path.write_bytes(b"not a numpy file")
    engine_module._MEMO.clear()
    third = build_engine(folder, None, cache, required=frozenset())
    assert third.info["source"] == "trained"
    assert third.parse("สวัสดีจ้า") == first.parse("สวัสดีจ้า")


def _cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str) -> int:
    from bot.cli import main

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INTENTS_DIR", str(ROOT / "intents"))
    monkeypatch.setenv("KNOWLEDGE_DIR", str(ROOT / "knowledge"))
    return main(list(argv))


def test_cli_parse_prints_the_json_contract(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(monkeypatch, tmp_path, "nlu", "parse", "มีคอร์สขายของ shopee ที่หาดใหญ่ไหม") == 0
    out = json.loads(capsys.readouterr().out)
    assert {"text", "intent", "confidence", "candidates", "entities"} <= set(out)
    assert out["intent"] == "find_course"
    assert all(set(c) == {"intent", "confidence"} for c in out["candidates"])
    assert {"type": "topic", "value": "online_selling", "text": "shopee", "score": 1.0} in out[
        "entities"
    ]
    assert {e["value"] for e in out["entities"]} >= {"9011", "90"}
    for entity in out["entities"]:
        assert {"type", "value", "text", "score"} <= set(entity)


def test_cli_parse_reads_stdin_one_message_per_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("สวัสดีครับ\nขอบคุณค่ะ\n"))
    assert _cli(monkeypatch, tmp_path, "nlu", "parse") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line)["intent"] for line in lines] == ["greet", "thanks"]


def test_cli_eval_with_train_and_test_csv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text(
        "text,intent,extra\n"
        + "".join(f"ตั้งนาฬิกาปลุก {h} โมง,alarm,x\n" for h in range(1, 9))
        + "".join(f"อากาศที่เมือง {c} เป็นไง,weather,x\n" for c in "กขคงจฉชซ"),
        encoding="utf-8",
    )
    test.write_text(
        "text,intent\nปลุกตอน 10 โมงหน่อย,alarm\nพรุ่งนี้อากาศดีไหม,weather\n", encoding="utf-8"
    )
    code = _cli(
        monkeypatch, tmp_path, "nlu", "eval", "--train", str(train), "--test", str(test), "--json"
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "per_intent", "errors"} <= set(report)
    assert report["accuracy"] == 1.0 and set(report["per_intent"]) == {"alarm", "weather"}
