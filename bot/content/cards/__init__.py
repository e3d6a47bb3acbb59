"""Recommendation cards: LINE Flex bubbles for courses, export programmes and centres.

Every capability that recommends something (the assessment result, ``find_course``,
``export_programme``, ``find_centre``) shows the same cards, so a person learns to
read them once. A card always says who runs the offer, how it is given, when (Thai
dates, Buddhist-era years), what it costs, and, for sample or unconfirmed entries,
"please check with the agency" with the agency's contact: the knowledge shipped now
is built from news, and nobody should travel or apply on the strength of it alone.

Builders return plain Flex JSON that always fits LINE's limits whatever the
knowledge holds: texts are capped, buttons go through ``bot.line.messages`` actions
(labels cut to 20 characters, postback data checked), links are made valid
http(s) URIs or dropped, and ``carousel`` keeps at most 10 bubbles and drops
trailing ones if the carousel would pass LINE's 50 KB. All wording comes from
``knowledge/replies/cards.yaml`` (reasons from ``replies/export.yaml``).

The "details" button is a postback ``action=card&id=<entry id>``; the courses
handler answers it with ``details_for``.

The modules: ``flex`` (building blocks and LINE's limits), ``wording`` (the facts in
Thai), ``reasons`` (the export pre-screen's reasons), ``parts`` (what every card
shares), ``course``, ``programme`` and ``centre`` (one card each, with the details
message of the first two), ``detail_lines`` (what every details message shares) and
``details`` (the answer to the "details" button).
"""

from __future__ import annotations

from bot.content.cards.centre import area_text, centre_address, centre_bubble, map_uri
from bot.content.cards.course import course_bubble, course_details
from bot.content.cards.details import details_for
from bot.content.cards.flex import (
    BUBBLE_MAX_BYTES,
    CAROUSEL_MAX_BYTES,
    MAX_BUBBLES,
    URI_MAX,
    card_titles,
    carousel,
    safe_uri,
    size_of,
    tel_uri,
)
from bot.content.cards.parts import DETAILS_ACTION, details_button
from bot.content.cards.programme import programme_bubble, programme_details
from bot.content.cards.reasons import reason_text
from bot.content.cards.wording import (
    apply_text,
    as_of_text,
    cost_text,
    dates_text,
    format_label,
    programme_type_label,
    status_label,
)

__all__ = [
    "BUBBLE_MAX_BYTES",
    "CAROUSEL_MAX_BYTES",
    "DETAILS_ACTION",
    "MAX_BUBBLES",
    "URI_MAX",
    "apply_text",
    "area_text",
    "as_of_text",
    "card_titles",
    "carousel",
    "centre_address",
    "centre_bubble",
    "cost_text",
    "course_bubble",
    "course_details",
    "dates_text",
    "details_button",
    "details_for",
    "format_label",
    "map_uri",
    "programme_bubble",
    "programme_details",
    "programme_type_label",
    "reason_text",
    "safe_uri",
    "size_of",
    "status_label",
    "tel_uri",
]
