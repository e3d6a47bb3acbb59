"""Messages that carry more than one thing: a greeting and a request, a negated need, two asks.

People write "สวัสดีค่ะ สนใจคอร์สเย็บผ้าค่ะ อยู่ลำปาง" (greeting + request), "ไม่ได้จะส่งออกนะ
อยากได้คอร์สการตลาดในประเทศ" (a need they do NOT have, then the one they do) and "จดทะเบียน
ต้องใช้อะไร ค่าธรรมเนียมเท่าไหร่" (two questions). A classifier reads the whole message as one
thing, and the loudest part wins. So a message with clause breaks (spaces, joiners such as
"แล้วก็", particles such as "ครับ" with text after them) is also read split in two at each
break, and:

1. a greeting, thanks or goodbye next to a confident request is answered as the request;
2. a clause that starts with a negation ("ไม่ได้", "ยังไม่", "ไม่ต้อง" ...) never decides the
   answer when another clause makes a confident request; a message that is only a negated
   need does not trigger that need (except for intents whose own examples are negations,
   such as unsubscribing, learned from the example phrases);
3. two confident, different requests, both present in the whole message's reading: the one
   it reads most is answered and the other is offered (``also``).

The words are operators' data (``intents/clauses.csv``), not code.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.kb.sources import Problem
from bot.nlu.text import normalise

__all__ = ["CLAUSES_FILE", "ClauseMarkers", "Reading", "load_markers", "split_readings"]

CLAUSES_FILE = "clauses.csv"
KINDS = ("negation", "joiner", "ender", "vocative")
#: Greetings and small talk: never "the request" when a request stands next to them.
SOCIAL = frozenset({"greet", "thanks", "goodbye"})
#: Without a joiner, two requests must each hold this share of the whole message's reading.
SECOND_SHARE = 0.15
#: Never offered as a second request: a "how?" at the end of a question reads as help.
NEVER_SECOND = frozenset({"help", "cancel", "back"})
#: Split points tried per message (each costs two classifications): all kinds when the
#: whole message is unclear, social or negated; else only strong breaks (a space or a joiner
#: between two clauses of at least ``MIN_CLAUSE_WORDS`` words), looking for a second request.
MAX_POINTS = 6
MAX_STRONG_POINTS = 3
MIN_CLAUSE_WORDS = 2
#: An intent whose examples start with a negation this often is itself a negation
#: (unsubscribe: "ไม่รับแจ้งเตือนแล้ว"), so a negation never cancels it.
NEGATIVE_SHARE = 0.1


@dataclass(frozen=True)
class ClauseMarkers:
    """Words that start a negated clause, join two requests, or end a clause."""

    negations: tuple[tuple[str, ...], ...] = ()
    joiners: frozenset[tuple[str, ...]] = frozenset()
    enders: frozenset[str] = frozenset()
    #: Words that address someone ("พี่แอดมิน"): a clause of only these asks for nothing.
    vocatives: frozenset[str] = frozenset()
    #: The spellings as written (tokenised later, with the engine's tokeniser).
    raw: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def tokenised(self, tokenise: Callable[[str], list[str]]) -> ClauseMarkers:
        """The markers as word sequences of this tokeniser (how messages are split)."""
        neg = tuple(
            sorted(
                {tuple(tokenise(w)) for w in self.raw.get("negation", ())}, key=len, reverse=True
            )
        )
        join = frozenset(tuple(tokenise(w)) for w in self.raw.get("joiner", ()))
        enders = frozenset(self.raw.get("ender", ()))
        vocatives = frozenset(w for v in self.raw.get("vocative", ()) for w in tokenise(v))
        return ClauseMarkers(
            tuple(n for n in neg if n),
            frozenset(j for j in join if j),
            enders,
            vocatives | enders,
            self.raw,
        )

    @property
    def empty(self) -> bool:
        """No markers at all (no ``clauses.csv``): messages are read whole, never by clause."""
        return not (self.negations or self.joiners or self.enders or self.vocatives)

    def addresses_only(self, words: Sequence[str]) -> bool:
        """Is a clause only words that address someone ("พี่แอดมิน", "น้องบอทครับ")?"""
        return all(w in self.vocatives for w in words)

    def negated(self, words: Sequence[str]) -> bool:
        """Does a clause start with a negation?"""
        return any(tuple(words[: len(n)]) == n for n in self.negations)


def load_markers(path: Path) -> tuple[ClauseMarkers, list[Problem]]:
    """Read ``word,kind,note`` rows; an absent file means no markers."""
    if not path.is_file():
        return ClauseMarkers(), []
    problems: list[Problem] = []
    raw: dict[str, list[str]] = {k: [] for k in KINDS}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if (
            not reader.fieldnames
            or "word" not in reader.fieldnames
            or "kind" not in reader.fieldnames
        ):
            return ClauseMarkers(), [Problem(str(path), 1, "(header)", "needs columns word,kind")]
        for line, row in enumerate(reader, start=2):
            word = normalise(row.get("word") or "")
            kind = (row.get("kind") or "").strip()
            if not word:
                problems.append(Problem(str(path), line, "word", "is empty"))
            elif kind not in KINDS:
                problems.append(
                    Problem(str(path), line, "kind", f"'{kind}' is not one of {', '.join(KINDS)}")
                )
            else:
                raw[kind].append(word)
    return ClauseMarkers(raw={k: tuple(v) for k, v in raw.items()}), problems


def negative_intents(
    examples: Iterable[tuple[str, list[str]]], markers: ClauseMarkers
) -> frozenset[str]:
    """Intents whose own example phrases often start with a negation (``NEGATIVE_SHARE``)."""
    total: dict[str, int] = {}
    negated: dict[str, int] = {}
    for intent, words in examples:
        total[intent] = total.get(intent, 0) + 1
        if markers.negated(words):
            negated[intent] = negated.get(intent, 0) + 1
    return frozenset(i for i, n in negated.items() if n / total[i] >= NEGATIVE_SHARE)


@dataclass(frozen=True)
class Reading:
    """What the classifier made of some words: the decided intent (or None) and its guesses."""

    intent: str | None
    top: str | None
    confidence: float
    #: ``Candidate`` tuples of the engine, kept opaque here.
    candidates: tuple[object, ...]
    negated: bool = False


@dataclass(frozen=True)
class Split:
    """The outcome for the whole message (None fields: keep the whole message's reading)."""

    reading: Reading | None = None
    also: str | None = None
    #: The words of the second request (offered as a message the user can send as it is).
    also_words: tuple[str, ...] = ()
    #: A need that was negated and must not be answered.
    excluded: str | None = None
    #: The words of the negated clause: what it names (a topic, a market) is not wanted.
    negated_words: tuple[int, int] | None = None


def split_points(
    chunks: Sequence[Sequence[str]], markers: ClauseMarkers, strong_only: bool = False
) -> list[tuple[int, int]]:
    """(end of left, start of right) word positions where a message may be cut in two;
    ``strong_only``: spaces and joiners between clauses of some length, fewer of them."""
    flat = [w for c in chunks for w in c]
    n = len(flat)
    points: dict[int, int] = {}
    pos = 0
    for chunk in chunks[:-1]:
        pos += len(chunk)
        if 0 < pos < n:
            points.setdefault(pos, pos)
    for i in range(1, n - 1):
        for joiner in markers.joiners:
            if tuple(flat[i : i + len(joiner)]) == joiner and i + len(joiner) < n:
                points[i] = i + len(joiner)
    if not strong_only:
        for i, word in enumerate(flat[:-1]):
            if word in markers.enders and i + 1 < n:
                points.setdefault(i + 1, i + 1)
    # a joiner found at a chunk boundary is skipped on the right side
    for end, start in list(points.items()):
        for joiner in markers.joiners:
            if tuple(flat[start : start + len(joiner)]) == joiner and start + len(joiner) < n:
                points[end] = start + len(joiner)
    found = sorted(points.items())
    if strong_only:
        found = [(e, s) for e, s in found if e >= MIN_CLAUSE_WORDS and n - s >= MIN_CLAUSE_WORDS]
        return found[:MAX_STRONG_POINTS]
    return found[:MAX_POINTS]


def split_readings(
    chunks: Sequence[Sequence[str]],
    whole: Reading,
    read: Callable[[Sequence[str]], Reading],
    markers: ClauseMarkers,
    negative: frozenset[str],
    in_scope: Callable[[str | None], bool],
) -> Split:
    """Decide a multi-part message from readings of its two halves at each split point."""
    if markers.empty:
        return Split()
    flat = [w for c in chunks for w in c]
    whole_negated = markers.negated(flat)
    unclear = whole.intent is None or whole.intent in SOCIAL or whole_negated
    if not unclear:
        unclear = any(markers.negated(flat[i:]) for i in range(1, len(flat)))
    points = split_points(chunks, markers, strong_only=not unclear)

    def request(r: Reading) -> bool:
        return r.intent is not None and r.intent not in SOCIAL and in_scope(r.intent)

    def blocks(r: Reading) -> bool:
        """A negated clause whose need is a real need (not a negation-shaped intent)."""
        return r.negated and r.top is not None and r.top not in negative

    negated_need = whole_negated and request(whole) and whole.intent not in negative
    if not points:
        if negated_need:
            return Split(excluded=whole.intent, negated_words=(0, len(flat)))
        return Split()
    halves: list[tuple[Reading, Reading, int, int]] = []
    for end, start in points:
        left_words, right_words = flat[:end], flat[start:]
        if markers.addresses_only(left_words) or markers.addresses_only(right_words):
            continue  # "สวัสดีค่ะ|พี่แอดมิน": one greeting to someone, not two things
        left = read(left_words)
        right = read(right_words)
        halves.append(
            (
                _with_negation(left, markers.negated(left_words)),
                _with_negation(right, markers.negated(right_words)),
                end,
                start,
            )
        )
    n = len(flat)
    # 2. a negated need next to a real request: the request, never the negated need
    for left, right, end, start in halves:
        for neg, other, span in ((left, right, (0, end)), (right, left, (start, n))):
            if blocks(neg) and request(other) and not other.negated and other.intent != neg.top:
                return Split(reading=other, excluded=neg.top, negated_words=span)
    # 1. greeting / thanks / goodbye next to a request: the request
    if whole.intent is None or whole.intent in SOCIAL:
        for left, right, _, _ in halves:
            for social, other in ((left, right), (right, left)):
                if social.intent in SOCIAL and request(other) and not other.negated:
                    return Split(reading=other)
    # 3. two different requests: the first answered, the second offered. Both must be
    # requests in their own right: joined with "แล้วก็", or both clearly present in the whole
    # message's own reading (each at least SECOND_SHARE of it), so a lead-in such as
    # "อยากทราบว่า" read alone never becomes a request; help is never a second request.
    if request(whole):  # an unclear whole gets "did you mean", which offers both
        hinted = {
            getattr(c, "intent", None)
            for c in whole.candidates
            if getattr(c, "confidence", 0.0) >= SECOND_SHARE
        }
        for left, right, end, start in halves:
            if (
                request(left)
                and request(right)
                and not left.negated
                and not right.negated
                and left.intent != right.intent
                and right.intent not in NEVER_SECOND
                and whole.intent in (left.intent, right.intent)
                and (start > end or {left.intent, right.intent} <= hinted)
            ):
                # the whole message's reading is answered, the other request offered
                if whole.intent == right.intent:
                    return Split(also=left.intent, also_words=tuple(flat[:end]))
                return Split(also=right.intent, also_words=tuple(flat[start:]))
    # a need negated at the start and not asked for again in a clause of its own
    affirmed = any(
        not h.negated and h.intent == whole.intent
        for left, right, _, _ in halves
        for h in (left, right)
    )
    if negated_need and not affirmed:
        return Split(excluded=whole.intent, negated_words=(0, len(flat)))
    return Split()


def _with_negation(reading: Reading, negated: bool) -> Reading:
    if not negated:
        return reading
    return Reading(reading.intent, reading.top, reading.confidence, reading.candidates, True)
