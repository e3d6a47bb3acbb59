"""Recommendation cards: every shipped course, programme and centre makes a card LINE
accepts (checked by the fake LINE API's own validator), with the facts a person needs
and the "sample, check with the agency" note wherever it applies."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from bot.content.cards import (
    BUBBLE_MAX_BYTES,
    CAROUSEL_MAX_BYTES,
    DETAILS_ACTION,
    MAX_BUBBLES,
    carousel,
    centre_bubble,
    course_bubble,
    details_for,
    programme_bubble,
    reason_text,
    safe_uri,
    size_of,
    tel_uri,
)
from bot.content.replies import Replies
from bot.kb.loader import Knowledge, load_replies
from bot.kb.queries import (
    BusinessProfile,
    Reason,
    course_alternatives,
    entry_contact_lines,
    needs_check,
    prescreen,
    related_topics,
    thai_date,
)
from bot.kb.schemas import Contact, Course, ExportProgramme
from bot.line.messages import Flex, parse_postback
from tests.fakeline.validate import load_validator
from tests.helpers import ROOT, json_dicts

ON = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def replies(kb: Knowledge) -> Replies:
    return kb.replies


def line_issues(*messages: Flex) -> list[str]:
    """What LINE would say about a reply carrying these messages (empty: accepted)."""
    validator = load_validator()
    op = validator.operations["replyMessage"]
    body = {"replyToken": "t" * 32, "messages": [m.to_line() for m in messages]}
    raw = json.dumps(body, ensure_ascii=False).encode()
    _, issues = validator.validate(op, {}, {}, {}, "application/json", raw)
    return [str(i) for i in issues]


def all_texts(node: Any) -> str:
    keys = ("text", "label", "altText")
    return "\n".join(
        n[key] for n in json_dicts(node) for key in keys if isinstance(n.get(key), str)
    )


def actions(node: Any) -> list[dict[str, Any]]:
    return [n["action"] for n in json_dicts(node) if isinstance(n.get("action"), dict)]


def every_profile_reasons(kb: Knowledge) -> dict[str, list[Reason]]:
    """The most reasons the pre-screen can give for each programme (a stage-1 business)."""
    profile = BusinessProfile(juristic_person=False, dbd_registered=False, stage=1)
    return {p.id: prescreen(p, profile) for p in kb.programmes}


# -- every shipped entry fits LINE --------------------------------------------------------------


def test_every_course_card_is_accepted_by_line(kb: Knowledge, replies: Replies) -> None:
    bubbles = [course_bubble(c, kb, replies, why="เพราะตรงกับคุณ", on=ON) for c in kb.courses]
    for b in bubbles:
        assert size_of(b) <= BUBBLE_MAX_BYTES
        assert line_issues(carousel([b], "x")) == []
    message = carousel(bubbles, "คอร์สแนะนำ")
    assert line_issues(message) == []
    assert len(message.contents["contents"]) == min(len(bubbles), MAX_BUBBLES)


def test_every_programme_card_is_accepted_by_line(kb: Knowledge, replies: Replies) -> None:
    reasons = every_profile_reasons(kb)
    bubbles = [
        programme_bubble(p, kb, replies, reasons=reasons[p.id], why="ตลาดตรง", on=ON)
        for p in kb.programmes
    ]
    for b in bubbles:
        assert line_issues(carousel([b], "x")) == []
    assert line_issues(carousel(bubbles, "โครงการ")) == []


def test_every_centre_card_is_accepted_by_line(kb: Knowledge, replies: Replies) -> None:
    bubbles = [centre_bubble(c, kb, replies, distance_km=12.345) for c in kb.centres]
    for b in bubbles:
        assert line_issues(carousel([b], "x")) == []
        uris = [a["uri"] for a in actions(b) if a["type"] == "uri"]
        assert uris and uris[0].startswith("https://www.google.com/maps/search/?api=1&query=")
    assert line_issues(carousel(bubbles, "ศูนย์")) == []


def test_a_carousel_keeps_ten_bubbles_and_within_50_kb(kb: Knowledge, replies: Replies) -> None:
    many = [course_bubble(c, kb, replies, on=ON) for c in kb.courses] * 3
    message = carousel(many, "x")
    assert len(message.contents["contents"]) == MAX_BUBBLES
    # Bubbles near 30 KB each: the carousel drops trailing ones rather than pass 50 KB.
    big = course_bubble(kb.courses[0], kb, replies, why="ก" * 20_000, on=ON)
    big["body"]["contents"].append({"type": "text", "text": "ข" * 9000, "wrap": True})
    crowded = carousel([big] * 5, "x")
    assert size_of(crowded.contents) <= CAROUSEL_MAX_BYTES
    assert line_issues(crowded) == []


def test_endless_knowledge_text_still_makes_a_valid_bubble(kb: Knowledge, replies: Replies) -> None:
    course = kb.courses[0]
    long_name = course.name.model_copy(update={"th": "ชื่อยาวมาก " * 3000})
    monster = course.model_copy(
        update={"name": long_name, "contact": Contact(phone="0" * 4000, url="https://x.go.th/")}
    )
    bubble = course_bubble(monster, kb, replies, why="เหตุผล " * 3000, on=ON)
    assert size_of(bubble) <= BUBBLE_MAX_BYTES
    assert line_issues(carousel([bubble], "x")) == []


# -- what a card says -----------------------------------------------------------------------------


def test_course_card_shows_name_agency_format_dates_cost_and_sample_note(
    kb: Knowledge, replies: Replies
) -> None:
    course = next(c for c in kb.courses if c.id == "course-osmep-bds-sme-pang")
    text = all_texts(course_bubble(course, kb, replies, why="ตรงกับที่คุณอยากเรียน", on=ON))
    assert course.name.th in text
    assert kb.agencies["OSMEP"].name.th in text
    assert replies.text("cards.format.hybrid") in text
    assert thai_date(dt.date(2022, 1, 17)) in text and "2565" in text  # Buddhist era
    assert "200,000" in text and "50" in text and "80" in text
    assert "ตรงกับที่คุณอยากเรียน" in text
    assert replies.text("cards.note_sample") in text
    assert "1301" in text  # OSMEP's hotline, from agencies.yaml
    buttons = actions(course_bubble(course, kb, replies, on=ON))
    official = [a for a in buttons if a["type"] == "uri"]
    assert official and official[0]["uri"] == "https://bds.sme.go.th/Project/Detail/7"
    details = [a for a in buttons if a["type"] == "postback"]
    assert parse_postback(details[0]["data"]) == {"action": DETAILS_ACTION, "id": course.id}


def test_every_sample_entry_carries_the_check_with_the_agency_note(
    kb: Knowledge, replies: Replies
) -> None:
    notes = (replies.text("cards.note_sample"), replies.text("cards.note_check"))
    for course in kb.courses:
        if needs_check(course.provenance, course.schedule, ON):
            text = all_texts(course_bubble(course, kb, replies, on=ON))
            assert any(n in text for n in notes), course.id
            details = details_for(course.id, kb, replies) or ""
            assert any(n in details for n in notes), course.id
    for programme in kb.programmes:
        if needs_check(programme.provenance, programme.schedule, ON):
            text = all_texts(programme_bubble(programme, kb, replies, on=ON))
            assert any(n in text for n in notes), programme.id
    for centre in kb.centres:
        if centre.provenance_status == "sample":
            assert replies.text("cards.note_centre") in all_texts(
                centre_bubble(centre, kb, replies)
            )


def test_free_fee_and_unknown_costs_read_in_thai(kb: Knowledge, replies: Replies) -> None:
    base = kb.courses[0]
    free = base.model_copy(update={"cost": base.cost.model_copy(update={"type": "free"})})
    fee = base.model_copy(
        update={"cost": base.cost.model_copy(update={"type": "fee", "fee_thb": 1500})}
    )
    assert replies.text("cards.cost_free") in all_texts(course_bubble(free, kb, replies, on=ON))
    assert "1,500" in all_texts(course_bubble(fee, kb, replies, on=ON))
    unknown = all_texts(course_bubble(base, kb, replies, on=ON))
    assert replies.text("cards.cost_unknown") in unknown


def test_a_verified_open_course_is_shown_as_open_without_a_note(
    kb: Knowledge, replies: Replies
) -> None:
    base = kb.courses[0]
    verified = base.model_copy(
        update={
            "provenance": base.provenance.model_copy(
                update={
                    "status": "verified",
                    "source_urls": ["https://x.go.th"],
                    "last_checked": ON,
                }
            ),
            "schedule": base.schedule.model_copy(
                update={"status": "open", "start_date": None, "end_date": None}
            ),
        }
    )
    text = all_texts(course_bubble(verified, kb, replies, on=ON))
    assert replies.text("cards.status.open") in text
    assert replies.text("cards.note_sample") not in text
    assert replies.text("cards.note_check") not in text


def test_programme_card_names_the_reasons_it_does_not_fit_yet(
    kb: Knowledge, replies: Replies
) -> None:
    proactive = next(p for p in kb.programmes if p.id == "prog-ditp-smes-proactive")
    reasons = prescreen(proactive, BusinessProfile(stage=2))
    text = all_texts(programme_bubble(proactive, kb, replies, reasons=reasons, on=ON))
    assert replies.text("cards.reasons_title") in text  # readiness 2 < 5 is certain
    assert replies.text("export.reason.readiness_low", required="5", stage="2") in text
    assert replies.text("cards.reasons_check_title") in text  # juristic person: not asked yet
    assert replies.text("export.confirm.not_juristic_person") in text


def test_every_reason_code_has_plain_thai_wording(kb: Knowledge, replies: Replies) -> None:
    codes = {
        "readiness_low": {"required": "4", "stage": "2"},
        "not_juristic_person": {},
        "no_dbd_registration": {},
        "export_above_max": {"max_thb": "500,000,000"},
        "export_below_min": {"min_thb": "3,000,000"},
        "membership_required": {"codes": "FTI / TCC / TNSC"},
    }
    for code, params in codes.items():
        for certain in (True, False):
            words = reason_text(Reason(code, params, certain), kb, replies)
            assert words and "{" not in words and code not in words
    member = reason_text(Reason("membership_required", {"codes": "FTI / TCC"}, False), kb, replies)
    assert "ส.อ.ท." in member and "หอการค้าไทย" in member  # names, not codes


def test_centre_card_shows_address_distance_hours_map_and_phone(
    kb: Knowledge, replies: Replies
) -> None:
    exact = next(c for c in kb.centres if c.location_precision == "subdistrict_ref")
    with_hours = exact.model_copy(
        update={"opening_hours_th": "จันทร์–ศุกร์ 08:30–16:30", "contact_phone": "02-123 4567"}
    )
    bubble = centre_bubble(with_hours, kb, replies, distance_km=3.456)
    text = all_texts(bubble)
    assert exact.name_th in text
    assert replies.text("cards.centre_distance", km="3.5") in text
    assert "จันทร์–ศุกร์ 08:30–16:30" in text
    names = kb.places.area_names(exact.subdistrict_code or "")
    assert names["subdistrict"] in text and names["province"] in text
    uris = [a["uri"] for a in actions(bubble) if a["type"] == "uri"]
    lat, lng = f"{exact.location_lat:.6f}", f"{exact.location_lng:.6f}"
    assert any(lat in u and lng in u for u in uris)
    assert "tel:021234567" in uris


def test_an_area_mean_centre_is_not_pinned(kb: Knowledge, replies: Replies) -> None:
    mean = next(c for c in kb.centres if c.location_precision == "district_mean")
    bubble = centre_bubble(mean, kb, replies)
    map_uri = next(a["uri"] for a in actions(bubble) if a["type"] == "uri")
    assert f"{mean.location_lat:.6f}" not in map_uri  # a search by name, not a wrong pin
    assert "ในพื้นที่" in all_texts(bubble) or mean.address_th


def test_details_text_has_everything_and_fits_a_text_message(
    kb: Knowledge, replies: Replies
) -> None:
    entries: list[Course | ExportProgramme] = [*kb.courses, *kb.programmes]
    for entry in entries:
        text = details_for(entry.id, kb, replies)
        assert text is not None and entry.name.th in text and entry.summary.th in text
        assert len(text) < 5000
    tmark = details_for("prog-ditp-tmark", kb, replies) or ""
    assert "https://thailandtrustmark.com/th/apply" in tmark
    assert details_for("course-no-such-thing", kb, replies) is None


def test_labels_are_cut_to_line_length(kb: Knowledge) -> None:
    long = Replies(texts={**kb.replies.texts, "cards.button_details": ("ก" * 60,)})
    bubble = course_bubble(kb.courses[0], kb, long, on=ON)
    labels = [a["label"] for a in actions(bubble)]
    assert all(len(label) <= 20 for label in labels)


def test_uris_are_made_valid_or_dropped() -> None:
    assert safe_uri("https://www.dbd.go.th/ข่าว?q=ก ข") == (
        "https://www.dbd.go.th/%E0%B8%82%E0%B9%88%E0%B8%B2%E0%B8%A7?q=%E0%B8%81%20%E0%B8%82"
    )
    assert safe_uri("javascript:alert(1)") is None
    assert safe_uri("www.dbd.go.th") is None
    assert safe_uri("https://x.go.th/" + "a" * 2000) is None
    assert tel_uri("1570") == "tel:1570" and tel_uri("โทร") is None


# -- knowledge queries the conversations use -----------------------------------------------------


def test_contacts_fall_back_to_the_parent_agency(kb: Knowledge) -> None:
    assert entry_contact_lines(kb, "DBD") and "1570" in entry_contact_lines(kb, "DBD")[0]
    lines = entry_contact_lines(kb, "OSMEP", Contact(phone="02-000-0000"))
    assert lines[0] == "02-000-0000" and "1301" in lines[1]


def test_related_topics_have_courses_one_can_take(kb: Knowledge) -> None:
    related = related_topics(kb, "logistics", province="52", on=ON)
    assert related and "logistics" not in related
    alt = course_alternatives(kb, "logistics", province="52", on=ON)
    assert alt.topics == tuple(related) and alt.online


def test_topic_and_sector_button_labels_exist_for_every_id(kb: Knowledge) -> None:
    replies = load_replies(ROOT / "knowledge")
    for topic in kb.topics:
        assert f"courses.topic_label.{topic}" in replies, topic
    for sector in kb.sectors:
        if sector != "all":
            assert f"export.sector_label.{sector}" in replies, sector
