"""The intent engine: normalise, split into words, classify, find entities.

``build_engine`` trains the classifier from the intent files at start-up, or loads it from
a cache keyed by everything that shapes it (intent files, spelling table, synonyms, place
names, the engine's code). A cache file that is missing, stale or broken is simply trained
again. ``IntentEngine.parse`` is pure: the same text always gives the same ``Parse``.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.kb.guides import GUIDE_PREFIX
from bot.nlu.data import (
    REQUIRED_INTENTS,
    Example,
    IntentData,
    IntentFileError,
    file_digest,
    read_intents,
)
from bot.nlu.entities import Entity, EntityTables
from bot.nlu.model import SETTINGS, LinearModel, ModelSettings, features, train
from bot.nlu.multipart import (
    CLAUSES_FILE,
    ClauseMarkers,
    Reading,
    load_markers,
    negative_intents,
    split_readings,
)
from bot.nlu.text import Spelling, Tokeniser, load_spelling, normalise

if TYPE_CHECKING:
    from bot.kb.loader import Knowledge

__all__ = [
    "OUT_OF_SCOPE",
    "Candidate",
    "IntentEngine",
    "Parse",
    "build_engine",
    "engine_from_examples",
]

log = logging.getLogger(__name__)

OUT_OF_SCOPE = "out_of_scope"
SPELLING_FILE = "spelling.csv"
#: Below its answer's own floor (``bot.nlu.calibration``; this one when the model has none),
#: or closer than the margin to the runner-up, the engine does not decide.
MIN_CONFIDENCE = 0.5
MIN_MARGIN = 0.2
#: Candidates reported after the best one (those above a small floor).
MAX_CANDIDATES = 3
CANDIDATE_FLOOR = 0.02
_SOURCE_FILES = (
    "engine.py",
    "model.py",
    "text.py",
    "entities.py",
    "data.py",
    "calibration.py",
)

_CACHE_NAME = re.compile(r"^engine-[0-9a-f]{24}\.npz$")
_KEEP_CACHE_FILES = 4
_THAI = re.compile(r"[\u0e00-\u0e7f]")
#: Models trained in this process, by cache key (the test suite builds many bots).
_MEMO: dict[str, LinearModel] = {}
_MEMO_SIZE = 4


@dataclass(frozen=True)
class Candidate:
    """One intent and how sure the engine is of it (0..1, calibrated)."""

    intent: str
    confidence: float


@dataclass(frozen=True)
class Parse:
    """The engine's reading of one message.

    ``intent`` is the best intent when the engine is sure enough, else None; the candidates
    (best first) are always there, so the dialogue can ask "did you mean ...?".
    """

    text: str
    normalised: str
    intent: str | None
    confidence: float
    candidates: tuple[Candidate, ...] = field(default=())
    entities: tuple[Entity, ...] = field(default=())
    #: A second request in the same message, offered after the first is answered, and its
    #: words as a message the user can send (so its places and topics come along).
    also: str | None = None
    also_text: str | None = None
    #: A need the message negates ("ไม่ได้จะส่งออก"): never answered for this message.
    excluded: str | None = None

    @property
    def guide(self) -> str | None:
        """The guide id when the decided answer is a guide."""
        if self.intent and self.intent.startswith(GUIDE_PREFIX):
            return self.intent[len(GUIDE_PREFIX) :]
        return None

    @property
    def uncertain(self) -> bool:
        """No decision, but in-scope guesses exist: ask "did you mean ...?"."""
        return self.intent is None and any(c.intent != OUT_OF_SCOPE for c in self.candidates)

    @property
    def best(self) -> str | None:
        """The most likely intent even when unsure (what an accuracy figure counts)."""
        return self.candidates[0].intent if self.candidates else self.intent

    def entity(self, type_: str) -> Entity | None:
        """The first entity of a type, if any."""
        return next((e for e in self.entities if e.type == type_), None)

    def entities_of(self, type_: str) -> tuple[Entity, ...]:
        return tuple(e for e in self.entities if e.type == type_)

    def to_dict(self) -> dict[str, Any]:
        """The ``bot nlu parse`` JSON object."""
        return {
            "text": self.text,
            "normalised": self.normalised,
            "intent": self.intent,
            "confidence": round(self.confidence, 3),
            "uncertain": self.uncertain,
            "guide": self.guide,
            "candidates": [
                {"intent": c.intent, "confidence": round(c.confidence, 3)} for c in self.candidates
            ],
            "also": self.also,
            "also_text": self.also_text,
            "excluded": self.excluded,
            "entities": [e.to_dict() for e in self.entities],
        }


class IntentEngine:
    """A trained classifier with its tokeniser, spelling table and entity tables."""

    def __init__(
        self,
        model: LinearModel,
        tokeniser: Tokeniser,
        spelling: Spelling,
        tables: EntityTables,
        info: dict[str, Any] | None = None,
        markers: ClauseMarkers | None = None,
        negative: frozenset[str] = frozenset(),
    ) -> None:
        self.model = model
        self.tokeniser = tokeniser
        self.spelling = spelling
        self.tables = tables
        self.info: dict[str, Any] = dict(info or {})
        self.markers = markers or ClauseMarkers()
        self.negative = negative
        self._oos = OUT_OF_SCOPE in model.classes
        self._seen_words = frozenset(name[2:] for name in model.vocab if name.startswith("w:"))
        floors = model.floors
        self.floors: dict[str, float] = (
            {c: float(f) for c, f in zip(model.classes, floors, strict=True)}
            if floors is not None and len(floors) == len(model.classes)
            else {}
        )

    def floor(self, intent: str) -> float:
        """The confidence this answer needs before the engine decides on it."""
        return self.floors.get(intent, MIN_CONFIDENCE)

    @property
    def intents(self) -> set[str]:
        return set(self.model.classes)

    def words(self, text: str) -> tuple[str, list[str]]:
        """The normalised text (spelling applied) and its words."""
        norm = self.spelling.apply_inside(normalise(text))
        words = self.spelling.apply_words(self.tokeniser(norm))
        return norm, words

    def parse(self, text: str) -> Parse:
        """Intent, confidence, candidates and entities of one message (multi-part aware)."""
        norm = self.spelling.apply_inside(normalise(text))
        chunks = [
            c for c in (self.spelling.apply_words(self.tokeniser(p)) for p in norm.split(" ")) if c
        ]
        words = [w for c in chunks for w in c]
        if not words:
            if self._oos and norm:
                return Parse(text, norm, OUT_OF_SCOPE, 1.0, (Candidate(OUT_OF_SCOPE, 1.0),))
            return Parse(text, norm, None, 0.0)
        whole = self.read(words)
        split = split_readings(
            chunks, whole, self.read, self.markers, self.negative, self._in_scope
        )
        chosen = split.reading or whole
        candidates = tuple(c for c in chosen.candidates if isinstance(c, Candidate))
        intent = chosen.intent
        if split.excluded is not None:
            candidates = tuple(c for c in candidates if c.intent != split.excluded)
            if intent == split.excluded:
                intent = None
        if split.negated_words is not None:  # what a negated clause names is not wanted
            lo, hi = split.negated_words
            kept = [*words[:lo], *words[hi:]]
            entities = self._entities(kept, join_words(kept)) if kept else ()
        else:
            entities = self._entities(words, norm)
        return Parse(
            text,
            norm,
            intent,
            chosen.confidence,
            candidates,
            entities,
            also=split.also,
            also_text=join_words(split.also_words) if split.also_words else None,
            excluded=split.excluded,
        )

    def _entities(self, words: Sequence[str], norm: str) -> tuple[Entity, ...]:
        standard = self.tokeniser.standard
        odd = [w not in standard for w in words]
        # a word no example has and no dictionary knows: maybe a typo of a name
        unseen = [o and w not in self._seen_words for w, o in zip(words, odd, strict=True)]
        return tuple(self.tables.find(list(words), unseen, norm, odd))

    def read(self, words: Sequence[str]) -> Reading:
        """The classifier's reading of some words: decided intent (or None) and guesses."""
        candidates = self._classify(words)
        top = candidates[0]
        second = candidates[1].confidence if len(candidates) > 1 else 0.0
        sure = top.confidence >= self.floor(top.intent) and top.confidence - second >= MIN_MARGIN
        return Reading(top.intent if sure else None, top.intent, top.confidence, candidates)

    def _in_scope(self, intent: str | None) -> bool:
        return bool(intent) and intent != OUT_OF_SCOPE

    def _classify(self, words: Sequence[str]) -> tuple[Candidate, ...]:
        model = self.model
        probs = model.probabilities(model.scores(features(words, model.settings)))
        order = np.argsort(-probs, kind="stable")
        out: list[Candidate] = []
        for rank, j in enumerate(order[:MAX_CANDIDATES]):
            p = float(probs[j])
            if rank and p < CANDIDATE_FLOOR:
                break
            out.append(Candidate(model.classes[j], round(p, 4)))
        return tuple(out)


def join_words(words: Sequence[str]) -> str:
    """Words back into text: Thai words run together, Latin words and numbers keep a space."""
    out = ""
    for w in words:
        if out and (not _THAI.search(out[-1]) or not _THAI.search(w[:1])):
            out += " "
        out += w
    return out


# -- building --------------------------------------------------------------------------------


def _place_words(knowledge: Knowledge | None) -> set[str]:
    """Thai place names and nicknames (kept whole by the tokeniser)."""
    if knowledge is None:
        return set()
    places = knowledge.places
    names: set[str] = set()
    for p in places.provinces.values():
        names.add(p.name_th)
        names.update(a for a in p.aliases if _THAI.search(a))
    for d in places.districts.values():
        names.add(d.name_th_short)
        names.update(a for a in d.aliases if _THAI.search(a))
    for s in places.subdistricts.values():
        names.add(s.name_th)
    return {normalise(n) for n in names if len(n) >= 3}


def _synonym_words(knowledge: Knowledge | None, spelling: Spelling) -> set[str]:
    if knowledge is None:
        return set()
    names: list[str] = []
    for topic in knowledge.topics.values():
        names += [*topic.synonyms, topic.label.th]
    for market in knowledge.markets.values():
        names += [*market.synonyms, market.name.th]
    for sector in knowledge.sectors.values():
        names += [*sector.synonyms, sector.label.th]
    out: set[str] = set()
    for name in names:
        if "..." in name or "\u2026" in name:
            continue  # a gapped synonym ("ขาย ... ออนไลน์") is two words, not one
        form = spelling.apply_inside(normalise(name))
        if " " not in form and _THAI.search(form):
            out.add(form)
    return out


def dictionary_words(knowledge: Knowledge | None, spelling: Spelling) -> set[str]:
    """Domain words for the tokeniser: synonyms, spelling table's standard forms, places."""
    words = _synonym_words(knowledge, spelling) | _place_words(knowledge)
    words |= {m for m in spelling.means if " " not in m and _THAI.search(m)}
    return words


def code_version() -> str:
    """A hash of the engine's own source (a code change invalidates every cache file)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _SOURCE_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()


def cache_key(
    examples: Sequence[Example],
    spelling: Spelling,
    words: Iterable[str],
    settings: ModelSettings,
    extra: str = "",
) -> str:
    """What the trained classifier depends on, hashed."""
    h = hashlib.sha256(code_version().encode())
    h.update(repr(settings).encode())
    h.update(extra.encode())
    for e in examples:
        h.update(f"{e.intent}\t{e.text}\n".encode())
    for r in spelling.rules:
        h.update(f"{r.written}\t{r.means}\t{r.whole_word}\n".encode())
    h.update("\n".join(sorted(words)).encode())
    return h.hexdigest()[:24]


def _load_cached(path: Path) -> LinearModel | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return LinearModel.from_arrays(arrays)
    except Exception as exc:  # a broken file is retrained, never fatal
        log.warning("nlu cache unreadable; training again", extra={"error": str(exc)[:200]})
        return None


def _store_cached(folder: Path, path: Path, model: LinearModel) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".engine-", suffix=".npz")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **model.to_arrays())
        os.replace(tmp, path)
        old = sorted(
            (p for p in folder.iterdir() if _CACHE_NAME.match(p.name) and p != path),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for stale in old[_KEEP_CACHE_FILES - 1 :]:
            stale.unlink(missing_ok=True)
    except OSError as exc:  # a read-only disk only costs the next start-up a training run
        log.warning("nlu cache not written", extra={"error": str(exc)[:200]})


#: How often a training child checks that the process it trains for is still there.
PARENT_CHECK_SECONDS = 0.5


def _end_with(parent: int) -> None:
    """In a training child: exit as soon as ``parent`` (the bot process) is gone.

    A bot process killed while its child trains (a restart during a deploy, the OOM killer)
    would otherwise leave the child behind for good, about 200 MB: it waits for its next
    task on a pipe whose write end it holds itself, so it never reads an end of file."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def train_apart(
    docs: Sequence[Sequence[str]], labels: Sequence[str], settings: ModelSettings = SETTINGS
) -> LinearModel:
    """Train in a short-lived child process, so a serving process never loads scikit-learn.

    Importing scikit-learn for training adds about 75 MB of resident memory that stays for
    the life of the process, while serving needs only the NumPy predictor. A bot process
    that trains at start-up (no cache yet, or new intent phrases) therefore trains in a
    spawned child and gets the weights back. Where scikit-learn is loaded already (an
    evaluation, a test run), or the child cannot run, it trains here.
    """
    if "sklearn" in sys.modules:
        return train(docs, labels, settings)
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=_end_with, initargs=(os.getpid(),)
        ) as pool:
            return pool.submit(train, list(docs), list(labels), settings).result()
    except (BrokenProcessPool, OSError) as exc:
        log.warning(
            "training in a child process failed; training here", extra={"error": str(exc)[:200]}
        )
        return train(docs, labels, settings)


def engine_from_examples(
    examples: Sequence[Example],
    knowledge: Knowledge | None = None,
    spelling: Spelling | None = None,
    cache_dir: Path | None = None,
    settings: ModelSettings = SETTINGS,
    markers: ClauseMarkers | None = None,
) -> IntentEngine:
    """Train (or load) an engine from examples: the one code path for production and eval."""
    started = time.perf_counter()
    spelling = spelling or Spelling()
    words = dictionary_words(knowledge, spelling)
    tokeniser = Tokeniser(words)
    tables = EntityTables.build(knowledge, spelling, tokeniser)
    key = cache_key(examples, spelling, tokeniser.extra, settings)
    path = cache_dir / f"engine-{key}.npz" if cache_dir is not None else None
    docs = []
    for e in examples:
        norm = spelling.apply_inside(normalise(e.text))
        docs.append(spelling.apply_words(tokeniser(norm)))
    labels = [e.intent for e in examples]
    markers = (markers or ClauseMarkers()).tokenised(tokeniser)
    negative = negative_intents(zip(labels, docs, strict=True), markers)
    model = _MEMO.get(key)
    source = "memory"
    if model is None and path is not None:
        model = _load_cached(path)
        source = "cache"
    if model is None:
        source = "trained"
        model = train_apart(docs, labels, settings) if cache_dir else train(docs, labels, settings)
        if path is not None and cache_dir is not None:
            _store_cached(cache_dir, path, model)
    _MEMO[key] = model
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))
    info = {
        "source": source,
        "examples": len(examples),
        "intents": len(model.classes),
        "features": len(model.vocab),
        "temperature": model.temperature,
        "key": key,
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("intent engine ready", extra=info)
    return IntentEngine(model, tokeniser, spelling, tables, info, markers, negative)


def guide_examples(knowledge: Knowledge | None, taken: Iterable[str] = ()) -> list[Example]:
    """Every guide's example questions, labelled ``guide:<id>`` (learned with the intents).

    A phrase an intent already has stays the intent's (``bot kb validate`` reports it).
    """
    if knowledge is None:
        return []
    seen = {normalise(t) for t in taken}
    out: list[Example] = []
    for guide in knowledge.guides.guides.values():
        file, line = knowledge.guides.where.get(guide.id, ("", 0))
        for phrase in guide.examples:
            key = normalise(phrase)
            if key and key not in seen:
                seen.add(key)
                out.append(Example(phrase, GUIDE_PREFIX + guide.id, file, line))
    return out


def build_engine(
    intents_dir: Path,
    knowledge: Knowledge | None = None,
    cache_dir: Path | None = None,
    required: frozenset[str] = REQUIRED_INTENTS,
) -> IntentEngine:
    """The engine the bot serves: intent files + spelling table + knowledge synonyms.

    Raises ``IntentFileError`` (every problem, ``FILE:LINE: field: message``) when the
    intent files or the spelling table are wrong.
    """
    data: IntentData = read_intents(intents_dir, required)
    spelling, problems = load_spelling(intents_dir / SPELLING_FILE)
    markers, more = load_markers(intents_dir / CLAUSES_FILE)
    if problems or more:
        raise IntentFileError(problems + more)
    examples = [*data.examples, *guide_examples(knowledge, (e.text for e in data.examples))]
    return engine_from_examples(examples, knowledge, spelling, cache_dir, markers=markers)


def intents_digest(intents_dir: Path) -> str:
    """Hash of the intent folder's files (to notice an edit)."""
    paths = [
        *intents_dir.glob("*.yaml"),
        *intents_dir.glob("*.yml"),
        intents_dir / SPELLING_FILE,
        intents_dir / CLAUSES_FILE,
    ]
    return file_digest(paths)
