"""What a typed place can mean: candidate areas, ranked, and how mentions combine.

A text may name several areas ("ต.ในเมือง อ.เมือง จ.ขอนแก่น") and each name may fit
several areas of the country; :func:`combine` turns those mentions into one
:class:`PlaceResult` whose first ``n_top`` candidates are the equally good answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.kb.places.areas import Level

__all__ = ["PlaceMatch", "PlaceResult", "collapse", "combine", "rank"]

_LEVEL_RANK = {"province": 0, "district": 1, "subdistrict": 2}


@dataclass(frozen=True, slots=True)
class PlaceMatch:
    """One reading of the text: an area, how well it matched (0..1) and whether exactly."""

    level: Level
    code: str
    name_th: str
    province_code: str
    score: float
    exact: bool
    district_code: str | None = None

    def is_within(self, other: PlaceMatch) -> bool:
        """True when this area lies inside ``other`` (a strictly larger area)."""
        if other.level == "province":
            return self.level != "province" and self.province_code == other.code
        if other.level == "district":
            return self.level == "subdistrict" and self.district_code == other.code
        return False


@dataclass(frozen=True, slots=True)
class PlaceResult:
    """Candidates best first; the first ``n_top`` are the equally good answers."""

    query: str
    candidates: tuple[PlaceMatch, ...] = ()
    n_top: int = 0

    @property
    def top(self) -> tuple[PlaceMatch, ...]:
        return self.candidates[: self.n_top]

    @property
    def best(self) -> PlaceMatch | None:
        """The answer when exactly one stands out, else None (nothing found, or ambiguous)."""
        return self.candidates[0] if self.n_top == 1 else None

    @property
    def ambiguous(self) -> bool:
        """Several equally good answers: ask the user for the district or province."""
        return self.n_top > 1

    @property
    def province_code(self) -> str | None:
        """The province implied by the answer, also when the top answers all share one."""
        codes = {match.province_code for match in self.top}
        return codes.pop() if len(codes) == 1 else None

    @property
    def district_code(self) -> str | None:
        """The district implied by the answer (a district or a subdistrict in it), if one."""
        codes = {match.district_code for match in self.top}
        if len(codes) != 1:
            return None
        return codes.pop()

    def __bool__(self) -> bool:
        return bool(self.candidates)


def rank(match: PlaceMatch) -> tuple[float, int, str]:
    """Sort key: best score first, then the larger area, then the code."""
    return (-match.score, _LEVEL_RANK[match.level], match.code)


def collapse(matches: Sequence[PlaceMatch]) -> list[PlaceMatch]:
    """The equally good readings of one name, minus areas inside another reading.

    "หาดใหญ่" is a district and a subdistrict inside it: the district. A province name
    typed alone means the province ("ขอนแก่น" is also a subdistrict in Roi Et).
    """
    if not matches:
        return []
    best = max(m.score for m in matches)
    top = [m for m in matches if m.score >= best - 1e-9]
    provinces = {m.code for m in top if m.level == "province"}
    districts = {m.code for m in top if m.level == "district"}
    top = [
        m
        for m in top
        if not (m.level != "province" and m.province_code in provinces)
        and not (m.level == "subdistrict" and m.district_code in districts)
    ]
    if provinces:
        top = [m for m in top if m.level == "province"]
    return sorted(top, key=rank)


def combine(query: str, mentions: list[list[PlaceMatch]]) -> PlaceResult:
    """Combine the mentions of one text into ranked answers.

    Each candidate is supported by the mentions that name it or an area around it; the
    best supported win ("ต.ในเมือง อ.เมือง จ.ขอนแก่น" → the one ในเมือง in เมืองขอนแก่น).
    An area named separately from a smaller area inside it gives way to the smaller one;
    several readings of the same name keep the larger area (see :func:`collapse`).
    """
    unique: dict[frozenset[tuple[Level, str]], list[PlaceMatch]] = {}
    for mention in mentions:  # "หาดใหญ่ ... หาดใหญ่" is one mention, not two
        if mention:
            unique.setdefault(frozenset((c.level, c.code) for c in mention), mention)
    mentions = list(unique.values())
    if not mentions:
        return PlaceResult(query)
    codes = [{c.code for c in m} for m in mentions]
    preferred = [{c.code for c in collapse(m)} for m in mentions]

    def backed(c: PlaceMatch, sets: list[set[str]]) -> int:
        return sum(
            1
            for names in sets
            if c.code in names or c.province_code in names or c.district_code in names
        )

    # How many mentions back a candidate, then how many back it with their own first
    # reading: "อ.เมือง ขอนแก่น" is เมืองขอนแก่น, not ต.ขอนแก่น in อ.เมืองร้อยเอ็ด.
    support: list[list[tuple[int, int]]] = [
        [(backed(c, codes), backed(c, preferred)) for c in mention] for mention in mentions
    ]
    most = max(max(row) for row in support)
    kept = [
        [c for c, n in zip(mention, row, strict=True) if n == most]
        for mention, row in zip(mentions, support, strict=True)
    ]
    # Areas that contain a kept area from another mention give way to it.
    inside: dict[str, set[int]] = {}
    for i, mention in enumerate(kept):
        for c in mention:
            if c.level != "province":
                inside.setdefault(c.province_code, set()).add(i)
            if c.level == "subdistrict" and c.district_code:
                inside.setdefault(c.district_code, set()).add(i)
    tops: list[list[PlaceMatch]] = []
    for i, mention in enumerate(kept):
        tops.append(collapse([c for c in mention if not inside.get(c.code, set()) - {i}]))
    top: dict[tuple[Level, str], PlaceMatch] = {}
    for mention in tops:
        for c in mention:
            top.setdefault((c.level, c.code), c)
    rest: dict[tuple[Level, str], PlaceMatch] = {}
    for mention in mentions:
        for c in mention:
            key = (c.level, c.code)
            if key not in top and (key not in rest or rest[key].score < c.score):
                rest[key] = c
    ordered = list(top.values())
    if sum(1 for mention in tops if mention) == 1:
        ordered.sort(key=rank)
    return PlaceResult(query, tuple(ordered) + tuple(sorted(rest.values(), key=rank)), len(ordered))
