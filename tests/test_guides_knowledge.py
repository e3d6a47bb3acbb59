"""Guides as operators edit them: the shipped set, and every mistake named by file and line.

A broken guide file is refused whole (the bot keeps its last good snapshot); a guide past its
review date is served but ``bot kb validate`` warns, naming the line of ``review_by``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from bot.kb.guides import ANSWER_MAX, MIN_EXAMPLES
from bot.kb.loader import load_knowledge, today
from bot.nlu.data import read_intents
from bot.nlu.text import normalise
from tests.helpers import ROOT, run_bot

SHIPPED = ROOT / "knowledge"
GUIDES = SHIPPED / "guides"
#: The themes the guides must cover (one file each).
THEMES = {
    "business_registration",
    "tax_accounting",
    "trademarks_ip",
    "loans_funding",
    "food_drug_licences",
    "otop_community",
    "standards",
    "selling_online",
    "careers_training",
    "export_first_steps",
    "complaints",
    "digital_centres",
}


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(SHIPPED, target)
    return target


def _line(path: Path, needle: str) -> int:
    text = path.read_text(encoding="utf-8")
    assert needle in text, needle
    return text[: text.index(needle)].count("\n") + 1


def _edit(path: Path, old: str, new: str) -> int:
    line = _line(path, old)
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    return line


def test_the_shipped_guides_cover_every_theme_with_sourced_short_answers() -> None:
    result = load_knowledge(SHIPPED)
    assert result.knowledge is not None, result.problems
    guides = result.knowledge.guides
    assert len(guides.guides) >= 80
    assert set(guides.themes.values()) >= THEMES
    agencies = result.knowledge.agencies
    for guide in guides.guides.values():
        assert len(guide.examples) >= MIN_EXAMPLES, guide.id
        assert len(guide.answer) <= ANSWER_MAX, guide.id
        assert guide.agency in agencies, guide.id
        assert guide.provenance.source_urls, guide.id
        assert guide.provenance.review_by >= guide.provenance.checked_on, guide.id


def test_no_guide_phrase_is_also_an_intent_phrase() -> None:
    knowledge = load_knowledge(SHIPPED).knowledge
    assert knowledge is not None
    intents = {normalise(e.text): e.intent for e in read_intents(ROOT / "intents").examples}
    clashes = [
        (g.id, p)
        for g in knowledge.guides.guides.values()
        for p in g.examples
        if normalise(p) in intents
    ]
    assert not clashes


def test_a_yaml_mistake_in_a_guide_file_is_refused_with_its_line(kb_copy: Path) -> None:
    path = kb_copy / "guides" / "complaints.yaml"
    line = _edit(path, "  - id: ", "  - id: [broken\n    title: x\n  - id: ")
    result = run_bot("kb", "validate", str(kb_copy))
    assert result.returncode == 1
    problems = result.stdout.strip().splitlines()
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:")
    assert "YAML syntax error" in problems[0]
    assert int(problems[0].split(":")[1]) >= line


GOOD_GUIDE = """\
  - id: {id}
    title: "คำถามทดสอบ"
    short: "ทดสอบ"
    examples:
{examples}
    answer: "{answer}"
    agency: {agency}
    provenance:
      status: sample
      source_urls: [https://www.dbd.go.th]
      checked_on: 2026-12-01
      review_by: 2027-06-01
"""


def _guide(ident: str, examples: list[str], agency: str = "DBD", answer: str = "คำตอบ") -> str:
    lines = "\n".join(f"      - {e}" for e in examples)
    return GOOD_GUIDE.format(id=ident, examples=lines, agency=agency, answer=answer)


def _numbered(prefix: str) -> list[str]:
    return [f"{prefix} ข้อความทดสอบที่ {n}" for n in range(MIN_EXAMPLES)]


def test_every_guide_field_mistake_is_named_by_file_line_and_field(kb_copy: Path) -> None:
    path = kb_copy / "guides" / "mistakes.yaml"
    first = _numbered("ก")
    body = (
        "meta:\n  theme: mistakes\nguides:\n"
        + _guide("first_guide", first, agency="NO_SUCH_AGENCY")
        + _guide("long_answer", _numbered("ข"), answer="ค" * (ANSWER_MAX + 1))
        + _guide("repeats", [*_numbered("ง"), first[2]])
        + _guide("too_few", ["จ หนึ่ง", "จ สอง"])
    )
    path.write_text(body, encoding="utf-8")
    result = load_knowledge(kb_copy)
    assert result.knowledge is None
    found = {p.field: p for p in result.problems if p.file == str(path)}
    assert found["first_guide.agency"].line == _line(path, "agency: NO_SUCH_AGENCY")
    assert "unknown agency 'NO_SUCH_AGENCY'" in found["first_guide.agency"].message
    assert found["long_answer.answer"].line == _line(path, 'answer: "คคค')
    assert str(ANSWER_MAX) in found["long_answer.answer"].message
    clash = found[f"repeats.examples[{MIN_EXAMPLES}]"]
    assert "also an example of guide first_guide" in clash.message
    assert clash.line == body.count("\n", 0, body.rindex(first[2])) + 1
    assert f"at least {MIN_EXAMPLES}" in found["too_few.examples"].message
    assert len(found) == 4, found


def test_a_guide_phrase_that_an_intent_has_is_refused(kb_copy: Path) -> None:
    phrase = read_intents(ROOT / "intents").examples[0].text
    path = kb_copy / "guides" / "mistakes.yaml"
    path.write_text(
        "meta:\n  theme: mistakes\nguides:\n" + _guide("clash", [*_numbered("ก"), phrase]),
        encoding="utf-8",
    )
    result = load_knowledge(kb_copy, also=[ROOT / "intents"])
    assert result.knowledge is None
    assert [p.field for p in result.problems] == [f"clash.examples[{MIN_EXAMPLES}]"]
    assert "is also an example of intent" in result.problems[0].message


def test_a_guide_past_its_review_date_is_served_with_a_warning(kb_copy: Path) -> None:
    path = kb_copy / "guides" / "complaints.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    guide = data["guides"][0]
    review_by = guide["provenance"]["review_by"]
    past = today() - dt.timedelta(days=1)
    checked = min(past, guide["provenance"]["checked_on"])
    _edit(path, f"checked_on: {guide['provenance']['checked_on']}", f"checked_on: {checked}")
    line = _edit(path, f"review_by: {review_by}", f"review_by: {past.isoformat()}")
    result = run_bot("kb", "validate", str(kb_copy))
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [w for w in result.stdout.splitlines() if w.endswith("(warning)")]
    assert warnings == [
        f"{path}:{line}: {guide['id']}.provenance.review_by: review date {past.isoformat()} "
        "has passed; check the answer at its sources and set a new review_by (warning)"
    ]
    assert "1 warning(s)" in result.stdout


def test_an_office_in_an_unknown_province_is_refused(kb_copy: Path) -> None:
    path = kb_copy / "offices.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    office = data["items"][0]
    line = _edit(path, f'province: "{office["province"]}"', 'province: "99"')
    result = load_knowledge(kb_copy)
    assert result.knowledge is None
    assert [(p.line, p.field) for p in result.problems] == [(line, f"{office['id']}.province")]
