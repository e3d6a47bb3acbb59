"""``bot kb import-centres``: the official list of community digital centres into the knowledge.

The sample file ``tests/data/official_centres_sample.csv`` is shaped like the lists สดช. (ONDE)
publishes: cp874 (TIS-620) encoded, two title lines above a Thai header, place names with and
without prefixes, Thai digits, Buddhist-era dates, one swapped coordinate and a few rows that
cannot be placed. Every test imports into a private copy of the shipped knowledge folder and
compares the placed points with the gazetteer's own, so the tests follow the place tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.kb.loader import load_knowledge
from bot.kb.places import Gazetteer
from bot.kb.schemas import CENTRE_COLUMNS
from bot.tools.import_centres import (
    COLUMNS_FILE,
    ImportOptions,
    ImportReport,
    centre_id,
    header_key,
    parse_date,
    run_import,
    thai_digits_to_ascii,
)
from tests.helpers import ROOT, run_bot

SHIPPED = ROOT / "knowledge"
SAMPLE = ROOT / "tests" / "data" / "official_centres_sample.csv"
SAMPLE_LABEL = str(SAMPLE)
CHECKED = dt.date(2025, 7, 1)
SHIPPED_IDS = {
    row["id"]
    for row in csv.DictReader(io.StringIO((SHIPPED / "digital_centres.csv").read_text("utf-8")))
}

# Names in the sample file, one per imported row.
MUNICIPALITY = "ศูนย์ดิจิทัลชุมชนเทศบาลนครเชียงใหม่"
SAO = "ศูนย์ดิจิทัลชุมชน อบต.บ้านกร่าง"
SCHOOL = "ศูนย์ดิจิทัลชุมชนโรงเรียนบ้านหมากแข้ง"
TEMPLE = "ศูนย์ดิจิทัลชุมชนวัดพระสิงห์"
NFE = "ศูนย์ดิจิทัลชุมชน กศน.ตำบลบ่อยาง"
LIBRARY = "ศูนย์ดิจิทัลชุมชนห้องสมุดประชาชนเขตพระโขนง"
DISTRICT_OFFICE = "ศูนย์ดิจิทัลชุมชนที่ว่าการอำเภอดอยเต่า"
MOSQUE = "ศูนย์ดิจิทัลชุมชนมัสยิดบางนาค"


@pytest.fixture(scope="module")
def places() -> Gazetteer:
    return Gazetteer.load(SHIPPED / "places")


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    """A private copy of the shipped knowledge folder to import into."""
    target = tmp_path / "knowledge"
    shutil.copytree(SHIPPED, target)
    return target


def _import(kb: Path, places: Gazetteer, source: Path = SAMPLE, **options: object) -> ImportReport:
    return run_import(
        ImportOptions(source=source, into=kb, checked_on=CHECKED, **options),  # type: ignore[arg-type]
        places,
    )


def _rows(kb: Path) -> dict[str, dict[str, str]]:
    text = (kb / "digital_centres.csv").read_text("utf-8")
    return {row["id"]: row for row in csv.DictReader(io.StringIO(text))}


def _by_name(kb: Path) -> dict[str, dict[str, str]]:
    return {row["name_th"]: row for row in _rows(kb).values() if row["id"] not in SHIPPED_IDS}


def _write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8", sep: str = ",") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


# -- the sample file ---------------------------------------------------------------------------


def test_sample_rows_are_imported_and_placed(kb: Path, places: Gazetteer) -> None:
    report = _import(kb, places)
    assert report.exit_code == 0
    assert report.header_line == 3
    assert "cp874" in report.description
    assert report.rows_read == 13
    assert (len(report.imported), report.new, report.updated, report.unchanged) == (8, 8, 0, 0)
    assert report.placed("coordinates") == 3
    assert report.placed("subdistrict") == 4
    assert report.placed("district") == 1
    assert report.swapped == 1
    assert report.written

    rows = _by_name(kb)
    assert set(rows) == {
        MUNICIPALITY,
        SAO,
        SCHOOL,
        TEMPLE,
        NFE,
        LIBRARY,
        DISTRICT_OFFICE,
        MOSQUE,
    }

    def where(row: dict[str, str]) -> tuple[str, str, str]:
        return row["province_code"], row["district_code"], row["subdistrict_code"]

    def point(row: dict[str, str]) -> tuple[float, float]:
        return float(row["location_lat"]), float(row["location_lng"])

    # Own coordinates inside Thailand: exact, from the file.
    row = rows[MUNICIPALITY]
    assert where(row) == ("50", "5001", "500101")
    assert point(row) == (18.7961, 98.9868)
    assert row["location_precision"] == "exact"
    assert row["location_source"] == "import: official_centres_sample.csv"
    assert row["host_type"] == "municipality"
    assert row["opened_on"] == "2017-02-01"  # 01/02/2560 BE, day first
    assert row["status"] == "active"
    assert row["postal_code"] == "50200"
    assert row["contact_phone"] == "053-259000"
    assert row["address_th"] == "1 ถนนวังสิงห์คำ"

    # Swapped in the file: put right, still exact.
    row = rows[TEMPLE]
    assert where(row) == ("50", "5001", "500102")
    assert point(row) == (18.7886, 98.982)
    assert row["location_precision"] == "exact"
    assert "official_centres_sample.csv" in row["location_source"]
    assert row["host_type"] == "temple"

    # Thai digits and a Buddhist-era date in Thai digits.
    row = rows[NFE]
    assert where(row) == ("90", "9001", "900101")
    assert point(row) == (7.1985, 100.5951)
    assert row["postal_code"] == "90000"
    assert row["contact_phone"] == "074-311015"
    assert row["opened_on"] == "2025-06-13"
    assert (row["host_type"], row["status"]) == ("nfe", "active")

    # No coordinates: the subdistrict's reference point, names with and without prefixes.
    for name, code, host in (
        (SAO, "650113", "sao"),
        (SCHOOL, "410101", "school"),  # "อ.เมือง" + อุดรธานี is เมืองอุดรธานี
        (MOSQUE, "960101", "mosque"),  # a DOPA code instead of names
    ):
        row = rows[name]
        sub = places.subdistricts[code]
        assert where(row) == (sub.province_code, sub.district_code, code), name
        assert point(row) == (sub.lat, sub.lng), name
        assert row["location_precision"] == "subdistrict_ref", name
        assert f"{code} ({sub.name_th})" in row["location_source"], name
        assert row["host_type"] == host, name
        if len(sub.postal_codes) == 1:
            assert row["postal_code"] == sub.postal_codes[0]
            assert "postal_code" in row["provenance_unverified_fields"].split(";")

    # A khwaeng whose own point is a fallback keeps that point's precision.
    row = rows[LIBRARY]
    sub = places.subdistricts["100910"]
    assert where(row) == ("10", "1009", "100910")
    assert point(row) == (sub.lat, sub.lng)
    assert row["location_precision"] == sub.coord_precision
    assert row["host_type"] == "library"
    assert row["opened_on"] == "2025-06-13"  # 2568-06-13 BE

    # Only a district: its point.
    row = rows[DISTRICT_OFFICE]
    district = places.districts["5017"]
    assert where(row) == ("50", "5017", "")
    assert point(row) == (district.lat, district.lng)
    assert row["location_precision"] == district.coord_precision  # district_mean, or manual
    assert row["host_type"] == "government_office"

    for name, row in rows.items():
        area = row["subdistrict_code"] or row["district_code"]
        assert row["id"] == centre_id(area, name)
        assert row["id"].isascii()
        assert row["operator"] == "ONDE"
        assert row["provenance_status"] == "sample"
        assert row["provenance_last_checked"] == CHECKED.isoformat()
        assert row["provenance_facts_as_of"] == CHECKED.isoformat()
        if name != MOSQUE:
            assert row["status"] in ("active", "unknown")
    assert rows[MOSQUE]["status"] == "unknown"  # "ปิดปรับปรุง" is not in the table


def test_rows_that_cannot_be_placed_are_reported_with_their_lines(
    kb: Path, places: Gazetteer
) -> None:
    report = _import(kb, places)
    skipped = {(p.line, p.field): p.message for p in report.skipped}
    assert list(skipped) == [
        (11, "province"),
        (12, "subdistrict"),
        (13, "name_th"),
        (14, "location"),
        (15, "name_th"),
    ]
    assert skipped[(11, "province")] == "'จังหวัดสมมุติ' is not a known province"
    nong_bua = [
        s.code
        for d in places.districts_of("32")
        for s in places.subdistricts_of(d.code)
        if s.name_th == "หนองบัว"
    ]
    assert len(nong_bua) > 1
    message = skipped[(12, "subdistrict")]
    assert message.startswith(f"'ต.หนองบัว' matches {len(nong_bua)} subdistricts in สุรินทร์ (32)")
    assert all(code in message for code in nong_bua)
    assert message.endswith("fill in the district")
    assert skipped[(13, "name_th")] == "empty; every centre needs its Thai name"
    assert "(1.2345, 80.1234) are outside Thailand" in skipped[(14, "location")]
    assert "province: missing" in skipped[(14, "location")]
    assert skipped[(15, "name_th")].startswith("duplicate of line 4 ")

    printed = report.lines()
    assert f"{SAMPLE_LABEL}:11: province: 'จังหวัดสมมุติ' is not a known province" in [
        line.strip() for line in printed
    ]
    assert "rows read: 13" in printed
    assert "imported: 8 (new 8, updated 0, unchanged 0)" in printed
    assert "  placed by coordinates: 3 (swapped latitude/longitude fixed: 1)" in printed
    assert "  placed by subdistrict: 4" in printed
    assert "  placed by district: 1" in printed
    assert "skipped: 5" in printed
    assert "unmapped columns (not imported): ลำดับ, หมายเหตุ" in printed
    notes = {(p.line, p.field): p.message for p in report.notes}
    assert notes[(7, "lat/lng")].startswith("latitude and longitude were swapped")
    assert "ปิดปรับปรุง" in notes[(16, "status")]
    # A hand-made centre in the same subdistrict may be the same centre: say so.
    assert "dcc-650113-sao-ban-krang" in notes[(5, "id")]
    assert any("no --source-url" in w for w in report.warnings)


def test_existing_centres_are_kept_and_the_result_is_valid(kb: Path, places: Gazetteer) -> None:
    before = _rows(kb)
    _import(kb, places)
    after = _rows(kb)
    assert set(before) <= set(after)
    for ident, row in before.items():
        assert after[ident] == row
    assert len(after) == len(before) + 8
    text = (kb / "digital_centres.csv").read_text("utf-8")
    assert text.splitlines()[0] == ",".join(CENTRE_COLUMNS)
    assert list(after) == sorted(after)
    result = load_knowledge(kb)
    assert result.problems == []
    assert result.knowledge is not None
    assert result.knowledge.counts["digital_centres"] == len(before) + 8
    assert not [p for p in kb.iterdir() if p.name.endswith(".tmp")]


def test_reimport_is_idempotent_and_updates_in_place(
    kb: Path, places: Gazetteer, tmp_path: Path
) -> None:
    _import(kb, places)
    first = (kb / "digital_centres.csv").read_bytes()
    again = _import(kb, places)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 8)
    assert not again.written
    assert again.exit_code == 0
    assert (kb / "digital_centres.csv").read_bytes() == first
    assert any("already up to date" in line for line in again.lines())

    # A new release of the list with a changed phone number updates that one row.
    text = SAMPLE.read_bytes().decode("cp874").replace("053-259000", "053-111222")
    changed = tmp_path / "official_centres_sample.csv"
    changed.write_bytes(text.encode("cp874"))
    update = _import(kb, places, source=changed)
    assert (update.new, update.updated, update.unchanged) == (0, 1, 7)
    rows = _rows(kb)
    assert len(rows) == len(SHIPPED_IDS) + 8
    assert _by_name(kb)[MUNICIPALITY]["contact_phone"] == "053-111222"


def test_dry_run_writes_nothing(kb: Path, places: Gazetteer) -> None:
    target = kb / "digital_centres.csv"
    before = target.read_bytes()
    stamp = target.stat().st_mtime_ns
    report = _import(kb, places, dry_run=True)
    assert report.exit_code == 0
    assert len(report.imported) == 8
    assert not report.written
    assert target.read_bytes() == before
    assert target.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in kb.iterdir()) == sorted(p.name for p in SHIPPED.iterdir())
    assert report.lines()[-1].startswith("dry run: nothing written;")
    assert report.lines()[-1].endswith(
        f"would have {len(SHIPPED_IDS) + 8} centres ({len(SHIPPED_IDS)} kept, 8 imported)"
    )


def test_an_invalid_result_is_not_written(kb: Path, places: Gazetteer) -> None:
    before = (kb / "digital_centres.csv").read_bytes()
    report = _import(kb, places, operator="NOSUCHAGENCY")
    assert report.exit_code == 1
    assert report.invalid
    assert (kb / "digital_centres.csv").read_bytes() == before
    messages = [str(p) for p in report.errors]
    assert any(
        "operator: unknown agency 'NOSUCHAGENCY'" in m and f"(from {SAMPLE_LABEL}:4)" in m
        for m in messages
    )
    assert str(kb) in messages[0]  # the problems name the real folder, not the temporary copy
    assert "would not be valid; nothing was written" in "\n".join(report.lines())


def test_verified_needs_a_source_url(kb: Path, places: Gazetteer) -> None:
    report = _import(kb, places, status="verified")
    assert report.exit_code == 1
    assert [p.field for p in report.errors] == ["--status"]


def test_nothing_importable_exits_1(kb: Path, places: Gazetteer, tmp_path: Path) -> None:
    source = _write_csv(
        tmp_path / "bad.csv",
        [["ชื่อศูนย์", "จังหวัด"], ["ศูนย์ดิจิทัลชุมชนสมมุติ", "ไม่มีจังหวัดนี้"]],
    )
    before = (kb / "digital_centres.csv").read_bytes()
    report = _import(kb, places, source=source)
    assert report.exit_code == 1
    assert (kb / "digital_centres.csv").read_bytes() == before
    assert report.lines()[-1] == "nothing could be imported; nothing was written"


# -- the command line --------------------------------------------------------------------------


def _import_command(kb: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``bot kb import-centres`` of the sample list into ``kb``."""
    return run_bot("kb", "import-centres", str(SAMPLE), "--into", str(kb), *options, timeout=120)


def test_command_line(kb: Path) -> None:
    url = "https://www.onde.go.th/view/1/centres/TH"
    done = _import_command(kb, "--source-url", url, "--as-of", "13/06/2568")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith(f"read {SAMPLE}: CSV, cp874 (TIS-620), comma-separated")
    assert "imported: 8 (new 8, updated 0, unchanged 0)" in out
    assert f"  {SAMPLE}:12: subdistrict: 'ต.หนองบัว' matches" in "\n".join(out)
    assert out[-1] == (
        f"wrote {kb / 'digital_centres.csv'}: {len(SHIPPED_IDS) + 8} centres "
        f"({len(SHIPPED_IDS)} kept, 8 imported)"
    )
    rows = _by_name(kb)
    assert {row["provenance_status"] for row in rows.values()} == {"verified"}
    assert {row["provenance_source_urls"] for row in rows.values()} == {url}
    assert {row["provenance_facts_as_of"] for row in rows.values()} == {"2025-06-13"}
    assert load_knowledge(kb).problems == []

    dry = _import_command(kb, "--map", "ชื่อ=nonsense", "--dry-run")
    assert dry.returncode == 1
    assert "--map: 'ชื่อ=nonsense': unknown field 'nonsense'" in dry.stdout


# -- other shapes of the list ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "sep"), [("utf-8-sig", ","), ("utf-8", ";"), ("utf-16", "\t")]
)
def test_other_encodings_give_the_same_rows(
    kb: Path, places: Gazetteer, tmp_path: Path, encoding: str, sep: str
) -> None:
    rows = list(csv.reader(io.StringIO(SAMPLE.read_bytes().decode("cp874"), newline="")))
    source = _write_csv(tmp_path / SAMPLE.name, rows, encoding, sep)
    report = _import(kb, places, source=source, dry_run=True)
    reference = _import(kb, places, dry_run=True)
    assert [dict(r.cells) for r in report.imported] == [dict(r.cells) for r in reference.imported]
    assert [(p.line, p.field) for p in report.skipped] == [
        (p.line, p.field) for p in reference.skipped
    ]


def test_excel_workbook(kb: Path, places: Gazetteer, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    cover = workbook.active
    cover.title = "คำอธิบาย"
    cover["A1"] = "รายชื่อศูนย์ดิจิทัลชุมชน ปีงบประมาณ 2568"
    sheet = workbook.create_sheet("รายชื่อศูนย์")
    sheet.append(["รายชื่อศูนย์ดิจิทัลชุมชน"])
    sheet.append([])
    sheet.append(
        [
            "ที่",
            "ชื่อศูนย์ดิจิทัลชุมชน",
            "ตำบล/แขวง",
            "อำเภอ/เขต",
            "จังหวัด",
            "รหัสตำบล",
            "ละติจูด (Latitude)",
            "ลองจิจูด (Longitude)",
            "วันที่ก่อตั้ง",
            "รหัสไปรษณีย์",
        ]
    )
    sheet.append(
        [
            1,
            "ศูนย์ดิจิทัลชุมชนวัดบ้านเวียง",
            "เวียง",
            "เมืองเชียงราย",
            "เชียงราย",
            None,
            19.9105,
            99.8406,
            dt.datetime(2017, 2, 1),
            57000,
        ]
    )
    sheet.append(
        [
            2,
            "ศูนย์ดิจิทัลชุมชนโรงเรียนบ้านบางนาค",
            None,
            None,
            None,
            960101,
            None,
            None,
            "13 มิ.ย. 2568",
            None,
        ]
    )
    sheet.append([3, "ศูนย์ดิจิทัลชุมชนตำบลหนองบัว", "หนองบัว", None, "สุรินทร์"])
    path = tmp_path / "รายชื่อศูนย์.xlsx"
    workbook.save(path)

    report = _import(kb, places, source=path)
    assert report.exit_code == 0, report.lines()
    assert report.description == "Excel sheet 'รายชื่อศูนย์'"
    assert report.header_line == 3
    assert dict(report.mapped)["ละติจูด (Latitude)"] == "lat"
    assert dict(report.mapped)["ตำบล/แขวง"] == "subdistrict"
    assert [(p.line, p.field) for p in report.skipped] == [(6, "subdistrict")]
    rows = _by_name(kb)
    temple = rows["ศูนย์ดิจิทัลชุมชนวัดบ้านเวียง"]
    assert (temple["district_code"], temple["location_precision"]) == ("5701", "exact")
    assert (float(temple["location_lat"]), float(temple["location_lng"])) == (19.9105, 99.8406)
    assert (temple["opened_on"], temple["postal_code"], temple["host_type"]) == (
        "2017-02-01",
        "57000",
        "temple",
    )
    school = rows["ศูนย์ดิจิทัลชุมชนโรงเรียนบ้านบางนาค"]
    assert (school["subdistrict_code"], school["opened_on"]) == ("960101", "2025-06-13")
    assert school["location_precision"] == "subdistrict_ref"

    wrong = _import(kb, places, source=path, sheet="Sheet9")
    assert wrong.exit_code == 1
    assert "no sheet 'Sheet9'" in wrong.errors[0].message


def test_placing_edge_cases(kb: Path, places: Gazetteer, tmp_path: Path) -> None:
    header = ["ชื่อ ศูนย์ฯ", "แขวง/ตำบล", "เขต/อำเภอ", "จังหวัด", "รหัสพื้นที่", "พิกัด", "ประเภท"]
    source = _write_csv(
        tmp_path / "edge.csv",
        [
            ["ชื่อเอกสาร: ทดสอบ"],
            header,
            # 3: Bangkok by nickname, khet and khwaeng prefixes
            ["ศูนย์ฯ สีลม", "แขวงสีลม", "เขตบางรัก", "กทม.", "", "", ""],
            # 4: an 8-digit village code gives the subdistrict; "lat, lng" in one cell
            ["ศูนย์ฯ หมู่ 5", "", "", "", "50010105", "18.80, 98.99", "ที่ทำการหมู่บ้าน"],
            # 5: a code and a province name that disagree
            ["ศูนย์ฯ ขัดกัน", "", "", "เชียงราย", "500101", "", ""],
            # 6: a misspelt subdistrict inside a known district
            ["ศูนย์ฯ สะกดผิด", "ต.ศรีภูมี", "อ.เมืองเชียงใหม่", "เชียงใหม่", "", "", ""],
            # 7: coordinates in another region: the named subdistrict wins, with a note
            ["ศูนย์ฯ ไกล", "ศรีภูมิ", "เมืองเชียงใหม่", "เชียงใหม่", "", "13.75, 100.50", ""],
            # 8: a province only
            ["ศูนย์ฯ จังหวัด", "", "", "เชียงใหม่", "", "", ""],
            # 9: an unknown subdistrict code
            ["ศูนย์ฯ รหัสผิด", "", "", "", "999999", "", ""],
            # 10: a map link; about 40 km away: kept, with a note
            ["ศูนย์ฯ ลิงก์", "", "", "", "500101", "https://maps.google.com/@18.45,98.99,17z", ""],
            # 11: an unquoted comma shifted the cells
            ["ศูนย์ฯ เลื่อน", "ศรีภูมิ", "เมืองเชียงใหม่", "เชียงใหม่", "", "18.79", "98.98", "x"],
        ],
    )
    report = _import(kb, places, source=source, mapping=["ประเภท=host_type"])
    assert report.header_line == 2
    rows = _by_name(kb)
    assert rows["ศูนย์ฯ สีลม"]["subdistrict_code"] == "100402"
    village = rows["ศูนย์ฯ หมู่ 5"]
    assert (village["subdistrict_code"], village["location_precision"]) == ("500101", "exact")
    assert village["host_type"] == "village_office"
    assert "host_type" not in village["provenance_unverified_fields"]
    assert rows["ศูนย์ฯ สะกดผิด"]["subdistrict_code"] == "500101"
    assert rows["ศูนย์ฯ ไกล"]["location_precision"] == "subdistrict_ref"
    link = rows["ศูนย์ฯ ลิงก์"]
    assert (link["location_lat"], link["location_lng"], link["location_precision"]) == (
        "18.45",
        "98.99",
        "exact",
    )
    skipped = {p.line: (p.field, p.message) for p in report.skipped}
    assert skipped[5][0] == "province"
    assert "'เชียงราย' is เชียงราย (57)" in skipped[5][1]
    assert skipped[8] == (
        "district",
        "missing; a district (or subdistrict) of เชียงใหม่ (50) is needed",
    )
    assert skipped[9] == ("subdistrict_code", "unknown subdistrict code '999999'")
    assert skipped[11][0] == "(row)"
    notes = {p.line: p.message for p in report.notes}
    assert "km from the point of ศรีภูมิ (500101) named in the row; ignored" in notes[7]
    assert "km from the point of ศรีภูมิ (500101); check the coordinates" in notes[10]


def test_map_override_and_unknown_header(kb: Path, places: Gazetteer, tmp_path: Path) -> None:
    source = _write_csv(
        tmp_path / "odd.csv",
        [
            ["ศูนย์ที่", "จังหวัด", "อำเภอ", "ตำบล", "ที่อยู่"],
            ["ศูนย์ดิจิทัลชุมชนบ้านกร่าง", "พิษณุโลก", "เมืองพิษณุโลก", "บ้านกร่าง", "หมู่ 1"],
        ],
    )
    missing = _import(kb, places, source=source, dry_run=True)
    assert missing.exit_code == 1
    assert missing.errors[0].field == "name_th"
    report = _import(kb, places, source=source, mapping=["ศูนย์ ที่=name_th", "ที่อยู่="], dry_run=True)
    assert report.exit_code == 0
    assert report.unmapped == ()
    assert report.imported[0].cells["address_th"] == ""
    assert report.imported[0].cells["subdistrict_code"] == "650113"


def test_no_header_row(kb: Path, places: Gazetteer, tmp_path: Path) -> None:
    source = _write_csv(tmp_path / "plain.csv", [["a", "b"], ["1", "2"]])
    report = _import(kb, places, source=source)
    assert report.exit_code == 1
    assert report.errors[0].field == "(header)"


def test_a_broken_column_table_is_reported(kb: Path, places: Gazetteer) -> None:
    table = (SHIPPED / COLUMNS_FILE).read_text("utf-8")
    table = table.replace("  name_en: [", "  name_en: [จังหวัด, ", 1)
    (kb / COLUMNS_FILE).write_text(table + "\nextra: 1\n", "utf-8")
    report = _import(kb, places)
    assert report.exit_code == 1
    fields = [p.field for p in report.errors]
    assert "columns.name_en.0" in fields or "columns.province.0" in fields
    assert "extra" in fields


# -- the small pieces --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13/06/2568", dt.date(2025, 6, 13)),
        ("๑๓/๐๖/๒๕๖๘", dt.date(2025, 6, 13)),
        ("2568-06-13", dt.date(2025, 6, 13)),
        ("2025-06-13 00:00:00", dt.date(2025, 6, 13)),
        ("13 มิ.ย. 2568", dt.date(2025, 6, 13)),
        ("1 กุมภาพันธ์ 2560", dt.date(2017, 2, 1)),
        ("13-6-2025", dt.date(2025, 6, 13)),
        ("31/02/2568", None),
        ("13/06/68", None),
        ("เร็ว ๆ นี้", None),
    ],
)
def test_parse_date(text: str, expected: dt.date | None) -> None:
    months = {header_key("มิ.ย."): 6, header_key("กุมภาพันธ์"): 2}
    date, problem = parse_date(text, months)
    assert date == expected
    assert (problem is None) == (expected is not None)


def test_normalisation() -> None:
    assert thai_digits_to_ascii("๐๗๔-๓๑๑๐๑๕") == "074-311015"
    assert header_key("อำเภอ/เขต") == header_key("อำเภอเขต")
    assert header_key(" ชื่อ ศูนย์ฯ ") == header_key("ชื่อศูนย์")
    assert header_key("Latitude") == "latitude"
    assert centre_id("500101", "ศูนย์ฯ อบต.X") == centre_id("500101", "ศูนย์ฯอบต. X")
