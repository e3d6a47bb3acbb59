"""find_centre through the signed webhook: shared locations, typed places, ambiguous names.

Wording comes from the reply files, never from this test; centres and places from
the knowledge snapshot, so an operator's edit of either keeps the test meaningful.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from bot.dialogue.stamps import STAMP
from bot.kb.loader import Knowledge, load_knowledge, load_replies
from bot.kb.queries import centres_in
from bot.line.messages import parse_postback
from bot.nlu.entities import Entity
from handlers.centres import PICK, PlaceChoice, from_entities, narrow
from tests.conversation import (
    Chat,
    all_actions,
    bubbles,
    quick_labels,
    quick_replies,
    says_exactly,
    texts,
)
from tests.helpers import ROOT

R = load_replies(ROOT / "knowledge")
_KM = re.compile(r"(\d+(?:\.\d+)?)\s*กม")


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    result = load_knowledge(ROOT / "knowledge")
    assert result.knowledge is not None, result.problems
    return result.knowledge


def variants(key: str) -> tuple[str, ...]:
    return R.texts[key]


def area(kb: Knowledge, code: str) -> str:
    """The area label as the bot words it (from the reply file)."""
    n: dict[str, Any] = dict(kb.places.area_names(code))
    if "subdistrict" in n:
        return R.text("centres.area_subdistrict", **n)
    if "district" in n:
        return R.text("centres.area_district", **n)
    return R.text("centres.area_province", **n)


def said(answer: list[dict[str, Any]], key: str, **params: Any) -> bool:
    return says_exactly(answer, R, key, **params)


def distances(answer: list[dict[str, Any]]) -> list[float]:
    """The km figure of each centre card, in card order."""
    out = []
    for bubble in bubbles(answer):
        found = [float(m) for m in _KM.findall(str(bubble))]
        assert found, f"a card without a distance: {bubble}"
        out.append(found[0])
    return out


def map_links(answer: list[dict[str, Any]]) -> list[str]:
    return [
        a["uri"]
        for a in all_actions(bubbles(answer))
        if a["type"] == "uri" and "maps" in a.get("uri", "")
    ]


def test_location_near_cha_am_gives_nearest_centres(chat: Callable[[str], Chat]) -> None:
    c = chat("centres-cha-am")
    answer = c.share_location(12.80, 99.97)
    cards = bubbles(answer)
    assert 3 <= len(cards) <= 5
    km = distances(answer)
    assert km == sorted(km), km
    assert all(20 <= d <= 400 for d in km), km  # Cha-am to the sample centres: tens to hundreds
    assert len(map_links(answer)) == len(cards)
    # "you are near ต.… อ.ชะอำ จ.เพชรบุรี"
    first = texts(answer)[0]
    assert "ชะอำ" in first and "เพชรบุรี" in first
    assert any(a["type"] == "location" for a in quick_replies(answer))


def test_no_place_asks_for_the_location_then_answers_it(chat: Callable[[str], Chat]) -> None:
    c = chat("centres-ask")
    answer = c.say("ศูนย์ดิจิทัลใกล้ฉัน")
    assert texts(answer)[0] in variants("centres.ask_where")
    location = [a for a in quick_replies(answer) if a["type"] == "location"]
    assert location and location[0]["label"] == R.text("centres.button_share_location")
    answer = c.share_location(12.80, 99.97)
    km = distances(answer)
    assert 3 <= len(km) <= 5 and km == sorted(km)


@pytest.mark.parametrize("lat,lng", [(1e308, 99.97), (12.8, float("inf")), (91.0, 0.0)])
def test_a_location_off_the_earth_asks_where_the_user_is(
    chat: Callable[[str], Chat], lat: float, lng: float
) -> None:
    """Found by the 10,000-body fuzz run: such a point failed every try (a dead letter and
    an apology); it is no location, so the bot asks for one."""
    answer = chat("centres-off-earth").share_location(lat, lng)
    assert texts(answer)[0] in variants("centres.ask_where")


def test_typed_place_at_the_location_step(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    c = chat("centres-typed-step")
    c.say("ศูนย์ดิจิทัลใกล้ฉัน")
    answer = c.say("อยู่โคราช")
    korat = centres_in(kb, "30")
    if korat:
        assert said(answer, "centres.in_area", area=area(kb, "30"), count=len(korat))
        assert len(bubbles(answer)) == len(korat)
    else:
        assert said(answer, "centres.none_in_area", area=area(kb, "30"), count=5)


def test_typed_place_with_centres(chat: Callable[[str], Chat], kb: Knowledge) -> None:
    expected = centres_in(kb, "65")  # Phitsanulok
    assert expected, "the sample knowledge has centres in Phitsanulok"
    answer = chat("centres-phitsanulok").say("ศูนย์ดิจิทัลชุมชนพิษณุโลก")
    assert said(answer, "centres.in_area", area=area(kb, "65"), count=len(expected))
    shown = "\n".join(str(b) for b in bubbles(answer))
    assert all(centre.name_th in shown for centre in expected)
    assert len(map_links(answer)) == len(expected)


def test_typed_place_without_centres_gives_the_nearest(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    assert not centres_in(kb, "7707")  # no sample centre in Hua Hin district
    answer = chat("centres-hua-hin").say("ศูนย์ดิจิทัลที่หัวหิน")
    label = area(kb, "7707")
    assert said(answer, "centres.none_in_area", area=label, count=len(bubbles(answer)))
    km = distances(answer)
    assert 3 <= len(km) <= 5 and km == sorted(km)
    assert km[0] < 100  # the Prachuap Khiri Khan centres are close to Hua Hin


def test_ambiguous_place_asks_which_with_buttons(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("centres-chom-thong")
    answer = c.say("ศูนย์ดิจิทัลจอมทอง")  # a district in Bangkok and one in Chiang Mai
    assert not bubbles(answer)
    options = [a for a in quick_replies(answer) if a["type"] == "postback"]
    # each button carries its place and the token of this question (stale buttons)
    data = {(p["action"], p["c"]) for p in (parse_postback(a["data"]) for a in options)}
    assert data == {(PICK, "1035"), (PICK, "5002")}
    assert all(STAMP in parse_postback(a["data"]) for a in options)
    assert any(a["type"] == "location" for a in quick_replies(answer))
    chiang_mai = kb.places.provinces["50"].name_th
    answer = c.press(answer, chiang_mai)
    assert any(area(kb, "5002") in t for t in texts(answer))
    assert bubbles(answer) and map_links(answer)


def test_ambiguous_place_answered_by_typing_the_province(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("centres-chom-thong-typed")
    c.say("ศูนย์ดิจิทัลจอมทอง")
    answer = c.say("กรุงเทพ")
    assert any(area(kb, "1035") in t for t in texts(answer))
    assert bubbles(answer)


def test_a_name_every_province_has_asks_for_the_province(
    chat: Callable[[str], Chat], kb: Knowledge
) -> None:
    c = chat("centres-mueang")
    answer = c.say("ศูนย์ดิจิทัลชุมชนอำเภอเมือง")
    assert texts(answer)[0] in variants("centres.which_place_many")
    assert [a["type"] for a in quick_replies(answer)] == ["location"]
    answer = c.say("ขอนแก่น")
    assert any(area(kb, "4001") in t for t in texts(answer))


def test_unplaceable_answers_are_asked_again_then_given_up(chat: Callable[[str], Chat]) -> None:
    c = chat("centres-lost")
    c.say("ศูนย์ดิจิทัลใกล้ฉัน")
    answer = c.say("ฮืมมม")
    assert texts(answer)[0] in variants("centres.where_not_understood")
    c.say("ฮืมมม")
    answer = c.say("ฮืมมม")
    assert texts(answer)[0] in variants("centres.give_up")
    # the step is closed: a location now is answered as an unprompted share
    assert bubbles(c.share_location(12.80, 99.97))


def test_another_request_at_the_location_step_is_offered_and_the_question_comes_back(
    chat: Callable[[str], Chat],
) -> None:
    c = chat("centres-moved-on")
    asked = c.say("ศูนย์ดิจิทัลใกล้ฉัน")
    answer = c.say("หาคอร์สเรียนขายของออนไลน์")
    mine = {*variants("centres.where_not_understood"), *variants("centres.ask_where")}
    # not swallowed as a bad place: the course search is offered, with the way back
    assert answer and not mine & set(texts(answer))
    labels = quick_labels(answer)
    resume = variants("help.button_resume")[0]
    assert resume in labels and any(label != resume for label in labels)
    topics = c.press(answer, next(label for label in labels if label != resume))
    assert not mine & set(texts(topics))
    courses = c.say("ขายของออนไลน์")
    assert bubbles(courses)
    # the location question waited; its button asks it again, and a place is answered
    back = c.press(courses, resume)
    assert texts(asked)[-1] in texts(back)
    assert bubbles(c.say("ชะอำ"))


# -- pure logic -----------------------------------------------------------------------------


def test_narrow_prefers_the_only_larger_area() -> None:
    assert narrow(["7707", "460805"], "หัวหิน") == PlaceChoice(code="7707", guessed=True, name="หัวหิน")
    assert narrow(["1035", "5002", "650112"]).options == ("1035", "5002")
    assert narrow(["30"]) == PlaceChoice(code="30")
    assert narrow([]) == PlaceChoice()


def test_from_entities_takes_the_most_precise_clear_place() -> None:
    entities = [
        Entity("province", "77", "ประจวบ", 1.0),
        Entity("district", "7707", "หัวหิน", 1.0),
        Entity("topic", "online_selling", "ขายออนไลน์", 1.0),
    ]
    assert from_entities(entities).code == "7707"
    shared = [
        Entity("district", "1035", "จอมทอง", 1.0, ("1035", "5002", "650112")),
        Entity("subdistrict", "650112", "จอมทอง", 1.0, ("1035", "5002", "650112")),
    ]
    assert from_entities(shared).options == ("1035", "5002")
    two = [Entity("province", "30", "โคราช", 1.0), Entity("province", "34", "อุบล", 1.0)]
    assert from_entities(two) == PlaceChoice(options=("30", "34"))
    every_capital = [Entity("district", f"{p}01", f"เมือง{p}", 1.0) for p in range(11, 40)]
    assert len(from_entities(every_capital).options) == len(every_capital)
    assert from_entities([]) == PlaceChoice()
