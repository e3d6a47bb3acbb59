"""Queries on the shipped knowledge: nearest centres, courses, programmes, dates, caveats."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from bot.kb.loader import Knowledge, load_knowledge
from bot.kb.queries import (
    BusinessProfile,
    availability,
    centres_in,
    find_courses,
    find_programmes,
    nearest_centres,
    needs_check,
    prescreen,
    thai_date,
    where_am_i,
)
from bot.kb.schemas import Provenance, Schedule
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    result = load_knowledge(ROOT / "knowledge")
    assert result.knowledge is not None, result.problems
    return result.knowledge


def _hand_haversine(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance written out independently of the code under test."""
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def test_nearest_centres_from_phitsanulok_city(kb: Knowledge) -> None:
    # Phitsanulok city hall, roughly: both Phitsanulok centres are nearest, then Sukhothai's.
    here = (16.8211, 100.2659)
    result = nearest_centres(kb, *here, k=3)
    ids = [c.id for c, _km in result]
    assert ids[:2] == ["dcc-6501-phitsanulok-pittayakhom", "dcc-650113-sao-ban-krang"]
    for centre, km in result:
        expected = _hand_haversine(*here, centre.location_lat, centre.location_lng)
        assert km == pytest.approx(expected, abs=1e-6)
    # Worked out separately (haversine, R = 6371.0088 km): 1.1645 km and 9.4966 km.
    assert result[0][1] == pytest.approx(1.1645, abs=0.001)
    assert result[1][1] == pytest.approx(9.4966, abs=0.001)
    assert [km for _c, km in result] == sorted(km for _c, km in result)


def test_nearest_centres_in_chumphon_and_bangkok(kb: Knowledge) -> None:
    chumphon = nearest_centres(kb, 10.4930, 99.1800, k=2)
    assert {c.id for c, _ in chumphon} == {
        "dcc-860114-wat-don-mamuang-school",
        "dcc-860115-ban-khao-chan-to-school",
    }
    bangkok = nearest_centres(kb, 13.8840, 100.5650, k=1)
    assert bangkok[0][0].id == "dcc-104101-mdes-government-complex" and bangkok[0][1] < 1.0


def test_centres_in_a_district_and_a_province(kb: Knowledge) -> None:
    assert {c.id for c in centres_in(kb, "6501")} == {
        "dcc-650113-sao-ban-krang",
        "dcc-6501-phitsanulok-pittayakhom",
    }
    assert {c.id for c in centres_in(kb, "86")} == {
        "dcc-860114-wat-don-mamuang-school",
        "dcc-860115-ban-khao-chan-to-school",
    }
    assert centres_in(kb, "50") == []


def test_where_am_i_names_the_subdistrict(kb: Knowledge) -> None:
    sub, km = where_am_i(kb, 13.7500, 100.4913)  # the Grand Palace
    assert sub.code == "100101" and km < 1.5
    names = kb.places.area_names(sub.code)
    assert names["district"] == "พระนคร" and names["province"] == "กรุงเทพมหานคร"


def test_courses_by_topic_and_province_open_first(kb: Knowledge) -> None:
    hits = find_courses(
        kb,
        topics=["accounting_finance"],
        province="20",
        include_closed=True,
        on=dt.date(2026, 11, 21),
    )
    assert hits and all("accounting_finance" in h.matched_topics for h in hits)
    local = [h for h in hits if h.local]
    assert local and local[0].course.id == "course-depa-flowaccount-chonburi-2019"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_closed_courses_are_left_out_unless_asked(kb: Knowledge) -> None:
    on = dt.date(2026, 11, 21)
    default = find_courses(kb, topics=["online_selling"], on=on)
    assert all(h.availability != "closed" for h in default)
    every = find_courses(kb, topics=["online_selling"], include_closed=True, on=on)
    assert len(every) >= len(default)


def test_course_limited_to_other_provinces_is_not_offered(kb: Knowledge) -> None:
    hits = find_courses(kb, topics=["accounting_finance"], province="50", include_closed=True)
    assert "course-depa-flowaccount-chonburi-2019" not in {h.course.id for h in hits}


def _export_ready(avg_export_thb: int, *memberships: str) -> BusinessProfile:
    """A registered juristic person at the last stage, exporting this much a year."""
    return BusinessProfile(
        juristic_person=True,
        dbd_registered=True,
        avg_export_thb=avg_export_thb,
        stage=5,
        memberships=frozenset(memberships),
    )


def test_programme_prescreen_explains_why_not_yet(kb: Knowledge) -> None:
    proactive = next(p for p in kb.programmes if p.id == "prog-ditp-smes-proactive")
    small_shop = BusinessProfile(
        juristic_person=False, dbd_registered=False, avg_export_thb=0, stage=2
    )
    codes = [r.code for r in prescreen(proactive, small_shop)]
    assert codes[:3] == ["readiness_low", "not_juristic_person", "no_dbd_registration"]
    big = _export_ready(900_000_000, "DITP", "TCC")
    reasons = prescreen(proactive, big)
    assert [r.code for r in reasons] == ["export_above_max"]
    assert reasons[0].params == {"max_thb": "500,000,000"}
    ready = _export_ready(10_000_000, "DITP", "FTI")
    assert prescreen(proactive, ready) == []


def test_programmes_by_market_include_global_and_regions(kb: Knowledge) -> None:
    china = find_programmes(kb, market="CN", include_closed=True)
    ids = [h.programme.id for h in china]
    assert "prog-ditp-china-fairs-2024" in ids and "prog-ditp-smes-proactive" in ids
    assert "prog-ditp-mini-thailand-week-vn" not in ids
    assert ids.index("prog-ditp-china-fairs-2024") < ids.index("prog-ditp-smes-proactive")
    asean = {h.programme.id for h in find_programmes(kb, market="ASEAN", include_closed=True)}
    assert "prog-ditp-mini-thailand-week-vn" in asean
    food = {h.programme.id for h in find_programmes(kb, sector="food", include_closed=True)}
    assert "prog-thaifex-anuga-2025" in food and "prog-ditp-smes-proactive" in food  # "all" sectors
    fashion = {h.programme.id for h in find_programmes(kb, sector="fashion", include_closed=True)}
    assert "prog-thaifex-anuga-2025" not in fashion


def test_profile_that_does_not_fit_ranks_lower(kb: Knowledge) -> None:
    profile = BusinessProfile(juristic_person=False, stage=2)
    hits = find_programmes(kb, market="CN", profile=profile, include_closed=True)
    assert not any(
        h.fits
        for h in hits
        if h.programme.eligibility and h.programme.eligibility.requires_juristic_person
    )


def test_thai_dates_use_the_buddhist_era() -> None:
    assert thai_date(dt.date(2025, 6, 13)) == "13 มิ.ย. 2568"
    assert thai_date(dt.date(2025, 6, 13), long=True) == "13 มิถุนายน 2568"
    assert thai_date(dt.date(2026, 10, 1)) == "1 ต.ค. 2569"


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"kind": "rolling", "status": "open"}, "open"),
        ({"kind": "cohort", "status": "open", "apply_to": "2026-01-31"}, "closed"),  # out of date
        ({"kind": "cohort", "status": "unknown", "apply_from": "2027-01-01"}, "upcoming"),
        ({"kind": "rolling", "status": "unknown"}, "unknown"),
        ({"kind": "event", "status": "closed"}, "closed"),
    ],
)
def test_availability_trusts_dates_over_a_stale_status(
    schedule: dict[str, str], expected: str
) -> None:
    assert availability(Schedule.model_validate(schedule), dt.date(2026, 11, 21)) == expected


def test_samples_and_unknown_or_stale_rounds_need_a_check_note() -> None:
    on = dt.date(2026, 11, 21)
    verified = Provenance(
        status="verified", source_urls=["https://www.ditp.go.th"], last_checked=on
    )
    open_round = Schedule(kind="rolling", status="open")
    assert not needs_check(verified, open_round, on)
    assert needs_check(Provenance(status="sample", last_checked=on), open_round, on)
    assert needs_check(verified, Schedule(kind="rolling", status="unknown"), on)
    stale = Provenance(
        status="verified", source_urls=["https://x.go.th"], last_checked=on - dt.timedelta(days=120)
    )
    assert needs_check(stale, open_round, on)
