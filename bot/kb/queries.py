"""Questions the conversations ask of the knowledge snapshot.

Courses by topic, stage and place (open or upcoming first); export
programmes by market, sector and readiness, with a pre-screen that says why
a programme does not fit yet; the nearest community digital centres;
"you are near ต. … อ. … จ. …"; and whether an entry may be shown as a
current fact or needs a "please check with the agency" note. Reasons are
codes; their Thai wording lives in ``knowledge/replies.yaml``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pythainlp.util import thai_strftime

from bot.kb.loader import Knowledge, today
from bot.kb.places import Subdistrict
from bot.kb.schemas import Centre, Contact, Course, ExportProgramme, Provenance, Schedule

Availability = Literal["open", "upcoming", "unknown", "closed"]
_RANK: dict[Availability, int] = {"open": 3, "upcoming": 2, "unknown": 1, "closed": 0}
#: An "open" round not re-checked for this long is shown with a check-with-the-agency note.
STALE_AFTER = dt.timedelta(days=90)


def thai_date(day: dt.date, long: bool = False) -> str:
    """A date in Thai with the Buddhist-era year: 13 มิ.ย. 2568 (or 13 มิถุนายน 2568)."""
    moment = dt.datetime(day.year, day.month, day.day)
    return str(thai_strftime(moment, "%-d %B %Y" if long else "%-d %b %Y"))


def availability(schedule: Schedule, on: dt.date | None = None) -> Availability:
    """Whether one can take part now, soon, maybe, or not (dates beat a stale status)."""
    on = on or today()
    last = schedule.apply_to or schedule.end_date
    if schedule.status == "closed" or (last is not None and last < on):
        return "closed"
    first = schedule.apply_from or schedule.start_date
    if first is not None and first > on:
        return "upcoming"
    if schedule.status == "upcoming":
        return "upcoming"
    if schedule.status == "open":
        return "open"
    return "unknown"


def needs_check(
    provenance: Provenance, schedule: Schedule | None, on: dt.date | None = None
) -> bool:
    """True when users must be told to check with the agency instead of reading it as fact."""
    on = on or today()
    if provenance.status == "sample":
        return True
    if schedule is None:
        return False
    state = availability(schedule, on)
    if state == "unknown":
        return True
    return state == "open" and on - provenance.last_checked > STALE_AFTER


@dataclass(frozen=True)
class CourseHit:
    """A course that fits, how well, and why."""

    course: Course
    score: float
    availability: Availability
    matched_topics: tuple[str, ...]
    local: bool


def find_courses(
    kb: Knowledge,
    topics: Iterable[str] = (),
    stage: int | None = None,
    province: str | None = None,
    include_closed: bool = False,
    on: dt.date | None = None,
    limit: int = 10,
) -> list[CourseHit]:
    """Courses for these topics, usable from ``province`` (or online/nationwide), best first."""
    on = on or today()
    wanted = set(topics)
    hits: list[CourseHit] = []
    for course in kb.courses:
        matched = tuple(t for t in course.topics if t in wanted)
        if wanted and not matched:
            continue
        state = availability(course.schedule, on)
        if state == "closed" and not include_closed:
            continue
        local = bool(province) and province in course.places.province_codes
        restricted = bool(course.places.province_codes) and not course.places.nationwide
        online_anywhere = course.format == "online" and not restricted
        reachable = not province or course.places.nationwide or local or online_anywhere
        if not reachable:
            continue
        score = 3.0 * len(matched) + 1.5 * _RANK[state] + (1.0 if local else 0.0)
        if stage is not None:
            score -= 0.75 * abs(course.stage - stage)
        if course.provenance.status == "sample":
            score -= 0.25
        hits.append(CourseHit(course, round(score, 3), state, matched, local))
    hits.sort(key=lambda h: (-h.score, h.course.name.th))
    return hits[:limit]


@dataclass(frozen=True)
class BusinessProfile:
    """What the pre-screen knows about a business; None means "not asked yet"."""

    juristic_person: bool | None = None
    dbd_registered: bool | None = None
    avg_export_thb: int | None = None
    stage: int | None = None
    memberships: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Reason:
    """Why a programme does not fit yet: a reply key suffix plus its placeholders."""

    code: str
    params: dict[str, str] = field(default_factory=dict)
    #: False when the profile lacks the fact: "please confirm", not "you cannot".
    certain: bool = True


def prescreen(programme: ExportProgramme, profile: BusinessProfile) -> list[Reason]:
    """Reasons the business cannot apply yet (empty: nothing known stands in the way)."""
    reasons: list[Reason] = []
    rules = programme.eligibility
    if profile.stage is not None and profile.stage < programme.readiness_required:
        reasons.append(
            Reason(
                "readiness_low",
                {"required": str(programme.readiness_required), "stage": str(profile.stage)},
            )
        )
    if rules is None:
        return reasons
    if rules.requires_juristic_person and profile.juristic_person is not True:
        reasons.append(Reason("not_juristic_person", certain=profile.juristic_person is False))
    if rules.requires_dbd_registration and profile.dbd_registered is not True:
        reasons.append(Reason("no_dbd_registration", certain=profile.dbd_registered is False))
    volume = profile.avg_export_thb
    if (
        rules.max_avg_export_thb is not None
        and volume is not None
        and volume > rules.max_avg_export_thb
    ):
        reasons.append(Reason("export_above_max", {"max_thb": f"{rules.max_avg_export_thb:,}"}))
    if rules.min_avg_export_thb is not None:
        if volume is None:
            reasons.append(
                Reason(
                    "export_below_min", {"min_thb": f"{rules.min_avg_export_thb:,}"}, certain=False
                )
            )
        elif volume < rules.min_avg_export_thb:
            reasons.append(Reason("export_below_min", {"min_thb": f"{rules.min_avg_export_thb:,}"}))
    for need in rules.requires_membership:
        options = need.split("|")
        if not set(options) & profile.memberships:
            reasons.append(
                Reason("membership_required", {"codes": " / ".join(options)}, certain=False)
            )
    return reasons


@dataclass(frozen=True)
class ProgrammeHit:
    """An export programme for the asked market and sector, and whether the business fits."""

    programme: ExportProgramme
    score: float
    availability: Availability
    reasons: tuple[Reason, ...]

    @property
    def fits(self) -> bool:
        return not any(r.certain for r in self.reasons)


def _market_matches(kb: Knowledge, programme: ExportProgramme, market: str) -> int:
    """2: the programme names the market; 1: it covers it (GLOBAL or a region); 0: no."""
    if market in programme.markets:
        return 2
    asked = kb.markets.get(market)
    for code in programme.markets:
        target = kb.markets.get(code)
        if target is None:
            continue
        if target.kind == "global" or market in target.members:
            return 1
        if asked is not None and code in asked.members:
            return 1  # asked for a region, the programme targets one of its countries
    return 0


def find_programmes(
    kb: Knowledge,
    market: str | None = None,
    sector: str | None = None,
    profile: BusinessProfile | None = None,
    include_closed: bool = False,
    on: dt.date | None = None,
    limit: int = 10,
) -> list[ProgrammeHit]:
    """Programmes for the market and sector, fitting ones first, with the pre-screen's reasons."""
    on = on or today()
    profile = profile or BusinessProfile()
    hits: list[ProgrammeHit] = []
    for programme in kb.programmes:
        market_fit = _market_matches(kb, programme, market) if market else 1
        if market and not market_fit:
            continue
        sector_fit = (
            2
            if sector and sector in programme.sectors
            else 1
            if "all" in programme.sectors or not sector
            else 0
        )
        if not sector_fit:
            continue
        state = availability(programme.schedule, on)
        if state == "closed" and not include_closed:
            continue
        reasons = tuple(prescreen(programme, profile))
        score = (
            2.0 * market_fit
            + 1.5 * sector_fit
            + 1.5 * _RANK[state]
            - 3.0 * sum(r.certain for r in reasons)
        )
        hits.append(ProgrammeHit(programme, round(score, 3), state, reasons))
    hits.sort(key=lambda h: (-h.score, h.programme.name.th))
    return hits[:limit]


def nearest_centres(
    kb: Knowledge, lat: float, lng: float, k: int = 5, max_km: float | None = None
) -> list[tuple[Centre, float]]:
    """The ``k`` nearest centres that are not closed, with great-circle km."""
    return kb.centre_index.nearest(lat, lng, k=k, max_km=max_km)


def centres_in(kb: Knowledge, code: str) -> list[Centre]:
    """Centres in a province (2 digits), district (4) or subdistrict (6), by name."""
    column = {2: "province_code", 4: "district_code", 6: "subdistrict_code"}.get(len(code))
    if column is None:
        return []
    return sorted(
        (c for c in kb.centres if getattr(c, column) == code and c.status != "closed"),
        key=lambda c: c.name_th,
    )


def where_am_i(kb: Knowledge, lat: float, lng: float) -> tuple[Subdistrict, float]:
    """The subdistrict whose reference point is nearest, and how far it is in km."""
    return kb.places.nearest_subdistrict(lat, lng)


def agency_contact_lines(kb: Knowledge, codes: Sequence[str]) -> list[str]:
    """Known contact details of agencies (phone first), for "check with the agency" notes."""
    out: list[str] = []
    for code in codes:
        agency = kb.agencies.get(code)
        if agency is None:
            continue
        contact = agency.contact
        bits = [b for b in ((contact.phone if contact else None), agency.url) if b]
        if bits:
            out.append(f"{agency.short_th or agency.name.th}: {' '.join(bits)}")
    return out


def contact_agencies(kb: Knowledge, code: str) -> list[str]:
    """``code`` and, when it publishes no phone or web page, its parents up to one that does.

    A sub-unit such as NEA has no contact of its own in ``agencies.yaml``; sending users
    to its parent (DITP) beats leaving a "check with the agency" note without a way to.
    """
    chain: list[str] = []
    current: str | None = code
    while current and current not in chain:
        agency = kb.agencies.get(current)
        if agency is None:
            break
        chain.append(current)
        contact = agency.contact
        if agency.url or (contact and (contact.phone or contact.url)):
            break
        current = agency.parent
    return chain


def entry_contact_lines(kb: Knowledge, agency: str, contact: Contact | None = None) -> list[str]:
    """Contact details for a card's "please check" note: the entry's own, then its agency's."""
    lines: list[str] = []
    if contact is not None:
        bits = [b for b in (contact.phone, contact.line, contact.email, contact.url) if b]
        if bits:
            lines.append(" ".join(bits))
    for code in contact_agencies(kb, agency):
        found = kb.agencies[code]
        reach = found.contact
        bits = [b for b in ((reach.phone if reach else None), found.url) if b]
        if bits:
            lines.append(f"{found.name.th}: {' '.join(bits)}")
    return lines


def course_reachable(course: Course, province: str | None) -> bool:
    """Whether someone in ``province`` (None: anywhere) can take part (as ``find_courses``)."""
    if not province or course.places.nationwide or province in course.places.province_codes:
        return True
    restricted = bool(course.places.province_codes)
    return course.format == "online" and not restricted


def related_topics(
    kb: Knowledge,
    topic: str,
    province: str | None = None,
    stage: int | None = None,
    on: dt.date | None = None,
    limit: int = 3,
) -> list[str]:
    """Other topics with courses one can take now, closest to ``topic`` first.

    Closeness: how often the two topics are taught together in one course, then how
    near their stages on the ladder are (logistics and online selling are both stage 2).
    """
    on = on or today()
    asked = kb.topics.get(topic)
    together: dict[str, int] = {}
    for course in kb.courses:
        if topic in course.topics:
            for mate in course.topics:
                if mate != topic:
                    together[mate] = together.get(mate, 0) + 1
    ranked: list[tuple[int, int, int, str]] = []
    for other_id, other in kb.topics.items():
        if other_id == topic:
            continue
        if not find_courses(kb, [other_id], stage=stage, province=province, on=on, limit=1):
            continue
        gap = abs((other.stage or 3) - (asked.stage or 3)) if asked else 0
        order = list(kb.topics).index(other_id)
        ranked.append((-together.get(other_id, 0), gap, order, other_id))
    ranked.sort()
    return [t for *_, t in ranked[:limit]]


@dataclass(frozen=True)
class CourseAlternatives:
    """What to offer when nothing fits: each is something that does have courses."""

    #: Online courses (on any topic) one can take from home.
    online: bool
    #: Courses on the topic elsewhere in the country (onsite in other provinces).
    other_provinces: bool
    #: Nearby topics with courses one can take from the asked place.
    topics: tuple[str, ...]


def online_courses(
    kb: Knowledge, topics: Iterable[str] = (), stage: int | None = None, on: dt.date | None = None
) -> list[CourseHit]:
    """Courses taught online that anyone can join, best first (all topics when none given)."""
    hits = find_courses(kb, topics, stage=stage, on=on, limit=len(kb.courses) or 1)
    return [h for h in hits if course_reachable(h.course, None) and h.course.format == "online"]


def course_alternatives(
    kb: Knowledge,
    topic: str,
    province: str | None = None,
    stage: int | None = None,
    on: dt.date | None = None,
) -> CourseAlternatives:
    """The nearest things to offer when ``find_courses`` found nothing for topic and place."""
    on = on or today()
    anywhere = find_courses(kb, [topic], stage=stage, on=on, limit=len(kb.courses) or 1)
    here = {h.course.id for h in find_courses(kb, [topic], stage=stage, province=province, on=on)}
    return CourseAlternatives(
        online=bool(online_courses(kb, stage=stage, on=on)),
        other_provinces=bool(province) and any(h.course.id not in here for h in anywhere),
        topics=tuple(related_topics(kb, topic, province, stage, on)),
    )
