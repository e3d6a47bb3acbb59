"""A community digital centre's card: name, address or area, distance, hours, map and call.

:func:`area_text` words a place as "ต.… อ.… จ.…" (Bangkok: "แขวง… เขต…") for a card and,
with its own reply keys, for a handler's sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from bot.content.cards.flex import ACCENT, LINE_MAX, bubble, button, tel_uri, text
from bot.content.cards.parts import check_note, heading
from bot.content.cards.wording import agency_name
from bot.content.replies import Replies
from bot.kb.loader import Knowledge
from bot.kb.queries import needs_check
from bot.kb.schemas import Centre
from bot.line.messages import UriAction, fit

__all__ = ["area_text", "centre_address", "centre_bubble", "map_uri"]

#: The levels of ``Gazetteer.area_names``, smallest first.
_LEVELS = ("subdistrict", "district", "province")


def map_uri(centre: Centre, kb: Knowledge) -> str:
    """Google Maps for the centre: its point, or (for an area-mean point) a search by name.

    A district or province mean is not where the centre is; pinning it would send
    people to the wrong place, so the map searches the centre's name in its area.
    """
    if centre.location_precision in ("exact", "subdistrict_ref", "manual"):
        query = f"{centre.location_lat:.6f},{centre.location_lng:.6f}"
    else:
        query = " ".join([centre.name_th, *_area_words(centre, kb)])
    return "https://www.google.com/maps/search/?" + urlencode({"api": "1", "query": query})


def _area_words(centre: Centre, kb: Knowledge) -> list[str]:
    try:
        names = kb.places.area_names(centre.subdistrict_code or centre.district_code)
    except KeyError:
        return []
    return [names[k] for k in _LEVELS if k in names]


def area_text(
    names: Mapping[str, str],
    replies: Replies,
    subdistrict_key: str,
    district_key: str,
    province_key: str,
) -> str | None:
    """An area in words from ``Gazetteer.area_names``; None when ``names`` is empty.

    The smallest level present picks the reply; it gets that level's and the larger
    levels' names and prefixes. The keys are passed whole, so ``bot kb validate`` can
    check each one's placeholders.
    """
    if "subdistrict" in names:
        return replies.text(
            subdistrict_key,
            subdistrict_prefix=names["subdistrict_prefix"],
            subdistrict=names["subdistrict"],
            district_prefix=names["district_prefix"],
            district=names["district"],
            province_prefix=names["province_prefix"],
            province=names["province"],
        )
    if "district" in names:
        return replies.text(
            district_key,
            district_prefix=names["district_prefix"],
            district=names["district"],
            province_prefix=names["province_prefix"],
            province=names["province"],
        )
    if "province" in names:
        return replies.text(
            province_key, province_prefix=names["province_prefix"], province=names["province"]
        )
    return None


def centre_address(centre: Centre, kb: Knowledge, replies: Replies) -> str:
    """The centre's address, or its area ("ต.… อ.… จ.…"; "in อ.…" for an area-mean point)."""
    if centre.address_th:
        return centre.address_th
    code = centre.subdistrict_code or centre.district_code
    try:
        names = kb.places.area_names(code)
    except KeyError:
        names = {}
    worded = area_text(
        names,
        replies,
        "cards.centre_area_subdistrict",
        "cards.centre_area_district",
        "cards.centre_area_province",
    )
    return worded or centre.name_th


def centre_bubble(
    centre: Centre,
    kb: Knowledge,
    replies: Replies,
    *,
    distance_km: float | None = None,
) -> dict[str, Any]:
    """A community digital centre: name, address, distance, hours, map and phone buttons."""
    body: list[dict[str, Any]] = [
        *heading(centre.name_th, agency_name(kb, centre.operator)),
        text(fit(centre_address(centre, kb, replies), LINE_MAX), size="sm"),
    ]
    if distance_km is not None:
        km = f"{distance_km:.1f}"
        body.append(text(replies.text("cards.centre_distance", km=km), size="sm", color=ACCENT))
    if centre.opening_hours_th:
        hours = replies.text("cards.centre_hours", hours=centre.opening_hours_th)
        body.append(text(fit(hours, LINE_MAX), size="sm"))
    optional: list[dict[str, Any]] = []
    if needs_check(centre.provenance, None) or centre.status != "active":
        optional += check_note(kb, replies, "cards.note_centre", centre.operator)
    buttons = [button(UriAction(replies.text("cards.button_map"), map_uri(centre, kb)), True)]
    phone = tel_uri(centre.contact_phone)
    if phone:
        buttons.append(button(UriAction(replies.text("cards.button_call"), phone), False))
    return bubble(body + optional, buttons, optional=len(optional))
