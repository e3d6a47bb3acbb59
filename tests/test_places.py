"""The places tables, their generator, and the gazetteer's lookups by code, point and name."""

from __future__ import annotations

import csv
import dataclasses
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bot.kb.geo import haversine_km, in_thailand
from bot.kb.places import (
    Gazetteer,
    PlaceMatch,
    PlaceResult,
    clean_text,
    iter_areas,
    name_key,
)
from tests.helpers import sphere_km

ROOT = Path(__file__).resolve().parent.parent
PLACES = ROOT / "knowledge" / "places"
SHARED_DATA = ROOT.parent / "shared" / "data"
GENERATED = (
    "provinces.csv",
    "districts.csv",
    "subdistricts.csv",
    "LICENSE-thailand-geodata.txt",
    "NOTICE-geothai.txt",
)
PRECISIONS = {"subdistrict_ref", "district_mean", "province_mean", "manual"}


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.load()


def _rows(name: str) -> list[dict[str, str]]:
    with (PLACES / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# -- the tables -----------------------------------------------------------------------------------


class TestTables:
    def test_counts(self, gaz: Gazetteer) -> None:
        assert len(gaz.provinces) == 77
        assert len(gaz.districts) == 928
        assert len(gaz.subdistricts) == 7436

    def test_every_area_has_a_point_in_thailand(self, gaz: Gazetteer) -> None:
        for area in iter_areas(gaz):
            assert in_thailand(area.lat, area.lng), area
            assert area.coord_precision in PRECISIONS, area
            assert round(area.lat, 4) == area.lat and round(area.lng, 4) == area.lng

    def test_codes_match_parents(self, gaz: Gazetteer) -> None:
        for district in gaz.districts.values():
            assert len(district.code) == 4 and district.code[:2] == district.province_code
            assert district.province_code in gaz.provinces
            assert gaz.subdistricts_of(district.code), district.code
        for sub in gaz.subdistricts.values():
            assert len(sub.code) == 6 and sub.code[:4] == sub.district_code
            assert sub.code[:2] == sub.province_code
            assert sub.postal_codes and all(len(p) == 5 and p.isdigit() for p in sub.postal_codes)
        for province in gaz.provinces.values():
            assert len(province.code) == 2 and gaz.districts_of(province.code)
            assert province.abbr_th and province.abbr_en
            assert province.coord_precision == "province_mean" and province.n_points > 0

    def test_precision_counts(self, gaz: Gazetteer) -> None:
        counts: dict[str, int] = {}
        for sub in gaz.subdistricts.values():
            counts[sub.coord_precision] = counts.get(sub.coord_precision, 0) + 1
        assert counts["subdistrict_ref"] + counts["manual"] >= 7351
        assert counts["subdistrict_ref"] + counts.get("district_mean", 0) + counts["manual"] == 7436
        assert "province_mean" not in counts  # every district without points is overridden
        assert sum(p.n_points for p in gaz.provinces.values()) == 7351

    def test_bangkok_example_values(self, gaz: Gazetteer) -> None:
        bangkok = gaz.province("10")
        assert (bangkok.abbr_th, bangkok.abbr_en, bangkok.n_points) == ("กทม", "BKK", 152)
        assert (bangkok.lat, bangkok.lng) == (13.7578, 100.5559)
        dusit = gaz.district("1002")
        assert (dusit.name_th, dusit.name_th_short, dusit.coord_precision) == (
            "เขตดุสิต",
            "ดุสิต",
            "district_mean",
        )
        chitlada = gaz.subdistrict("100203")
        assert chitlada.postal_codes == ("10300", "10303")
        assert (chitlada.lat, chitlada.lng, chitlada.coord_precision) == (
            13.767,
            100.52,
            "subdistrict_ref",
        )
        assert "Pak Nam" in gaz.subdistrict("110101").aliases
        assert "ไผ่จำศีล" in gaz.subdistrict("150601").aliases
        assert "สบโขง" in gaz.subdistrict("501805").aliases

    def test_overrides_are_applied(self, gaz: Gazetteer) -> None:
        overrides = _rows("overrides.csv")
        assert overrides
        for row in overrides:
            sub = gaz.subdistrict(row["code"])
            assert sub.coord_precision == "manual", row["code"]
            assert (sub.lat, sub.lng) == (round(float(row["lat"]), 4), round(float(row["lng"]), 4))
            assert row["note"].startswith("manual, approximate")
        codes = {row["code"] for row in overrides}
        # districts with no source point at all get real points, not the province mean
        for district in ("1047", "1050", "4029"):
            assert {s.code for s in gaz.subdistricts_of(district)} <= codes
            assert gaz.district(district).coord_precision == "manual"

    def test_ko_tao_is_not_on_ko_phangan(self, gaz: Gazetteer) -> None:
        ko_tao = gaz.subdistrict("840503")
        assert ko_tao.name_th == "เกาะเต่า" and ko_tao.coord_precision == "manual"
        assert ko_tao.lat == pytest.approx(10.09, abs=0.03)
        assert ko_tao.lng == pytest.approx(99.84, abs=0.03)
        for other in ("840501", "840502"):  # Ko Pha-ngan's own subdistricts
            sub = gaz.subdistrict(other)
            assert haversine_km(ko_tao.lat, ko_tao.lng, sub.lat, sub.lng) > 30

    def test_manual_bangkok_points_sit_among_their_neighbours(self, gaz: Gazetteer) -> None:
        # Bang Na lies between Phra Khanong, Prawet and Samut Prakan; Bang Bon next to Bang Khae
        for code, neighbour in (
            ("104702", "100905"),
            ("104703", "110102"),
            ("105003", "104004"),
            ("105005", "103503"),
        ):
            a, b = gaz.subdistrict(code), gaz.subdistrict(neighbour)
            assert haversine_km(a.lat, a.lng, b.lat, b.lng) < 8, code

    def test_names_are_already_normal(self, gaz: Gazetteer) -> None:
        """The loader keys names without pythainlp's normaliser; queries go through it."""
        for area in iter_areas(gaz):
            assert name_key(clean_text(area.name_th)) == name_key(area.name_th), area.code

    def test_source_and_licences_are_kept(self) -> None:
        source = (PLACES / "SOURCE.md").read_text(encoding="utf-8")
        for needle in (
            "CC BY 4.0",
            "GeoThai",
            "2026.10.23",
            "Pongsakorn Thipayanate",
            "MIT",
            "Tom Dhanabhon",
            "CC0",
            "build_places.py",
        ):
            assert needle.lower() in source.lower(), needle
        assert "Tom Dhanabhon" in (PLACES / "LICENSE-thailand-geodata.txt").read_text("utf-8")
        assert "Creative Commons" in (PLACES / "NOTICE-geothai.txt").read_text("utf-8")

    def test_operator_lists_are_valid(self, gaz: Gazetteer) -> None:
        for row in _rows("nicknames.csv"):
            area = gaz.get(row["code"])
            assert area.level == row["level"], row
            assert row["name"] in area.aliases
        words = [row["word"] for row in _rows("common_words.csv")]
        assert len(words) == len(set(words))
        assert "เลย" in words and "ตลาด" in words


@pytest.mark.skipif(
    not (SHARED_DATA / "geothai" / "subdistricts.json").is_file(),
    reason=f"source data not found at {SHARED_DATA}: cannot rebuild the places tables",
)
class TestGenerator:
    def _build(self, out: Path) -> None:
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "build_places.py"),
                "--source",
                str(SHARED_DATA),
                "--out",
                str(out),
                "--quiet",
            ],
            check=True,
            cwd=ROOT,
        )

    def test_committed_files_are_up_to_date_and_deterministic(self, tmp_path: Path) -> None:
        self._build(tmp_path / "a")
        self._build(tmp_path / "b")
        for name in GENERATED:
            fresh = (tmp_path / "a" / name).read_bytes()
            assert fresh == (tmp_path / "b" / name).read_bytes(), f"{name} is not deterministic"
            assert fresh == (PLACES / name).read_bytes(), (
                f"knowledge/places/{name} is stale: run scripts/build_places.py"
            )

    def test_point_outside_thailand_fails_loudly(self, tmp_path: Path) -> None:
        bad = tmp_path / "overrides.csv"
        bad.write_text("code,lat,lng,note\n840503,1.35,103.8,Singapore by mistake\n", "utf-8")
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "build_places.py"),
                "--source",
                str(SHARED_DATA),
                "--out",
                str(tmp_path / "out"),
                "--overrides",
                str(bad),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert result.returncode == 1
        assert "outside Thailand" in result.stderr
        assert not (tmp_path / "out" / "subdistricts.csv").exists()


# -- codes and names for display ------------------------------------------------------------------


class TestLookups:
    def test_get_by_code_length(self, gaz: Gazetteer) -> None:
        assert gaz.get("50").name_th == "เชียงใหม่"
        assert gaz.get("9011").name_th == "หาดใหญ่"
        assert gaz.get("100101").name_th == "พระบรมมหาราชวัง"
        for bad in ("", "1", "99", "123", "999999"):
            with pytest.raises(KeyError):
                gaz.get(bad)

    def test_children(self, gaz: Gazetteer) -> None:
        assert len(gaz.districts_of("10")) == 50
        assert [d.code for d in gaz.districts_of("10")][:2] == ["1001", "1002"]
        assert {s.code for s in gaz.subdistricts_of("1047")} == {"104702", "104703"}
        assert gaz.districts_of("00") == ()
        assert gaz.capital_district("50") == gaz.district("5001")
        assert gaz.capital_district("14") == gaz.district("1401")
        assert gaz.capital_district("10") is None

    def test_area_names_outside_bangkok(self, gaz: Gazetteer) -> None:
        assert gaz.area_names("901101") == {
            "subdistrict": "หาดใหญ่",
            "subdistrict_prefix": "ต.",
            "district": "หาดใหญ่",
            "district_prefix": "อ.",
            "province": "สงขลา",
            "province_prefix": "จ.",
        }

    def test_area_names_in_bangkok(self, gaz: Gazetteer) -> None:
        assert gaz.area_names("100101") == {
            "subdistrict": "พระบรมมหาราชวัง",
            "subdistrict_prefix": "แขวง",
            "district": "พระนคร",
            "district_prefix": "เขต",
            "province": "กรุงเทพมหานคร",
            "province_prefix": "",
        }

    def test_area_names_of_larger_areas(self, gaz: Gazetteer) -> None:
        assert gaz.area_names("5001") == {
            "district": "เมืองเชียงใหม่",
            "district_prefix": "อ.",
            "province": "เชียงใหม่",
            "province_prefix": "จ.",
        }
        assert gaz.area_names("10") == {"province": "กรุงเทพมหานคร", "province_prefix": ""}

    def test_immutable(self, gaz: Gazetteer) -> None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            gaz.province("10").name_th = "x"  # type: ignore[misc]
        with pytest.raises(TypeError):
            gaz.provinces["99"] = gaz.province("10")  # type: ignore[index]
        with pytest.raises(dataclasses.FrozenInstanceError):
            gaz.provinces = {}  # type: ignore[misc]


# -- points ---------------------------------------------------------------------------------------


class TestNearest:
    @pytest.mark.parametrize(
        ("lat", "lng", "code"),
        [
            (13.7500, 100.4913, "100101"),  # the Grand Palace -> Phra Borom Maha Ratchawang
            (7.0086, 100.4747, "901101"),  # Hat Yai town
            (13.7465, 100.5347, "100703"),  # Siam -> Pathum Wan
            (10.0900, 99.8381, "840503"),  # Ko Tao, a manual point
        ],
    )
    def test_known_points(self, gaz: Gazetteer, lat: float, lng: float, code: str) -> None:
        sub, km = gaz.nearest_subdistrict(lat, lng)
        assert sub.code == code
        assert km == pytest.approx(sphere_km(lat, lng, sub.lat, sub.lng), abs=1e-9)

    def test_grand_palace_distance_by_hand(self, gaz: Gazetteer) -> None:
        sub, km = gaz.nearest_subdistrict(13.7500, 100.4913)
        # point 13.751 N 100.492 E: dlat 0.001 deg = 0.11119 km, dlng 0.0007 deg * cos(13.75)
        # = 0.07560 km, so about sqrt(0.11119^2 + 0.07560^2) = 0.13446 km
        assert (sub.lat, sub.lng) == (13.751, 100.492)
        assert km == pytest.approx(0.134464, abs=1e-6)

    def test_only_real_points_are_candidates(self, gaz: Gazetteer) -> None:
        # 300101 ในเมือง (Korat) has only a district-mean point: never "the nearest"
        korat = gaz.subdistrict("300101")
        assert korat.coord_precision == "district_mean"
        sub, _ = gaz.nearest_subdistrict(korat.lat, korat.lng)
        assert sub.code != "300101"

    def test_equals_brute_force(self, gaz: Gazetteer) -> None:
        real = [
            s
            for s in gaz.subdistricts.values()
            if s.coord_precision in ("subdistrict_ref", "manual")
        ]
        rng = random.Random(11)
        for _ in range(200):
            lat, lng = rng.uniform(5.6, 20.4), rng.uniform(97.4, 105.6)
            want = min(real, key=lambda s: (haversine_km(lat, lng, s.lat, s.lng), s.code))
            _, km = gaz.nearest_subdistrict(lat, lng)
            assert km == pytest.approx(haversine_km(lat, lng, want.lat, want.lng), abs=1e-9)
        near = gaz.nearest_subdistricts(13.75, 100.5, k=3)
        assert len(near) == 3 and near[0][1] <= near[1][1] <= near[2][1]


# -- typed names ----------------------------------------------------------------------------------


def _best(result: PlaceResult) -> tuple[str, str]:
    assert result.best is not None, result
    return result.best.level, result.best.code


class TestResolve:
    @pytest.mark.parametrize(
        ("text", "level", "code"),
        [
            ("เชียงไหม่", "province", "50"),
            ("กทม", "province", "10"),
            ("กทม.", "province", "10"),
            ("กรุงเทพฯ", "province", "10"),
            ("Bangkok", "province", "10"),
            ("BKK", "province", "10"),
            ("โคราช", "province", "30"),
            ("อุบล", "province", "34"),
            ("สุราษฎร์", "province", "84"),
            ("สุราษ", "province", "84"),
            ("อยุธยา", "province", "14"),
            ("นครศรี", "province", "80"),
            ("สุพรรณ", "province", "72"),
            ("ขอนแก่น", "province", "40"),
            ("ขอนแก่ง", "province", "40"),
            ("หนองบัวลำพู", "province", "39"),
            ("Chiang Mai", "province", "50"),
            ("chiangmai", "province", "50"),
            ("ＣＨＩＡＮＧ　ＭＡＩ", "province", "50"),  # full-width letters and space
            ("หาดใหญ่", "district", "9011"),
            ("Hat Yai", "district", "9011"),
            ("หาดไหญ่", "district", "9011"),
            ("เมืองเชียงใหม่", "district", "5001"),
            ("เมืองโคราช", "district", "3001"),
            ("เขตบางนา", "district", "1047"),
            ("พัทยา", "district", "2004"),
            ("จ.ป.ร.", "subdistrict", "850406"),
        ],
    )
    def test_single_answer(self, gaz: Gazetteer, text: str, level: str, code: str) -> None:
        assert _best(gaz.resolve(text)) == (level, code)

    def test_district_implies_its_province(self, gaz: Gazetteer) -> None:
        result = gaz.resolve("หาดใหญ่")
        assert _best(result) == ("district", "9011")
        assert (result.province_code, result.district_code) == ("90", "9011")
        assert not result.ambiguous

    def test_exact_and_fuzzy_scores(self, gaz: Gazetteer) -> None:
        exact = gaz.resolve("เชียงใหม่").best
        fuzzy = gaz.resolve("เชียงไหม่").best
        assert exact is not None and exact.exact and exact.score == 1.0
        assert fuzzy is not None and not fuzzy.exact and 0.8 <= fuzzy.score < 1.0

    def test_ambiguous_subdistrict_name(self, gaz: Gazetteer) -> None:
        result = gaz.resolve("หนองบัว")
        assert result.ambiguous and result.best is None
        subdistricts = [c for c in result.candidates if c.level == "subdistrict"]
        assert len(subdistricts) >= 28
        assert all(c.name_th == "หนองบัว" and c.exact for c in subdistricts)
        # หนองบัวลำภู does not match as well as หนองบัว itself
        assert "39" not in {c.code for c in result.top}
        assert result.province_code is None

    @pytest.mark.parametrize(
        "text",
        [
            "จ.เชียงราย",
            "จ. เชียงราย",
            "จ เชียงราย",
            "จังหวัดเชียงราย",
            "จังหวัด เชียงราย",
            "changwat chiang rai",
            "Chiang Rai Province",
        ],
    )
    def test_province_prefixes(self, gaz: Gazetteer, text: str) -> None:
        assert _best(gaz.resolve(text)) == ("province", "57")

    @pytest.mark.parametrize(
        "text",
        [
            "อ.เมืองขอนแก่น",
            "อ. เมืองขอนแก่น",
            "อ เมืองขอนแก่น",
            "อำเภอเมืองขอนแก่น",
            "อำเภอ เมือง ขอนแก่น",
            "อ.เมือง จ.ขอนแก่น",
            "อ.เมือง ขอนแก่น",
        ],
    )
    def test_district_prefixes(self, gaz: Gazetteer, text: str) -> None:
        assert _best(gaz.resolve(text)) == ("district", "4001")

    def test_khet_and_khwaeng(self, gaz: Gazetteer) -> None:
        lumphini = next(s for s in gaz.subdistricts.values() if s.name_th == "ลุมพินี")
        for text in ("แขวงลุมพินี", "แขวง ลุมพินี", "khwaeng lumphini"):
            assert _best(gaz.resolve(text)) == ("subdistrict", lumphini.code)
        for text in ("เขตบางนา", "เขต บางนา", "khet bang na"):
            assert _best(gaz.resolve(text)) == ("district", "1047")

    def test_prefix_restricts_the_level(self, gaz: Gazetteer) -> None:
        result = gaz.resolve("อ.เมือง")
        assert result.ambiguous
        assert {c.level for c in result.candidates} == {"district"}
        assert len(result.top) == 76  # every provincial seat but Bangkok's
        sub = _best(gaz.resolve("ต.หาดใหญ่"))
        assert sub == ("subdistrict", "901101")
        assert _best(gaz.resolve("ตำบลเกาะเต่า อำเภอเกาะพะงัน")) == ("subdistrict", "840503")

    def test_parts_narrow_each_other(self, gaz: Gazetteer) -> None:
        assert _best(gaz.resolve("ต.ในเมือง อ.เมือง จ.ขอนแก่น")) == ("subdistrict", "400101")
        assert _best(gaz.resolve("หนองบัว อุดร")) == ("subdistrict", "410104")
        assert _best(gaz.resolve("Mueang Chiang Mai, Chiang Mai")) == ("district", "5001")
        assert _best(gaz.resolve("เกาะเต่า สุราษฎร์")) == ("subdistrict", "840503")

    def test_nothing(self, gaz: Gazetteer) -> None:
        for text in ("", "   ", "ครับ", "ไม่รู้ครับ", "12345", "!!!"):
            result = gaz.resolve(text)
            assert not result and result.best is None and not result.ambiguous
            assert result.province_code is None and result.district_code is None


class TestFindInText:
    @pytest.mark.parametrize(
        ("text", "level", "code"),
        [
            ("อยากหาศูนย์แถวหาดใหญ่ครับ", "district", "9011"),
            ("อยู่โคราช", "province", "30"),
            ("ร้านอยู่ อ.เมือง จ.เชียงราย", "district", "5701"),
            ("ตำบลหนองบัว อำเภอเมือง อุดร", "subdistrict", "410104"),
            ("อยู่ต.ในเมือง อ.เมือง จ.ขอนแก่น ค่ะ", "subdistrict", "400101"),
            ("ผมอยู่หาดใหญ่ สงขลา", "district", "9011"),
            ("บ้านอยู่นนท์", "province", "12"),
            ("มีคอร์สที่เชียงรายไหม", "province", "57"),
            ("ติดต่อพาณิชย์จังหวัดเชียงใหม่", "province", "50"),
            ("อยู่จังหวัดเลยครับ", "province", "42"),  # เลย counts after a prefix
            ("บ้านอยู่ จ.ตาก", "province", "63"),
            ("ร้านอยู่ อ.ลอง จ.แพร่", "district", "5403"),
            ("อยู่กรุงเทพฯ เขตบางกะปิ", "district", "1006"),
            ("อยู่แขวงสีลม เขตบางรัก", "subdistrict", "100402"),
            ("ผมอยู่ อ.หาดไหญ่ จ.สงขลา", "district", "9011"),  # misspelt after a prefix
            ("ทำงานอยู่ศรีราชา", "district", "2007"),
            ("อยู่เกาะสมุย", "district", "8404"),
            ("I'm in Hat Yai", "district", "9011"),
            ("shop in Chiang Mai please", "province", "50"),
            ("ในเขตกรุงเทพ", "province", "10"),
            ("มาหาดใหญ่พรุ่งนี้", "district", "9011"),
            ("อยากหาศูนย์แถวเลย มีที่ไหนบ้างครับ", "province", "42"),  # a cue, then a break
            ("มีคอร์สที่ตากไหมคะ", "province", "63"),
        ],
    )
    def test_finds_the_place(self, gaz: Gazetteer, text: str, level: str, code: str) -> None:
        assert _best(gaz.find_in_text(text)) == (level, code)

    def test_repeated_mentions_count_once(self, gaz: Gazetteer) -> None:
        result = gaz.find_in_text("ไปหาดใหญ่บ่อยครับ บ้านอยู่หาดใหญ่")
        assert _best(result) == ("district", "9011")

    def test_two_unrelated_places_are_ambiguous(self, gaz: Gazetteer) -> None:
        result = gaz.find_in_text("จะย้ายร้านจากเชียงใหม่ไปหาดใหญ่")
        assert result.ambiguous and {c.code for c in result.top} == {"50", "9011"}
        assert result.province_code is None

    def test_same_province_mentions_keep_the_province(self, gaz: Gazetteer) -> None:
        result = gaz.find_in_text("ต.หนองบัว จ.อุดรธานี")
        assert result.province_code == "41"

    @pytest.mark.parametrize(
        "text",
        [
            "สวัสดีครับ",
            "หวัดดีจ้า",
            "ขอบคุณมากครับ",
            "มีคอร์สอบรมขายของออนไลน์ฟรีไหมคะ",
            "อยากส่งออกทุเรียนไปจีน ต้องเริ่มยังไงครับ",
            "ศูนย์ดิจิทัลชุมชนใกล้บ้านอยู่ที่ไหน",
            "ขอเบอร์ติดต่อเจ้าหน้าที่หน่อยค่ะ",
            "สมัครเรียนการตลาดออนไลน์ได้ที่ไหนครับ",
            "ร้านกาแฟเล็ก ๆ อยากขายผ่านไลน์แมน ทำยังไงดี",
            "อยากเปิดร้านขายของชำ ต้องจดทะเบียนพาณิชย์ไหม",
            "มีทุนสนับสนุนเอสเอ็มอีบ้างไหม",
            "ขายผ้าไหมทางเฟซบุ๊ก ยอดขายไม่ค่อยดีเลย",
            "อยากเรียนทำบัญชีร้านค้าง่ายๆ",
            "ส่งสินค้าไปต่างประเทศต้องใช้เอกสารอะไรบ้าง",
            "มีโครงการจับคู่ธุรกิจไหมครับ",
            "ผมเป็นเกษตรกรปลูกมะม่วง อยากขายออนไลน์",
            "ลองแล้วแต่ไม่ได้ผลเลย",
            "มีสองร้าน อยากทำการตลาดร่วมกัน",
            "วันนี้อากาศดีนะ",
            "อยู่ในเมืองครับ",
            "ไปตลาดมาเมื่อเช้า",
            "ย้ายบ้านใหม่แล้ว",
            "ขายของที่ท่าเรือ",
            "บินจากสนามบินสุวรรณภูมิ",
            "ติดต่อสำนักงานพาณิชย์จังหวัดใกล้บ้าน",
            "อยากเรียนกับ อ.วิชัย",
            "ประชุมวันที่ 5 ต.ค. นี้",
            "ผมขายน้ำตาลมะพร้าวแท้",
            "อยากกู้เงินธนาคารมาลงทุน",
            "ร้านอยู่ริมถนนใหญ่",
            "ขายเสื้อผ้าวัยรุ่นราคาถูก",
            "ทุเรียนหมอนทองส่งจีน",
            "ขายข้าวสารถุงละห้าสิบ",
            "ทำขนมดอกไม้ขาย",
            "นาดีมากปีนี้",
            "ไม่รู้เลยครับ",
            "banana export to nanjing",
            # letters of a place name across word boundaries
            "ไม่มีเจ้าหน้าที่เลย",
            "เมื่อเช้ามายอดเงินเหลือน้อย",
            "ใช้อินเตอร์เน็ตบ้านของทรูอยู่",
            "คุณแม่คะ ช่วยดูให้หน่อย",
            "ได้โทรฟรีสองพันนาที",
            "เบอร์มีอายุโปรเท่าไหร่ครับ",
            "จองห้องแสดงคอนเสิร์ต",
            "ข่าวที่แพร่ระบาด",
            "samsung galaxy ใช้ได้ไหม",
            "Bot please remind me",
        ],
    )
    def test_ordinary_sentences_have_no_place(self, gaz: Gazetteer, text: str) -> None:
        result = gaz.find_in_text(text)
        assert result.candidates == (), [(c.level, c.code, c.name_th) for c in result.candidates]


def test_quick_normalise_check_agrees_with_pythainlp() -> None:
    """clean_text skips pythainlp's slow normalize when it would change nothing; prove it."""
    from pythainlp.util import normalize

    from bot.thai_text import NEEDS_THAI_NORMALIZE as _NEEDS_THAI_NORMALIZE

    rng = random.Random(5)
    letters = [chr(c) for c in range(0x0E01, 0x0E5C)] + [" ", " ", "a"]
    for _ in range(20_000):
        text = " ".join("".join(rng.choice(letters) for _ in range(rng.randint(1, 8))).split())
        if text and not _NEEDS_THAI_NORMALIZE.search(text):
            assert normalize(text) == text, repr(text)
    assert clean_text("เเม่ฮ่องสอน") == "แม่ฮ่องสอน"  # two sara e typed for sara ae
    assert clean_text("กรุงเทพฯ\u200b") == "กรุงเทพฯ"


def test_result_properties() -> None:
    a = PlaceMatch("subdistrict", "410104", "หนองบัว", "41", 1.0, True, "4101")
    b = PlaceMatch("subdistrict", "411701", "หนองบัว", "41", 1.0, True, "4117")
    c = PlaceMatch("district", "9011", "หาดใหญ่", "90", 1.0, True, "9011")
    assert PlaceResult("x", (a,), 1).best == a
    both = PlaceResult("x", (a, b), 2)
    assert both.best is None and both.ambiguous
    assert (both.province_code, both.district_code) == ("41", None)
    mixed = PlaceResult("x", (a, c), 2)
    assert mixed.province_code is None
    assert PlaceResult("x", (a, c), 1).top == (a,)
    assert a.is_within(PlaceMatch("province", "41", "อุดรธานี", "41", 1.0, True))
    assert not c.is_within(c)
