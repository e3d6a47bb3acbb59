"""Knowledge files: every class of operator mistake named with file, line and field.

Each test copies the shipped knowledge folder, makes one realistic edit,
and checks the exact problem line an operator would see.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.kb.loader import load_knowledge
from tests.helpers import ROOT, run_bot

SHIPPED = ROOT / "knowledge"


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped knowledge folder to break."""
    target = tmp_path / "knowledge"
    shutil.copytree(SHIPPED, target)
    return target


def _edit(path: Path, old: str, new: str, count: int = 1) -> int:
    """Replace text in a file; returns the 1-based line of the first replacement."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return line


def _line_of(path: Path, needle: str, after: str | None = None) -> int:
    text = path.read_text(encoding="utf-8")
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


def _reported(problems: str, path: Path, line: int | str, rest: str) -> re.Match[str] | None:
    """Where ``problems`` names ``path`` at ``line`` (a number, or a regular expression) and
    goes on with ``rest`` (a regular expression)."""
    return re.search(rf"{re.escape(str(path))}:{line}: {rest}", problems)


def _problems(folder: Path) -> list[str]:
    result = load_knowledge(folder)
    assert result.knowledge is None, "expected the folder to be refused"
    return [str(p) for p in result.problems]


def test_shipped_knowledge_is_valid_and_complete() -> None:
    result = load_knowledge(SHIPPED)
    assert result.problems == []
    kb = result.knowledge
    assert kb is not None
    assert set(kb.topics) >= {
        "business_start",
        "digital_skills",
        "online_selling",
        "digital_marketing",
        "branding_packaging",
        "accounting_finance",
        "product_development",
        "logistics",
        "language",
        "export_trade",
    }
    assert len(kb.courses) >= 10 and len(kb.programmes) >= 10 and len(kb.centres) >= 10
    assert all(c.provenance.source_urls for c in kb.courses)
    assert {"DITP", "DBD", "OSMEP", "DEPA", "ONDE"} <= set(kb.agencies)


def test_cli_validate_exits_0_on_the_shipped_files() -> None:
    result = run_bot("kb", "validate", str(SHIPPED))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_yaml_syntax_error_names_the_line(kb_copy: Path) -> None:
    courses = kb_copy / "courses.yaml"
    line = _edit(courses, "  - id: ", "  - id: [unclosed\n    oops: ")
    problems = _problems(kb_copy)
    assert any(p.startswith(f"{courses}:") and "YAML syntax error" in p for p in problems), problems
    number = int(problems[0].split(":")[1])
    assert abs(number - line) <= 2


def test_csv_row_with_wrong_cell_count(kb_copy: Path) -> None:
    centres = kb_copy / "digital_centres.csv"
    lines = centres.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "dcc-broken-row,only,three")
    centres.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = _problems(kb_copy)
    assert f"{centres}:3: (row): has 3 cells but the header has" in "\n".join(problems)


def test_missing_required_field(kb_copy: Path) -> None:
    courses = kb_copy / "courses.yaml"
    text = courses.read_text(encoding="utf-8")
    first_id = re.search(r"- id: (course-[a-z0-9-]+)", text)
    assert first_id
    ident = first_id[1]
    level_line = _line_of(courses, "level:", after=f"id: {ident}")
    _edit(courses, text[text.index("level:", text.index(ident)) :].split("\n", 1)[0] + "\n", "")
    problems = _problems(kb_copy)
    expected = f"{courses}:"
    hit = [
        p
        for p in problems
        if p.startswith(expected) and f"{ident}.level: required, but missing" in p
    ]
    assert hit, problems
    assert abs(int(hit[0].split(":")[1]) - level_line) <= 30  # points into the entry


def test_wrong_enum_value_and_type(kb_copy: Path) -> None:
    courses = kb_copy / "courses.yaml"
    fmt_line = _edit(courses, "format: online", "format: internet")
    stage_line = _edit(courses, "stage: 2", "stage: two")
    problems = "\n".join(_problems(kb_copy))
    assert _reported(
        problems,
        courses,
        fmt_line,
        r"course-[a-z0-9-]+\.format: 'internet' is not allowed; use one of: 'online', 'onsite'",
    )
    assert _reported(
        problems, courses, stage_line, r"course-[a-z0-9-]+\.stage: 'two' must be a whole number"
    )


def test_unknown_topic_agency_market_and_place_codes(kb_copy: Path) -> None:
    courses = kb_copy / "courses.yaml"
    programmes = kb_copy / "export_programmes.yaml"
    centres = kb_copy / "digital_centres.csv"
    topic_line = _edit(courses, "- online_selling", "- onlineselling")
    agency_line = _edit(courses, "agency: DBD", "agency: DBDX")
    market_line = _edit(programmes, "- VN", "- VNM")
    _edit(centres, ",65,6501,650113,", ",65,6501,650199,")
    problems = "\n".join(_problems(kb_copy))
    assert _reported(
        problems,
        courses,
        topic_line,
        r"course-[a-z0-9-]+\.topics\[\d\]: unknown topic 'onlineselling'",
    )
    assert _reported(
        problems, courses, agency_line, r"course-[a-z0-9-]+\.agency: unknown agency 'DBDX'"
    )
    assert _reported(
        problems, programmes, market_line, r"prog-[a-z0-9-]+\.markets\[\d\]: unknown market 'VNM'"
    )
    assert _reported(
        problems, centres, r"\d+", r"dcc-[a-z0-9-]+\.subdistrict_code: unknown place code '650199'"
    )


def test_duplicate_ids(kb_copy: Path) -> None:
    courses = kb_copy / "courses.yaml"
    text = courses.read_text(encoding="utf-8")
    ids = re.findall(r"- id: (course-[a-z0-9-]+)", text)
    second_line = _line_of(courses, f"- id: {ids[1]}")
    courses.write_text(text.replace(f"- id: {ids[1]}", f"- id: {ids[0]}"), encoding="utf-8")
    problems = "\n".join(_problems(kb_copy))
    assert f"{courses}:{second_line}: {ids[0]}: duplicate id; also on line" in problems


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("start_date", "2025-02-30", "'2025-02-30' is not a real date"),
        ("end_date", "1999-01-01", "end_date is before start_date"),
    ],
    ids=["impossible_date", "end_before_start"],
)
def test_impossible_date_and_end_before_start(
    kb_copy: Path, field: str, bad: str, message: str
) -> None:
    courses = kb_copy / "courses.yaml"
    match = re.search(rf"{field}: (\d{{4}}-\d{{2}}-\d{{2}})", courses.read_text(encoding="utf-8"))
    assert match
    line = _edit(courses, f"{field}: {match[1]}", f"{field}: {bad}")
    problems = "\n".join(_problems(kb_copy))
    assert _reported(problems, courses, line, rf"course-[a-z0-9-]+\.schedule\.{field}: {message}")


def test_coordinates_outside_thailand(kb_copy: Path) -> None:
    centres = kb_copy / "digital_centres.csv"
    rows = centres.read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    lat, lng = header.index("location_lat"), header.index("location_lng")
    cells = rows[1].split(",")
    cells[lat], cells[lng] = cells[lng], cells[lat]  # the classic mistake: swapped
    rows[1] = ",".join(cells)
    centres.write_text("\n".join(rows) + "\n", encoding="utf-8")
    problems = "\n".join(_problems(kb_copy))
    assert f"{centres}:2: {cells[0]}: location_lat/location_lng" in problems
    assert "outside Thailand; check that latitude and longitude are not swapped" in problems


def test_reply_placeholder_not_supplied_and_key_missing(kb_copy: Path) -> None:
    replies = kb_copy / "replies.yaml"
    line = _edit(replies, "สวัสดีครับคุณ{name}", "สวัสดีครับคุณ{nam}")
    problems = "\n".join(_problems(kb_copy))
    assert (
        f"{replies}:{line}: greeting.welcome_named: placeholder {{nam}} is not supplied by the code (it supplies: {{name}})"
        in problems
    )

    shutil.copy(SHIPPED / "replies.yaml", replies)
    _edit(replies, "  consent_thanks:", "  consent_thank_you:")
    problems = "\n".join(_problems(kb_copy))
    assert _reported(
        problems,
        replies,
        1,
        r"greeting.consent_thanks: the code uses this reply key \(handlers/greeting.py:\d+\) but no reply file has it",
    )


def test_unknown_field_is_reported_not_ignored(kb_copy: Path) -> None:
    courses = kb_copy / "courses.yaml"
    line = _edit(courses, "    level: ", "    levle: intermediate\n    level: ")
    problems = "\n".join(_problems(kb_copy))
    assert _reported(problems, courses, line, r"course-[a-z0-9-]+\.levle: unknown field")


def test_cli_validate_prints_one_line_per_problem_and_exits_1(kb_copy: Path) -> None:
    _edit(kb_copy / "courses.yaml", "format: online", "format: internet")
    _edit(kb_copy / "courses.yaml", "agency: DBD", "agency: NOPE")
    result = run_bot("kb", "validate", str(kb_copy))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert all(
        re.match(r"^.+courses\.yaml:\d+: course-[a-z0-9-]+\.\w+: .+$", line) for line in lines
    )


def test_missing_required_topic(
    kb_copy: Path,
) -> None:
    topics = kb_copy / "topics.yaml"
    _edit(topics, "id: logistics", "id: shipping_stuff")
    problems = "\n".join(_problems(kb_copy))
    assert f"{topics}:1: logistics: required topic is missing" in problems


Check = Callable[[Path], None]


def test_buddhist_era_year_in_a_date_is_explained(kb_copy: Path) -> None:
    courses = kb_copy / "courses.yaml"
    text = courses.read_text(encoding="utf-8")
    match = re.search(r"start_date: (\d{4})-(\d{2}-\d{2})", text)
    assert match
    line = _edit(courses, match[0], f"start_date: {int(match[1]) + 543}-{match[2]}")
    problems = "\n".join(_problems(kb_copy))
    assert _reported(
        problems,
        courses,
        line,
        rf"course-[a-z0-9-]+\.schedule\.start_date: '{int(match[1]) + 543}-{match[2]}' looks like a Buddhist-era year; dates here use the Gregorian year",
    )


def test_reply_key_missing_from_a_capability_file_is_named_there(kb_copy: Path) -> None:
    subscriptions = kb_copy / "replies" / "subscriptions.yaml"
    _edit(subscriptions, "  button_done: ", "  button_finished: ")
    problems = "\n".join(_problems(kb_copy))
    assert _reported(
        problems,
        subscriptions,
        1,
        r"subscribe.button_done: the code uses this reply key"
        r" \(handlers/subscriptions.py:\d+\) but no reply file has it; put it back under subscribe:",
    )


def test_placeholder_in_a_menu_label_is_refused(kb_copy: Path) -> None:
    """Menu labels are read through ``r = turn.reply_text``; the code fills nothing in."""
    replies = kb_copy / "replies.yaml"
    line = _edit(replies, 'help: "เมนูหลัก"', 'help: "เมนูหลัก {name}"')
    problems = "\n".join(_problems(kb_copy))
    assert (
        f"{replies}:{line}: menu.help: placeholder {{name}} is not supplied by the code"
        " (it supplies: none)"
    ) in problems
