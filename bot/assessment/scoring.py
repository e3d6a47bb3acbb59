"""The skills assessment's logic, free of LINE and storage: answers, stage, recommendations.

Three jobs, each a pure function of the knowledge snapshot:

- **Reading a typed answer** (:class:`AnswerMatcher`). A button label, an option number
  ("2", "๒", "1, 3"), an entity the intent engine found (a sector, a topic), or a phrase
  from ``intents/answers/*.yaml``. Phrases are compared after the engine's normalisation
  and word splitting, with particles dropped and spaces, punctuation and emoji removed, so
  "ขายในเฟซบุ๊ก อยู่แล้วครับ 😊" and "ขายในเฟซบุ๊กอยู่แล้ว" are the same text. Similarity is
  rapidfuzz's ratio, or its partial ratio scaled down by how much of the longer text the
  shorter one covers (a phrase inside a longer message still counts, but less than the
  whole message). An answer is taken only above ``THRESHOLD`` and ``MARGIN`` points ahead
  of the next option, and a phrase whose negation ("ไม่", "ยังไม่") disagrees with the
  message loses ``NEGATION_PENALTY``: "ยังไม่เคยขายออนไลน์" never reads as "ขายออนไลน์".
  A multi-choice question also finds every option named in one message ("หน้าร้านกับเฟซ").
- **Scoring** (:func:`score`): points to a stage 1-5 on the file's ladder, clamped by
  ``min_stage``/``max_stage``; ``needs`` weighted by question and order to the topics most
  needed; ``strong`` to what the user already does well.
- **Ranking recommendations** (:func:`rank`): courses for the most needed topics, export
  programmes only when the user is ready (their pre-screen reasons kept), and the nearest
  community digital centre first when digital skills are low.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pythainlp.tokenize import newmm
from rapidfuzz import fuzz

from bot.assessment.meaning import OptionMeaning
from bot.kb.assessment_schema import DONE, SKIP, AssessmentDef, Option, Question
from bot.kb.places import Gazetteer
from bot.kb.queries import CourseHit, ProgrammeHit
from bot.kb.schemas import Centre
from bot.nlu.text import normalise

#: Similarity (0-100) a phrase needs to count as the answer ...
THRESHOLD = 75.0
#: ... and how far ahead of the best phrase of any other option it must be.
MARGIN = 8.0
#: Taken off a phrase whose negation disagrees with the message.
NEGATION_PENALTY = 30.0
#: A phrase shorter than this (letters) only matches the whole message, never inside it.
PARTIAL_MIN_LEN = 3
#: Partial matches count ``BASE + GAIN * coverage`` of their score (coverage 0..1).
PARTIAL_BASE = 0.75
PARTIAL_GAIN = 0.2
#: In a multi-choice message, a phrase found inside it at this score names its option ...
CONTAINED = 90.0
#: ... and a misspelt one must be at least this long (letters).
CONTAINED_FUZZY_MIN_LEN = 5
#: Letters before a found phrase that are looked at for a negation ("ไม่ได้|ขายในเฟซ").
NEGATION_WINDOW = 12
#: "2", "1, 3", "๒ ๔" (Thai digits are Arabic after normalise): option numbers.
_NUMBERS = re.compile(r"^\s*\d{1,2}(?:\s*[\s,/&+.\-]\s*\d{1,2})*\s*[.)]?\s*$")
_THAI = re.compile(r"[\u0e00-\u0e7f]")

Words = Callable[[str], Sequence[str]]


def _letters(text: str) -> str:
    """Only letters, marks and digits: spaces, punctuation and emoji never change an answer."""
    return "".join(c for c in text if unicodedata.category(c)[0] in "LMN")


def default_words(text: str) -> list[str]:
    """Words without the intent engine (tests, tools): normalised and split on spaces."""
    return normalise(text).split()


@dataclass(frozen=True)
class Prepared:
    """A text as compared: squashed letters, where its words start and end, and "not"."""

    key: str
    negated: bool
    #: Offsets in ``key`` where a word starts or ends (0 and ``len(key)`` included).
    bounds: frozenset[int] = frozenset()
    #: The words kept (letters and digits only).
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    """What a message answered: option ids, a special (``_done``/``_skip``), or nothing."""

    options: tuple[str, ...] = ()
    special: str | None = None
    #: How it was read: number, exact, entity, contained, fuzzy (for tests and logs).
    how: str = ""

    def __bool__(self) -> bool:
        return bool(self.options or self.special)


@dataclass(frozen=True)
class _Example:
    option: str
    text: Prepared


def similarity(a: Prepared, b: Prepared) -> float:
    """0-100: whole-text ratio, or a partial match discounted by the share it covers.

    A partial match must sit on word edges of the longer text ("ไลน์" is not inside
    "ออนไลน์"); a misspelt one, at least on one edge.
    """
    if not a.key or not b.key:
        return 0.0
    if a.key == b.key:
        return 100.0
    full = float(fuzz.ratio(a.key, b.key))
    short, longer = (a, b) if len(a.key) <= len(b.key) else (b, a)
    if len(short.key) < PARTIAL_MIN_LEN:
        return full
    found = fuzz.partial_ratio_alignment(short.key, longer.key)
    if found is None or not _on_edges(longer, found.dest_start, found.dest_end, len(short.key)):
        return full
    coverage = len(short.key) / len(longer.key)
    return max(full, float(found.score) * (PARTIAL_BASE + PARTIAL_GAIN * coverage))


def _on_edges(text: Prepared, start: int, end: int, length: int) -> bool:
    """Whether a piece found in ``text`` starts and ends where words do (loosely if long)."""
    edges = (start in text.bounds) + (end in text.bounds)
    return edges == 2 or (edges == 1 and length >= CONTAINED_FUZZY_MIN_LEN)


class AnswerMatcher:
    """Reads typed answers to the questions of one assessment (built once per snapshot)."""

    def __init__(self, assessment: AssessmentDef, words: Words = default_words) -> None:
        self.assessment = assessment
        self._words = words
        phrases = assessment.phrases
        self._ignore = sorted(
            {tuple(w for w in words(i) if w) for i in phrases.ignore} - {()},
            key=len,
            reverse=True,
        )
        negs = [normalise(n) for n in phrases.negations]
        self._thai_neg = tuple(_letters(n) for n in negs if _THAI.search(n))
        self._latin_neg = frozenset(_letters(n) for n in negs if not _THAI.search(n))
        self._examples: dict[str, tuple[_Example, ...]] = {}
        self._exact: dict[str, dict[str, str]] = {}
        self._meaning: dict[str, OptionMeaning] = {}
        for q in assessment.questions:
            found: list[_Example] = []
            for option in q.options:
                texts = [option.label, *_label_parts(option.label)]
                texts += phrases.options.get(q.id, {}).get(option.id, ())
                found += [_Example(option.id, self.prepare(t)) for t in texts]
            for special in (DONE, SKIP):
                for t in phrases.options.get(q.id, {}).get(special, ()):
                    found.append(_Example(special, self.prepare(t)))
            examples = tuple(e for e in found if e.text.key)
            self._examples[q.id] = examples
            exact: dict[str, str] = {}
            for e in examples:
                exact.setdefault(e.text.key, e.option)
            self._exact[q.id] = exact
            self._meaning[q.id] = OptionMeaning(
                [
                    (e.option, e.text.words, e.text.negated)
                    for e in examples
                    if e.option not in (DONE, SKIP)
                ]
            )

    # -- preparing text ----------------------------------------------------------------------

    def prepare(self, text: str) -> Prepared:
        """The comparable form of a text: words, particles dropped, squashed."""
        words = [w for w in self._words(text) if _letters(w)]
        kept: list[str] = []
        i = 0
        while i < len(words):
            for seq in self._ignore:
                if tuple(words[i : i + len(seq)]) == seq:
                    i += len(seq)
                    break
            else:
                kept.append(words[i])
                i += 1
        if not kept:  # a message of particles only ("ครับ") keeps them: better than nothing
            kept = words
        pieces = [_letters(w) for w in kept]
        key = "".join(pieces)
        # Word edges of the engine's words (which keep domain phrases such as
        # "ขายผ่านไลน์" whole) and of the standard dictionary's finer split inside them.
        bounds = {0}
        at = 0
        for piece in pieces:
            for part in _finer(piece):
                at += len(part)
                bounds.add(at)
        negated = any(n in key for n in self._thai_neg) or any(p in self._latin_neg for p in pieces)
        return Prepared(key, negated, frozenset(bounds), tuple(p for p in pieces if p))

    # -- matching ------------------------------------------------------------------------------

    def match(
        self, question: Question, text: str, entities: Iterable[tuple[str, str]] = ()
    ) -> Match:
        """Read ``text`` as an answer to ``question``; ``entities`` are (type, value) pairs."""
        if question.kind == "place":
            prepared = self.prepare(text)
            found = self._exact[question.id].get(prepared.key) or self._fuzzy(question, prepared)
            return Match(special=found, how="phrase") if found == SKIP else Match()
        prepared = self.prepare(text)
        numbers = self._numbers(question, text, prepared)
        if numbers:
            return Match(numbers, how="number")
        if not prepared.key:
            return Match()
        exact = self._exact[question.id].get(prepared.key)
        if exact is not None:
            return _as_match(exact, "exact")
        by_entity = self._entities(question, entities)
        if by_entity:
            return by_entity
        if question.kind == "multi":
            inside = self._contained(question, prepared)
            if inside:
                return inside
        best = self._fuzzy(question, prepared)
        if best:
            return _as_match(best, "fuzzy")
        if all(w.isdigit() for w in prepared.words):
            return Match()  # numbers that are not option numbers mean nothing here
        meant = self._meaning[question.id].choose(prepared.words, prepared.negated)
        return Match((meant,), how="meaning") if meant else Match()

    def _numbers(self, question: Question, text: str, prepared: Prepared) -> tuple[str, ...]:
        """Option numbers typed instead of a label (1-based, as the buttons are listed):
        "2", "๒", "1, 3", "ข้อ 4 ครับ"."""
        norm = normalise(text)
        if _NUMBERS.match(norm):
            numbers = re.findall(r"\d+", norm)
        elif prepared.words and all(w.isdigit() and len(w) <= 2 for w in prepared.words):
            numbers = list(prepared.words)
        else:
            return ()
        picked: list[str] = []
        for n in numbers:
            index = int(n) - 1
            if not 0 <= index < len(question.options):
                return ()
            option = question.options[index].id
            if option not in picked:
                picked.append(option)
        if question.kind != "multi" and len(picked) != 1:
            return ()
        exclusive = {o.id for o in question.options if o.exclusive}
        if len(picked) > 1:
            picked = [o for o in picked if o not in exclusive] or picked[:1]
        return tuple(picked)

    def _entities(self, question: Question, entities: Iterable[tuple[str, str]]) -> Match:
        """Options whose ``entities`` (or, for the sector question, id) the message names."""
        wanted: dict[str, str] = {}
        for option in question.options:
            for ref in option.entities:
                wanted.setdefault(ref, option.id)
            if question.id == "sector":
                wanted.setdefault(f"sector:{option.id}", option.id)
        picked: list[str] = []
        for kind, value in entities:
            option_id = wanted.get(f"{kind}:{value}")
            if option_id and option_id not in picked:
                picked.append(option_id)
        if not picked:
            return Match()
        if question.kind != "multi":
            picked = picked[:1]  # the first named wins ("ขายกาแฟ ... และขนม")
        return Match(tuple(picked), how="entity")

    def _scored(self, question: Question, prepared: Prepared) -> dict[str, float]:
        best: dict[str, float] = {}
        for e in self._examples[question.id]:
            s = similarity(prepared, e.text)
            if e.text.negated != prepared.negated:
                s -= NEGATION_PENALTY
            if s > best.get(e.option, -math.inf):
                best[e.option] = s
        return best

    def _fuzzy(self, question: Question, prepared: Prepared) -> str | None:
        """The option whose phrases are clearly closest, if any is close enough."""
        ranked = sorted(self._scored(question, prepared).items(), key=lambda kv: -kv[1])
        if not ranked or ranked[0][1] < THRESHOLD:
            return None
        if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < MARGIN:
            return None
        return ranked[0][0]

    def scores(self, question: Question, text: str) -> dict[str, float]:
        """Each option's best phrase similarity to ``text`` (for tuning and tests)."""
        return self._scored(question, self.prepare(text))

    def _contained(self, question: Question, prepared: Prepared) -> Match:
        """Every option with a phrase inside the message; longer phrases hide shorter ones."""
        key = prepared.key
        hits: list[tuple[int, int, str, bool]] = []  # start, end, option, exclusive
        exclusive = {o.id for o in question.options if o.exclusive}
        for e in self._examples[question.id]:
            phrase = e.text.key
            if e.option in (DONE, SKIP) or len(phrase) < PARTIAL_MIN_LEN or len(phrase) > len(key):
                continue
            start = _find_on_edges(prepared, phrase)
            if start >= 0:
                end = start + len(phrase)
            elif len(phrase) >= CONTAINED_FUZZY_MIN_LEN:
                found = fuzz.partial_ratio_alignment(phrase, key, score_cutoff=CONTAINED)
                if found is None or not _on_edges(
                    prepared, found.dest_start, found.dest_end, len(phrase)
                ):
                    continue
                start, end = found.dest_start, found.dest_end
            else:
                continue
            before = key[max(0, start - NEGATION_WINDOW) : start]
            if not e.text.negated and any(n in before for n in self._thai_neg):
                continue  # "ไม่ได้|ขายในเฟซ": the phrase is denied
            hits.append((start, end, e.option, e.option in exclusive))
        kept = [
            h
            for h in hits
            if not any(
                o[2] != h[2] and o[0] <= h[0] and h[1] <= o[1] and (o[1] - o[0]) > (h[1] - h[0])
                for o in hits
            )
        ]
        kept.sort()
        options: list[str] = []
        for _, _, option, _ in kept:
            if option not in options:
                options.append(option)
        if len(options) > 1:
            # "หน้าร้าน แต่ยังไม่ขายออนไลน์": the channels named say more than the "none".
            options = [o for o in options if o not in exclusive] or options[:1]
        return Match(tuple(options), how="contained") if options else Match()


def _finer(word: str) -> list[str]:
    """A Thai word split with the standard dictionary only (Latin words stay whole)."""
    if len(word) < 2 * PARTIAL_MIN_LEN or not _THAI.search(word):
        return [word]
    parts = [_letters(p) for p in newmm.segment(word)]
    return [p for p in parts if p] if "".join(parts) == word else [word]


def _find_on_edges(text: Prepared, phrase: str) -> int:
    """Where ``phrase`` occurs in ``text`` starting and ending on word edges (-1: nowhere)."""
    start = text.key.find(phrase)
    while start >= 0:
        if start in text.bounds and start + len(phrase) in text.bounds:
            return start
        start = text.key.find(phrase, start + 1)
    return -1


def _label_parts(label: str) -> list[str]:
    """A label "เฟซบุ๊ก/ไลน์" is also answered by "ไลน์" alone."""
    parts = [p.strip() for p in re.split(r"[/,]", label)]
    return [p for p in parts if len(p) >= PARTIAL_MIN_LEN and p != label] if len(parts) > 1 else []


def _as_match(found: str, how: str) -> Match:
    if found in (DONE, SKIP):
        return Match(special=found, how=how)
    return Match((found,), how=how)


# -- places --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceAnswer:
    """A province code, or the provinces a shared place name may be in (ask which)."""

    province: str | None = None
    choices: tuple[str, ...] = ()


#: A typed text longer than this is not read as a place name on its own (only mentions).
RESOLVE_MAX_LEN = 30
#: How sure a place name read on its own must be (the gazetteer's 0..1 score).
RESOLVE_MIN_SCORE = 0.85


def match_place(
    text: str, entities: Iterable[tuple[str, tuple[str, ...]]], places: Gazetteer
) -> PlaceAnswer:
    """The province a message names: the engine's place entities, then the gazetteer.

    ``entities`` are (code, candidate codes) of province, district and subdistrict
    entities; a district or subdistrict gives its province.
    """
    provinces: list[str] = []
    for value, candidates in entities:
        for code in candidates or (value,):
            if code[:2] not in provinces:
                provinces.append(code[:2])
    if len(provinces) == 1:
        return PlaceAnswer(provinces[0])
    if provinces:
        return PlaceAnswer(choices=tuple(provinces))
    found = places.find_in_text(text)
    if not found and len(text.strip()) <= RESOLVE_MAX_LEN:
        found = places.resolve(text)
        if found.top and max(m.score for m in found.top) < RESOLVE_MIN_SCORE:
            return PlaceAnswer()
    if found.province_code:
        return PlaceAnswer(found.province_code)
    codes: list[str] = []
    for m in found.top:
        if m.province_code not in codes:
            codes.append(m.province_code)
    return PlaceAnswer(choices=tuple(codes)) if codes else PlaceAnswer()


# -- scoring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What the answers say: a stage, the topics to learn (most needed first), strengths."""

    stage: int
    points: int
    topics: tuple[str, ...]
    strengths: tuple[str, ...]
    suggest_centre: bool
    export_ready: bool
    #: ``needs`` weight of each ranked topic (for ranking courses).
    weights: Mapping[str, float] = field(default_factory=dict)


#: Each later topic in an option's ``needs`` counts this much less than the one before.
NEED_STEP = 0.15
#: What knowing a topic already (``strong``) takes off its need.
STRONG_DISCOUNT = 1.0


def chosen(assessment: AssessmentDef, answers: Mapping[str, Any]) -> list[tuple[Question, Option]]:
    """The options picked, question by question (a multi answer is a list of ids)."""
    out: list[tuple[Question, Option]] = []
    for q in assessment.questions:
        value = answers.get(q.id)
        ids = value if isinstance(value, list | tuple) else [value]
        for option_id in ids:
            option = q.option(str(option_id)) if option_id is not None else None
            if option is not None:
                out.append((q, option))
    return out


def score(
    assessment: AssessmentDef,
    answers: Mapping[str, Any],
    topic_stages: Mapping[str, int | None],
) -> Result:
    """Stage, topics most needed and strengths from the answers (``{question id: option}``).

    ``topic_stages`` is every topic id (in topics.yaml order) with its ladder stage.
    """
    picks = chosen(assessment, answers)
    points = 0
    for q in assessment.questions:
        mine = [o.points for qq, o in picks if qq.id == q.id]
        points += max(mine, default=0)  # a multi answer counts its best channel
    stage = max((s.stage for s in assessment.stages if points >= s.min_points), default=1)
    ceiling = min((o.max_stage for _, o in picks if o.max_stage), default=5)
    floor = max((o.min_stage for _, o in picks if o.min_stage), default=1)
    stage = max(min(stage, ceiling), floor)

    need: dict[str, float] = {}
    strong: list[str] = []
    for q, option in picks:
        for i, topic in enumerate(option.needs):
            need[topic] = need.get(topic, 0.0) + q.weight * max(0.1, 1.0 - NEED_STEP * i)
        strong += [t for t in option.strong if t not in strong]
    for topic in strong:
        if topic in need:
            need[topic] -= STRONG_DISCOUNT
    order = list(topic_stages)

    def distance(topic: str) -> int:
        level = topic_stages.get(topic)
        return abs(level - stage) if level else 2

    ranked = sorted(
        (t for t, w in need.items() if w > 0 and t in topic_stages),
        key=lambda t: (-round(need[t], 6), distance(t), order.index(t)),
    )
    if not ranked:  # nothing asked for anything: the topics of their rung of the ladder
        ranked = [t for t in order if topic_stages.get(t) == stage] or order[:1]
        need = {t: 1.0 for t in ranked}
    top = set(ranked[: assessment.scoring.show_topics])
    return Result(
        stage=stage,
        points=points,
        topics=tuple(ranked),
        strengths=tuple(t for t in strong if t not in top),
        suggest_centre=any(o.suggest_centre for _, o in picks),
        export_ready=stage >= assessment.scoring.programmes_from_stage
        or any(o.export_ready for _, o in picks),
        weights={t: round(need[t], 3) for t in ranked},
    )


# -- recommendations -----------------------------------------------------------------------

_AVAILABILITY = {"open": 3, "upcoming": 2, "unknown": 1, "closed": 0}


@dataclass(frozen=True)
class Pick:
    """One card of the result, how well it fits, and the topic it answers (for "why")."""

    kind: Literal["centre", "course", "programme"]
    item: Any
    fit: float
    topic: str | None = None
    distance_km: float | None = None


def _relative(result: Result) -> dict[str, float]:
    """Each needed topic's weight relative to the most needed one (1.0)."""
    if not result.weights:
        return {}
    top = max(result.weights.values()) or 1.0
    return {t: w / top for t, w in result.weights.items()}


def course_fit(hit: CourseHit, result: Result) -> tuple[float, str | None]:
    """How well a course fits: the need of its best topic, then availability, place, level."""
    rel = _relative(result)
    matched = sorted(hit.matched_topics, key=lambda t: -rel.get(t, 0.0))
    best = matched[0] if matched else None
    fit = 4.0 * rel.get(best, 0.0) if best else 0.0
    fit += 0.5 * sum(rel.get(t, 0.0) for t in matched[1:])
    fit += 0.75 * _AVAILABILITY[hit.availability] + (1.0 if hit.local else 0.0)
    fit -= 0.75 * abs(hit.course.stage - result.stage)
    return round(fit, 3), best


def programme_fit(hit: ProgrammeHit, result: Result) -> float:
    """Programmes the business can apply to come first; each certain obstacle costs."""
    rel = _relative(result)
    fit = 1.0 + 3.0 * rel.get("export_trade", 0.0)
    fit += 0.75 * _AVAILABILITY[hit.availability]
    fit -= 2.0 * sum(r.certain for r in hit.reasons) + 0.5 * sum(not r.certain for r in hit.reasons)
    return round(fit, 3)


def rank(
    assessment: AssessmentDef,
    result: Result,
    courses: Sequence[CourseHit],
    programmes: Sequence[ProgrammeHit] = (),
    centre: tuple[Centre, float] | None = None,
) -> list[Pick]:
    """The result's cards, best fit first: the centre (low skills), courses, programmes."""
    scoring = assessment.scoring
    picks: list[Pick] = []
    for hit in courses:
        fit, topic = course_fit(hit, result)
        picks.append(Pick("course", hit, fit, topic))
    if result.export_ready:
        ranked = sorted(
            (Pick("programme", h, programme_fit(h, result)) for h in programmes),
            key=lambda p: -p.fit,
        )
        picks += ranked[: scoring.max_programmes]
    kind_order = {"centre": 0, "course": 1, "programme": 2}
    picks.sort(key=lambda p: (-p.fit, kind_order[p.kind], _name(p)))
    if centre is not None and result.suggest_centre:
        # Someone new to phones and computers is helped most by a place to learn nearby.
        picks.insert(0, Pick("centre", centre[0], math.inf, None, centre[1]))
    return picks[: scoring.max_cards]


def _name(pick: Pick) -> str:
    item = pick.item
    if isinstance(item, CourseHit):
        return item.course.name.th
    if isinstance(item, ProgrammeHit):
        return item.programme.name.th
    return str(getattr(item, "name_th", ""))
