"""Intent engine: turns a user's Thai text into an intent with a confidence.

Example phrases come from ``intents/*.yaml`` (operators edit them, never
code). Text is normalised with PyThaiNLP (vowel/tone order, repeated
characters, Thai digits) and matched against the examples with rapidfuzz.
The result always carries the next candidates so the dialogue can ask
"did you mean ...?" when the best two are close.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pythainlp.util import normalize as thai_normalize
from pythainlp.util import thai_digit_to_arabic_digit
from rapidfuzz import fuzz, process

from bot.content import ContentError

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_REPEATS = re.compile(r"(.)\1{2,}")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Canonical form of user text for matching (not for display)."""
    text = unicodedata.normalize("NFKC", text)
    text = _ZERO_WIDTH.sub("", text)
    text = thai_digit_to_arabic_digit(text)
    text = thai_normalize(text)
    text = _REPEATS.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip().lower()


@dataclass(frozen=True)
class Candidate:
    """One intent and how sure the engine is of it (0..1)."""

    intent: str
    confidence: float


@dataclass(frozen=True)
class Parse:
    """The engine's reading of one message."""

    text: str
    normalised: str
    intent: str | None
    confidence: float
    candidates: tuple[Candidate, ...] = field(default=())


@dataclass(frozen=True)
class IntentEngine:
    """Nearest-example matching over the intent files' phrases."""

    examples: tuple[str, ...]
    labels: tuple[str, ...]
    threshold: float = 0.72

    @property
    def intents(self) -> set[str]:
        return set(self.labels)

    def parse(self, text: str) -> Parse:
        """Best intents for ``text``, most likely first."""
        norm = normalise(text)
        if not norm or not self.examples:
            return Parse(text, norm, None, 0.0)
        hits = process.extract(norm, self.examples, scorer=fuzz.ratio, limit=25)
        best: dict[str, float] = {}
        for _example, score, index in hits:
            label = self.labels[index]
            best[label] = max(best.get(label, 0.0), score / 100.0)
        ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
        candidates = tuple(Candidate(i, round(c, 3)) for i, c in ranked[:3])
        top = candidates[0]
        intent = top.intent if top.confidence >= self.threshold else None
        return Parse(text, norm, intent, top.confidence, candidates)


def load_intents(folder: Path) -> IntentEngine:
    """Read every ``*.yaml`` in ``folder``: ``{intents: {name: {examples: [...]}}}``."""
    examples: list[str] = []
    labels: list[str] = []
    owner: dict[str, str] = {}
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not files:
        raise ContentError(f"{folder}: no intent files (*.yaml) found")
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ContentError(f"{path}{line}: not valid YAML") from None
        intents = data.get("intents") if isinstance(data, dict) else None
        if not isinstance(intents, dict):
            raise ContentError(f"{path}:1: intents: expected a mapping of intent names")
        for name, body in intents.items():
            phrases = body.get("examples") if isinstance(body, dict) else None
            if not isinstance(phrases, list) or not phrases:
                raise ContentError(f"{path}: intents.{name}.examples: expected a list of phrases")
            for phrase in phrases:
                norm = normalise(str(phrase))
                if norm in owner and owner[norm] != name:
                    raise ContentError(
                        f"{path}: intents.{name}.examples: '{phrase}' is also an example of "
                        f"{owner[norm]}"
                    )
                owner[norm] = str(name)
                examples.append(norm)
                labels.append(str(name))
    return IntentEngine(tuple(examples), tuple(labels))
