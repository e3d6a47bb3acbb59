"""Entities in a message: topics, markets, sectors (knowledge synonyms) and places (gazetteer).

Synonyms are matched whole-word on the message's words (the tokeniser keeps them whole),
longest first. Thai topic synonyms are then also looked for across and inside words, at
letter-cluster boundaries that touch a word boundary: newmm glues "เสีย|ภาษี" into one
dictionary word "เสียภาษี" and splits "เปิดร้าน" over "เปิด|ร้านกาแฟ", and the topic is still
named. A few phrases that only look like a topic ("บัญชีของฉัน" is a user account,
"ต่อภาษีรถ" a car tax, "ศูนย์ดิจิทัล" a place) are indexed as *not a topic* so the longest
match swallows them. A synonym written with "..." between two parts ("ขาย ... ออนไลน์")
names its topic when both parts occur in that order with at most ``GAP_WORDS`` words
between them ("ขาย|เสื้อผ้า|ออนไลน์"). A word the intents have never seen is also compared
with rapidfuzz,
so a typo ("shoppee", "ลาซาดา") still finds its topic. Places come from the knowledge's
``Gazetteer``: ``find_in_text`` first, then, for words nobody has seen, ``resolve`` (which
knows misspellings and nicknames such as "เชียงไหม่" or "กทม").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

from bot.kb.places import Gazetteer, PlaceMatch, PlaceResult
from bot.nlu.text import Spelling, WordIndex, normalise
from bot.thai_text import can_cut

if TYPE_CHECKING:
    from bot.kb.loader import Knowledge

__all__ = ["ENTITY_TYPES", "Entity", "EntityTables", "Mention"]

ENTITY_TYPES = ("topic", "market", "sector", "province", "district", "subdistrict")
#: rapidfuzz ratio for a misspelt synonym; shorter words must match exactly.
FUZZY_CUTOFF = 85.0
FUZZY_MIN_LEN = 4
#: A misspelt place name (gazetteer score 0..1) must be at least this close and this long.
PLACE_FUZZY_MIN = 0.85
PLACE_FUZZY_MIN_LEN = 5
#: At most this many words of a message are looked up fuzzily (keeps the worst case short).
MAX_FUZZY_SPANS = 8
#: Thai topic synonyms at least this long are also found inside and across words.
INSIDE_MIN_LEN = 4
#: A gapped synonym ("ขาย ... ออนไลน์") allows at most this many words between its parts.
GAP_WORDS = 3
GAP = "..."
#: Phrases that contain a topic synonym but do not name the topic (matched longest-first
#: like synonyms, then dropped): user accounts, other taxes, the centres' own name,
#: free access to a computer or the internet (a centre question, not a course topic).
NOT_TOPICS = (
    "บัญชีของฉัน",
    "บัญชีของผม",
    "บัญชีของหนู",
    "บัญชีของเรา",
    "บัญชีผม",
    "บัญชีฉัน",
    "บัญชีผู้ใช้",
    "บัญชีไลน์",
    "บัญชี line",
    "บัญชีเฟซบุ๊ก",
    "บัญชีเฟสบุ๊ค",
    "บัญชีธนาคาร",
    "บัญชีเงินฝาก",
    "เลขบัญชี",
    "เปิดบัญชี",
    "ลบบัญชี",
    "ยกเลิกบัญชี",
    "ข้อมูลบัญชี",
    "ผิดบัญชี",
    "เข้าบัญชี",
    "ยอดเงินในบัญชี",
    "ภาษีรถ",
    "ภาษีรถยนต์",
    "ต่อภาษี",
    "ภาษีที่ดิน",
    "ภาษีบ้าน",
    "ศูนย์ดิจิทัล",
    "ศูนย์ดิจิตอล",
    "ศูนย์ดิจิทัลชุมชน",
    "ดิจิทัลชุมชน",
    "เงินดิจิทัล",
    "อินเทอร์เน็ตฟรี",
    "อินเตอร์เน็ตฟรี",
    "อินเทอร์เน็ตตำบล",
    "อินเทอร์เน็ตชุมชน",
    "ใช้คอมฟรี",
    "ใช้อินเทอร์เน็ตฟรี",
    "free internet",
    "internet access",
)
_NOT_A_TOPIC = ("", "")

Tokenise = Callable[[str], list[str]]


@dataclass(frozen=True)
class Entity:
    """Something the message names: a topic id, a DOPA code or a market code.

    ``candidates`` lists every code when the name is shared by several places
    ("หนองบัว"); ``value`` is then the first of them and the dialogue should ask which.
    """

    type: str
    value: str
    text: str
    score: float
    candidates: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": self.type,
            "value": self.value,
            "text": self.text,
            "score": round(self.score, 3),
        }
        if self.candidates:
            out["candidates"] = list(self.candidates)
        return out


@dataclass(frozen=True)
class Mention:
    """A synonym found in the words: where, what, and how sure."""

    start: int
    end: int
    type: str
    value: str
    score: float


def _squash(text: str) -> str:
    return "".join(text.split())


_THAI_ONLY = re.compile(r"^[\u0e00-\u0e7f]+$")
_GAP_SPLIT = re.compile(r"\s*(?:\.\.\.|\u2026)\s*")


@dataclass(frozen=True, eq=False)
class EntityTables:
    """Synonym tables of one knowledge snapshot, plus its gazetteer."""

    synonyms: dict[str, tuple[str, str]]  # squashed key -> (type, value)
    max_words: int
    places: Gazetteer | None = None
    _fuzzy_keys: tuple[str, ...] = field(default=(), repr=False)
    #: Gapped synonyms: (first part, second part, type, value), parts as squashed word keys.
    _gapped: tuple[tuple[str, str, str, str], ...] = field(default=(), repr=False)
    #: Thai topic synonyms (and not-a-topic phrases) looked for inside and across words.
    _inside: WordIndex = field(default=WordIndex(frozenset()), repr=False)
    #: Province and district names (and province nicknames) as single words.
    _place_names: WordIndex = field(default=WordIndex(frozenset()), repr=False)
    _province_aliases: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def build(
        cls, knowledge: Knowledge | None, spelling: Spelling, tokenise: Tokenise
    ) -> EntityTables:
        """Index every synonym and label as the tokeniser will split it."""
        table: dict[str, tuple[str, str]] = {}
        gapped: list[tuple[str, str, str, str]] = []
        longest = 1
        if knowledge is not None:
            groups: list[tuple[str, str, Iterable[str]]] = []
            for tid, topic in sorted(knowledge.topics.items()):
                groups.append(("topic", tid, [*topic.synonyms, topic.label.th, topic.label.en]))
            for code, market in sorted(knowledge.markets.items()):
                groups.append(("market", code, [*market.synonyms, market.name.th, market.name.en]))
            for sid, sector in sorted(knowledge.sectors.items()):
                if sid == "all":
                    continue
                groups.append(("sector", sid, [*sector.synonyms, sector.label.th, sector.label.en]))
            for kind, value, names in groups:
                for name in names:
                    if GAP in name or "\u2026" in name:
                        parts = [
                            "".join(spelling.apply_words(tokenise(spelling.apply_inside(p))))
                            for p in map(normalise, _GAP_SPLIT.split(name))
                        ]
                        if len(parts) == 2 and all(parts):
                            gapped.append((parts[0], parts[1], kind, value))
                        continue
                    for form in {normalise(name), spelling.apply_inside(normalise(name))}:
                        words = spelling.apply_words(tokenise(form))
                        key = "".join(words)
                        if len(key) < 2:
                            continue
                        # synonyms come first, labels last: a label never steals a synonym
                        table.setdefault(key, (kind, value))
                        longest = max(longest, len(words))
            for phrase in NOT_TOPICS:
                words = spelling.apply_words(tokenise(spelling.apply_inside(normalise(phrase))))
                key = "".join(words)
                if key not in table:
                    table[key] = _NOT_A_TOPIC
                    longest = max(longest, len(words))
        keys = tuple(sorted(k for k, v in table.items() if len(k) >= FUZZY_MIN_LEN and v[0]))
        inside = frozenset(
            k
            for k, v in table.items()
            if v[0] in ("topic", "") and len(k) >= INSIDE_MIN_LEN and _THAI_ONLY.match(k)
        )
        place_names: set[str] = set()
        aliases: set[str] = set()
        if knowledge is not None:
            for p in knowledge.places.provinces.values():
                place_names.add(normalise(p.name_th))
                aliases.update(normalise(a) for a in p.aliases if len(a) >= 3)
            for d in knowledge.places.districts.values():
                place_names.update(
                    normalise(n) for n in (d.name_th_short, *d.aliases) if len(n) >= 5
                )
        return cls(
            synonyms=table,
            max_words=longest,
            places=knowledge.places if knowledge is not None else None,
            _fuzzy_keys=keys,
            _gapped=tuple(gapped),
            _inside=WordIndex(inside),
            _place_names=WordIndex(frozenset(place_names | aliases)),
            _province_aliases=frozenset(aliases),
        )

    @property
    def words(self) -> set[str]:
        """Synonyms written without spaces (for the tokeniser's dictionary)."""
        return set(self.synonyms)

    # -- finding --------------------------------------------------------------------------

    def find(
        self,
        words: Sequence[str],
        unseen: Sequence[bool],
        normalised: str,
        odd: Sequence[bool] | None = None,
    ) -> list[Entity]:
        """Entities of a message, given its words and which words the intents never saw.

        ``odd`` marks words that are not in the standard dictionary either (nicknames and
        abbreviations such as "กทม" may have been seen in examples, yet are worth a look-up).
        """
        mentions = self._exact(words)
        covered = [False] * len(words)
        for m in mentions:
            for i in range(m.start, m.end):
                covered[i] = True
        inside = self._inside_words(words, mentions, covered)
        inside += self._gapped_words(words, mentions)
        spans = self._fuzzy_spans(words, unseen, covered)
        mentions.extend(self._fuzzy(words, spans, covered))
        mentions.sort(key=lambda m: (m.start, m.end))
        found: list[tuple[int, str, str, str, float]] = [
            (m.start, m.type, m.value, "".join(words[m.start : m.end]), m.score) for m in mentions
        ]
        found += inside
        found.sort(key=lambda f: f[0])
        out: list[Entity] = []
        seen: set[tuple[str, str]] = set()
        surfaces: set[str] = set()
        for _start, kind, value, surface, score in found:
            surfaces.add(surface)
            if kind and (kind, value) not in seen:
                seen.add((kind, value))
                out.append(Entity(kind, value, surface, score))
        if self.places is not None:
            flags = [a or b for a, b in zip(unseen, odd or unseen, strict=True)]
            out.extend(self._places(words, flags, covered, normalised, surfaces))
        return out

    def _exact(self, words: Sequence[str]) -> list[Mention]:
        """Longest synonyms made of whole words, left to right, not overlapping."""
        found: list[Mention] = []
        i, n = 0, len(words)
        table = self.synonyms
        while i < n:
            hit: Mention | None = None
            for size in range(min(self.max_words, n - i), 0, -1):
                key = "".join(words[i : i + size])
                entry = table.get(key)
                if entry is not None:
                    hit = Mention(i, i + size, entry[0], entry[1], 1.0)
                    break
            if hit is None:
                i += 1
            else:
                found.append(hit)
                i = hit.end
        return found

    def _inside_words(
        self, words: Sequence[str], mentions: Sequence[Mention], covered: list[bool]
    ) -> list[tuple[int, str, str, str, float]]:
        """Thai topic synonyms inside one word or across words ("เสีย|ภาษี", "เปิด|ร้านกาแฟ").

        A match must start and end between letter clusters, touch a word boundary at one end
        at least, and lie outside every topic (or not-a-topic) match already made; it may
        overlap a market or sector ("ร้านกาแฟ" is a sector, "เปิดร้าน" still a topic). Words it
        touches count as covered (no fuzzy look-up for them). Returns ``(word index, type,
        value, surface, score)`` rows.
        """
        index = self._inside
        squashed = "".join(words)
        heads = index.heads
        candidates = [i for i in range(len(squashed) - 1) if squashed[i : i + 2] in heads]
        if not candidates:
            return []
        n = len(squashed)
        bounds: set[int] = {0}
        owner = [0] * n  # word index of each letter
        offsets = [0]
        for i, word in enumerate(words):
            owner[offsets[-1] : offsets[-1] + len(word)] = [i] * len(word)
            offsets.append(offsets[-1] + len(word))
        bounds.update(offsets)
        taken = [False] * n
        for m in mentions:
            if m.type in ("topic", ""):
                for c in range(offsets[m.start], offsets[m.end]):
                    taken[c] = True
        out: list[tuple[int, str, str, str, float]] = []
        done = 0
        for i in candidates:
            if i < done or taken[i] or not can_cut(squashed, i):
                continue
            hit = ""
            for key in reversed(index.prefixes(squashed, i)):
                end = i + len(key)
                if (
                    len(key) >= INSIDE_MIN_LEN
                    and can_cut(squashed, end)
                    and (i in bounds or end in bounds)
                    and not any(taken[i:end])
                ):
                    hit = key
                    break
            if not hit:
                continue
            end = done = i + len(hit)
            kind, value = self.synonyms[hit]
            out.append((owner[i], kind, value, hit, 1.0))
            for c in range(i, end):
                taken[c] = True
            for w in range(owner[i], owner[end - 1] + 1):
                covered[w] = True
        return out

    def _gapped_words(
        self, words: Sequence[str], mentions: Sequence[Mention]
    ) -> list[tuple[int, str, str, str, float]]:
        """Gapped synonyms: both parts as whole words, in order, few words apart."""
        if not self._gapped:
            return []
        blocked = [False] * len(words)
        for m in mentions:
            if not m.type:
                for i in range(m.start, m.end):
                    blocked[i] = True
        out: list[tuple[int, str, str, str, float]] = []
        n = len(words)
        squashed = "".join(words)
        for first, second, kind, value in self._gapped:
            if first not in squashed or second not in squashed:
                continue
            for i in range(n):
                a = _ends_at(words, i, first, blocked)
                if a < 0:
                    continue
                for j in range(a, min(n, a + GAP_WORDS + 1)):
                    b = _ends_at(words, j, second, blocked)
                    if b >= 0:
                        out.append((i, kind, value, "".join(words[i:b]), 1.0))
                        break
                else:
                    continue
                break
        return out

    @staticmethod
    def _fuzzy_spans(
        words: Sequence[str], unseen: Sequence[bool], covered: Sequence[bool]
    ) -> list[tuple[int, int]]:
        """Runs of up to three uncovered words that contain a word the intents never saw."""
        spans: list[tuple[int, int]] = []
        n = len(words)
        for i in range(n):
            if not unseen[i] or covered[i] or len(words[i]) < 2:
                continue
            for start in range(max(0, i - 2), i + 1):
                for end in range(i + 1, min(n, start + 3) + 1):
                    if any(covered[start:end]) or (start, end) in spans:
                        continue
                    spans.append((start, end))
        # longer spans first: "ช้อป|ปี่" as a whole beats its pieces
        spans.sort(key=lambda s: (-(s[1] - s[0]), s[0]))
        return spans[:MAX_FUZZY_SPANS]

    def _fuzzy(
        self, words: Sequence[str], spans: Sequence[tuple[int, int]], covered: list[bool]
    ) -> list[Mention]:
        found: list[Mention] = []
        if not self._fuzzy_keys:
            return found
        for start, end in spans:
            if any(covered[start:end]):
                continue
            text = "".join(words[start:end])
            if len(text) < FUZZY_MIN_LEN:
                continue
            hit = process.extractOne(
                text, self._fuzzy_keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
            )
            if hit is None:
                continue
            kind, value = self.synonyms[hit[0]]
            found.append(Mention(start, end, kind, value, round(hit[1] / 100.0, 3)))
            for i in range(start, end):
                covered[i] = True
        return found

    def _places(
        self,
        words: Sequence[str],
        unseen: Sequence[bool],
        covered: Sequence[bool],
        normalised: str,
        taken: set[str],
    ) -> list[Entity]:
        places = self.places
        assert places is not None
        result = places.find_in_text(normalised)
        if not result:
            result = self._whole_words(places, words, covered)
        if not result:
            result = self._resolve_unseen(places, words, unseen, covered)
        if not result:
            return []
        return _place_entities(places, result, normalised, taken)

    def _whole_words(
        self, places: Gazetteer, words: Sequence[str], covered: Sequence[bool]
    ) -> PlaceResult:
        """A province or district name that starts a word ("ที่|เชียงราย|ได้", "เชียง|รายได้").

        The gazetteer prefers missing a place to inventing one, so "เชียงรายได้" reads as
        เชียง + รายได้ to it; a known province or district name that starts one of the
        message's words and ends on a letter boundary is still taken here.
        """
        squashed = "".join(words)
        start = 0
        for i, word in enumerate(words):
            here, start = start, start + len(word)
            if covered[i]:
                continue
            for name in reversed(self._place_names.prefixes(squashed, here)):
                if not can_cut(squashed, here + len(name)):
                    continue
                result = places.find_in_text(name)
                if not result and name in self._province_aliases:
                    found = places.resolve(name)
                    if found and all(m.exact and m.level == "province" for m in found.top):
                        result = found
                if result:
                    return result
        return PlaceResult("")

    @staticmethod
    def _resolve_unseen(
        places: Gazetteer,
        words: Sequence[str],
        unseen: Sequence[bool],
        covered: Sequence[bool],
    ) -> PlaceResult:
        """Misspelt or nicknamed places among the words nobody has written in an example."""
        for start, end in EntityTables._fuzzy_spans(words, unseen, covered):
            text = "".join(words[start:end])
            if len(text) < 3:
                continue
            result = places.resolve(text)
            if not result:
                continue
            top = result.top
            fuzzy_ok = len(text) >= PLACE_FUZZY_MIN_LEN and all(
                not m.exact and m.score >= PLACE_FUZZY_MIN for m in top
            )
            nickname_ok = all(m.exact and m.level == "province" for m in top) and end - start == 1
            if top and (fuzzy_ok or nickname_ok):
                return result
        return PlaceResult("")


def _ends_at(words: Sequence[str], start: int, key: str, blocked: Sequence[bool]) -> int:
    """Where the words from ``start`` that spell ``key`` end (-1: they do not spell it)."""
    text = ""
    for i in range(start, len(words)):
        if blocked[i]:
            return -1
        text += words[i]
        if text == key:
            return i + 1
        if not key.startswith(text):
            return -1
    return -1


def _surface(places: Gazetteer, match: PlaceMatch, normalised: str) -> str:
    """The words of the message that named ``match`` (its Thai name if they cannot be found)."""
    area = places.get(match.code)
    names = [area.name_th, *area.aliases]
    short = getattr(area, "name_th_short", None)
    if short:
        names.append(short)
    squashed = _squash(normalised)
    for name in sorted(names, key=len, reverse=True):
        key = _squash(name.lower())
        if key and key in squashed:
            return name
    return match.name_th


def _place_entities(
    places: Gazetteer, result: PlaceResult, normalised: str, taken: set[str]
) -> list[Entity]:
    """Entities of the places found: each name on its own, a shared name with candidates.

    Several names ("โคราช อุบล") give one entity each; one name that several places carry
    ("หนองบัว") gives one entity per level, each listing every code it may mean.
    """
    top = result.top if result.top else result.candidates[:1]
    groups: dict[str, list[PlaceMatch]] = {}
    for match in top:
        groups.setdefault(_surface(places, match, normalised), []).append(match)
    out: list[Entity] = []
    seen: set[tuple[str, str]] = set()
    for surface, matches in groups.items():
        if surface in taken:
            continue  # the same words already named a topic or market
        for entity in _name_entities(surface, matches):
            if (entity.type, entity.value) not in seen:
                seen.add((entity.type, entity.value))
                out.append(entity)
    return out


def _name_entities(surface: str, matches: Sequence[PlaceMatch]) -> list[Entity]:
    """The entities of one typed name; a district implies its province, and so on."""
    codes = tuple(m.code for m in matches) if len(matches) > 1 else ()
    out: list[Entity] = []
    for level in ("province", "district", "subdistrict"):
        at_level = [m for m in matches if m.level == level]
        if at_level:
            out.append(Entity(level, at_level[0].code, surface, at_level[0].score, codes))
    score = matches[0].score
    provinces = {m.province_code for m in matches}
    districts = {m.district_code for m in matches}
    have = {e.type for e in out}
    if "province" not in have and len(provinces) == 1:
        out.insert(0, Entity("province", provinces.pop(), surface, score))
    if "district" not in have and len(districts) == 1 and "subdistrict" in have:
        code = districts.pop()
        if code:
            out.insert(1, Entity("district", code, surface, score))
    return out
